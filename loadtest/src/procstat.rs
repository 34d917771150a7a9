//! Samples of a process's resident memory (/proc/PID/status VmRSS) and CPU time (/proc/PID/stat).

use serde::Serialize;

/// One sample of a process's memory and accumulated CPU time.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ProcSample {
    pub rss_kb: u64,
    /// utime + stime, in microseconds.
    pub cpu_us: u64,
}

/// Read a sample for `pid` ("self" works too); `None` if the process is gone or unreadable.
pub fn sample(pid: &str) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcSample {
        rss_kb: parse_vmrss_kb(&status)?,
        cpu_us: ticks_to_us(parse_cpu_ticks(&stat)?),
    })
}

/// `VmRSS:   1234 kB` → 1234.
pub fn parse_vmrss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15) from /proc/PID/stat; the command name may hold spaces or parens.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_us(ticks: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    ticks * 1_000_000 / hz
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: `want` is a valid rlimit struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tpushgate\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t2\n";
        assert_eq!(parse_vmrss_kb(status), Some(5120));
        let stat = "1234 (push gate (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 2 0";
        assert_eq!(parse_cpu_ticks(stat), Some(100));
    }

    #[test]
    fn samples_self() {
        let s = sample("self");
        assert!(s.is_some_and(|s| s.rss_kb > 0));
    }
}
