//! The end-of-run report: every figure in one serializable struct, the human summary and output files.

use crate::procstat::ProcSample;
use crate::stats::Percentiles;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub params: serde_json::Value,
    pub connections: ConnReport,
    pub publish: Option<PublishReport>,
    pub delivery: Option<DeliveryReport>,
    /// End-to-end latency (publisher send → subscriber receive), microseconds.
    pub latency_us: Option<Percentiles>,
    pub server: Option<ServerReport>,
    /// The `--extra-pid` processes' CPU over the same window as the server's.
    pub extra: Vec<ProcCpu>,
    pub client: ClientReport,
    pub churn: Option<ChurnReport>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ConnReport {
    pub requested: u64,
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub timeouts: u64,
    pub dropped: u64,
    pub fd_limit_hit: bool,
    pub open_at_fd_limit: Option<u64>,
    /// Wall time to connect + subscribe the whole population.
    pub connect_secs: f64,
    pub connect_rate_per_s: f64,
    /// Per-connection TCP + handshake + subscribe time, microseconds.
    pub connect_us: Percentiles,
    pub first_error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct PublishReport {
    pub duration_secs: f64,
    pub target_rate: f64,
    pub queued: u64,
    pub published: u64,
    pub achieved_rate: f64,
    pub http_errors: u64,
    pub http_status: BTreeMap<String, u64>,
    pub transport_errors: u64,
    pub reconnects: u64,
    /// REST request round trip, microseconds.
    pub request_us: Percentiles,
}

#[derive(Debug, Default, Serialize)]
pub struct DeliveryReport {
    pub expected: u64,
    pub delivered: u64,
    pub delivered_unique: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    /// Deliveries per second while publishing.
    pub deliveries_per_sec: f64,
    pub drain_secs: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub start: Option<ProcSample>,
    pub connected: Option<ProcSample>,
    pub end: Option<ProcSample>,
    /// (RSS after connecting − RSS at start) / connections, bytes.
    pub rss_bytes_per_conn: Option<f64>,
    /// Server CPU over the measured window (publish + drain for fanout, hold for idle).
    pub cpu_us_window: Option<u64>,
    pub cpu_us_per_delivery: Option<f64>,
}

/// One `--extra-pid` process's CPU over the measured window.
#[derive(Debug, Default, Serialize)]
pub struct ProcCpu {
    pub pid: u32,
    /// `None` if the process could not be sampled (gone, or not ours to read).
    pub cpu_us_window: Option<u64>,
    pub cpu_us_per_delivery: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ClientReport {
    pub workers: u16,
    pub nofile_limit: u64,
    pub end: Option<ProcSample>,
}

#[derive(Debug, Default, Serialize)]
pub struct ChurnReport {
    pub rate: f64,
    pub lifetime_ms: u64,
    pub opened: u64,
    pub failed: u64,
    pub dropped: u64,
    pub skipped: u64,
    pub connect_us: Percentiles,
}

fn pct(p: &Percentiles) -> String {
    format!(
        "p50={} p90={} p99={} p99.9={} max={} (n={})",
        p.p50, p.p90, p.p99, p.p999, p.max, p.count
    )
}

impl Report {
    pub fn write_summary(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let c = &self.connections;
        writeln!(w, "== pushgate-load {} against {} ==", self.scenario, self.target)?;
        writeln!(
            w,
            "connections: {} connected of {} requested ({} failed, {} timed out, {} dropped) in {:.2}s = {:.0} conn/s",
            c.connected, c.requested, c.failed, c.timeouts, c.dropped, c.connect_secs, c.connect_rate_per_s
        )?;
        writeln!(w, "connect+subscribe us: {}", pct(&c.connect_us))?;
        if c.fd_limit_hit {
            writeln!(
                w,
                "OPEN-FILE LIMIT HIT (EMFILE) at ~{} sockets; finished with {} connections (limit {}; raise `ulimit -n` for more)",
                c.open_at_fd_limit.unwrap_or(0),
                c.connected,
                self.client.nofile_limit
            )?;
        }
        if let Some(e) = &c.first_error {
            writeln!(w, "first connection error: {e}")?;
        }
        if let Some(p) = &self.publish {
            writeln!(
                w,
                "published: {} of {} queued in {:.1}s = {:.1}/s (target {}/s); http errors {} {:?}, transport errors {}",
                p.published, p.queued, p.duration_secs, p.achieved_rate, p.target_rate, p.http_errors, p.http_status, p.transport_errors
            )?;
            writeln!(w, "publish request us: {}", pct(&p.request_us))?;
        }
        if let Some(d) = &self.delivery {
            writeln!(
                w,
                "deliveries: expected {} delivered {} (unique {}) missing {} duplicated {} unexpected {}; {:.0} deliveries/s while publishing; drain {:.2}s",
                d.expected, d.delivered, d.delivered_unique, d.missing, d.duplicated, d.unexpected, d.deliveries_per_sec, d.drain_secs
            )?;
        }
        if let Some(l) = &self.latency_us {
            writeln!(w, "end-to-end latency us: {} mean={}", pct(l), l.mean)?;
        }
        if let Some(ch) = &self.churn {
            writeln!(
                w,
                "churn: {} opened, {} failed, {} dropped, {} skipped at {}/s, lifetime {}ms; connect us: {}",
                ch.opened, ch.failed, ch.dropped, ch.skipped, ch.rate, ch.lifetime_ms, pct(&ch.connect_us)
            )?;
        }
        if let Some(s) = &self.server {
            let kb = |x: &Option<ProcSample>| x.map(|p| p.rss_kb.to_string()).unwrap_or("-".into());
            writeln!(
                w,
                "server pid {}: RSS kB start {} connected {} end {}; RSS/conn {} bytes; CPU {} us in window; {} CPU us/delivery",
                s.pid,
                kb(&s.start),
                kb(&s.connected),
                kb(&s.end),
                s.rss_bytes_per_conn.map(|x| format!("{x:.0}")).unwrap_or("-".into()),
                s.cpu_us_window.map(|x| x.to_string()).unwrap_or("-".into()),
                s.cpu_us_per_delivery.map(|x| format!("{x:.2}")).unwrap_or("-".into()),
            )?;
        }
        for x in &self.extra {
            writeln!(
                w,
                "extra pid {}: CPU {} us in window; {} CPU us/delivery",
                x.pid,
                x.cpu_us_window.map(|x| x.to_string()).unwrap_or("-".into()),
                x.cpu_us_per_delivery.map(|x| format!("{x:.2}")).unwrap_or("-".into()),
            )?;
        }
        if let Some(e) = &self.client.end {
            writeln!(
                w,
                "load generator: {} worker(s), RSS {} kB, CPU {} us",
                self.client.workers, e.rss_kb, e.cpu_us
            )?;
        }
        for n in &self.notes {
            writeln!(w, "note: {n}")?;
        }
        Ok(())
    }

    /// Print the summary (to stderr when the JSON goes to stdout) and write the JSON file.
    pub fn emit(&self, json: Option<&str>) -> anyhow::Result<()> {
        crate::output::emit(self, json, |w| self.write_summary(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_section() {
        let r = Report {
            scenario: "fanout".into(),
            delivery: Some(DeliveryReport::default()),
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(v["scenario"], "fanout");
        assert_eq!(v["delivery"]["missing"], 0);
        assert!(v["latency_us"].is_null());
        let mut out = Vec::new();
        assert!(r.write_summary(&mut out).is_ok());
        assert!(String::from_utf8_lossy(&out).contains("missing 0"));
    }
}
