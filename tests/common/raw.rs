//! Tools for hostile-client tests: starting the server with a captured log and process limits,
//! raw TCP requests whose bytes we control, replies parsed by hand, and what the server process
//! costs (CPU, resident memory, open descriptors) read from /proc. Every wait is bounded.

#![allow(dead_code)]

use super::{tempfile_path::TempPath, Server};
use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

// ------------------------------------------------------------------------------------ launch

/// How to start the server: config text, shards, port, environment and open-file limit.
pub struct Launch {
    toml: String,
    shards: usize,
    port: u16,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
}

/// The server's stderr, drained by a thread for the process's whole life.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    pub fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Lines of the log that contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    fn drain(&self, pipe: impl Read + Send + 'static) {
        let log = self.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut text) = log.0.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
    }
}

/// A process that ran to its end (or was killed at the deadline: `status` None).
pub struct Exited {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Launch {
    pub fn new(toml: &str) -> Launch {
        Launch { toml: toml.to_string(), shards: 1, port: 0, env: Vec::new(), nofile: None }
    }

    pub fn shards(mut self, shards: usize) -> Launch {
        self.shards = shards;
        self
    }

    pub fn port(mut self, port: u16) -> Launch {
        self.port = port;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the server with RLIMIT_NOFILE set to `limit` (soft and hard).
    pub fn nofile(mut self, limit: u64) -> Launch {
        self.nofile = Some(limit);
        self
    }

    fn command(&self) -> (Command, TempPath) {
        let path = std::env::temp_dir().join(format!(
            "pushgate-raw-{}-{}.toml",
            std::process::id(),
            unique()
        ));
        std::fs::write(&path, &self.toml).expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        command
            .args(["--config", path.to_str().expect("utf8 path")])
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--shards", &self.shards.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(limit) = self.nofile {
            // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
            unsafe {
                command.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        (command, TempPath(path))
    }

    /// Starts the server and waits for its "listening on" line; panics with its stderr if it
    /// exits first (an unknown config key does that).
    pub fn start(self) -> (Server, Log) {
        let (mut command, config) = self.command();
        let mut child = command.spawn().expect("spawn pushgate");
        let log = Log::default();
        log.drain(child.stderr.take().expect("stderr"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if !line.contains("listening on") {
            let status = wait_bounded(&mut child, Duration::from_secs(5));
            let _ = child.kill();
            thread::sleep(Duration::from_millis(100));
            panic!(
                "the server did not start (first stdout line {line:?}, exit {status:?}); \
                 stderr:\n{}",
                log.text()
            );
        }
        let port = line
            .split_whitespace()
            .find_map(|w| w.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .expect("port in ready line");
        (Server { child, port, shards: self.shards, _config: config }, log)
    }

    /// Starts the process without waiting for anything; both outputs are drained into logs.
    pub fn spawn(self) -> Spawned {
        let (mut command, config) = self.command();
        let mut child = command.spawn().expect("spawn pushgate");
        let stdout = Log::default();
        stdout.drain(child.stdout.take().expect("stdout"));
        let stderr = Log::default();
        stderr.drain(child.stderr.take().expect("stderr"));
        Spawned { child, stdout, stderr, _config: config }
    }

    /// Runs the server expecting it to stop by itself within `within`; kills it at the
    /// deadline (then `status` is None).
    pub fn run_to_exit(self, within: Duration) -> Exited {
        let mut spawned = self.spawn();
        let status = wait_bounded(&mut spawned.child, within);
        let _ = spawned.child.kill();
        let _ = spawned.child.wait();
        // Let the drain threads take the last lines.
        thread::sleep(Duration::from_millis(200));
        Exited { status, stdout: spawned.stdout.text(), stderr: spawned.stderr.text() }
    }
}

/// A process started by `Launch::spawn`, killed when dropped.
pub struct Spawned {
    pub child: Child,
    pub stdout: Log,
    pub stderr: Log,
    _config: TempPath,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's exit status if it ends within `within`.
pub fn wait_bounded(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

fn unique() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Polls `check` every `every`, at most `times` times; true as soon as it holds.
pub fn eventually(times: usize, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..times {
        if check() {
            return true;
        }
        thread::sleep(every);
    }
    check()
}

// ------------------------------------------------------------------------------ raw HTTP

/// A TCP connection to the server with a read timeout and no Nagle delay.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("tcp connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// An HTTP answer read by hand.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {:?}", self.status, self.headers, self.text())
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the reply says the server ends the connection after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads a response head (status line and headers) byte by byte, leaving the body unread.
pub fn read_head(stream: &mut impl Read) -> io::Result<Reply> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF after {:?}", String::from_utf8_lossy(&head)),
            ));
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "response head too long"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let headers = response
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Ok(Reply { status: response.code.unwrap_or(0), headers, body: Vec::new() })
}

/// Reads a whole response: its head, then `Content-Length` bytes of body.
pub fn read_reply(stream: &mut impl Read) -> io::Result<Reply> {
    let mut reply = read_head(stream)?;
    let len: usize =
        reply.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    reply.body = body;
    Ok(reply)
}

/// Writes `request` and reads the reply on a new connection.
pub fn request(port: u16, request: &[u8]) -> io::Result<Reply> {
    let mut stream = connect(port);
    stream.write_all(request)?;
    read_reply(&mut stream)
}

/// True when the server has ended the connection: a read gives EOF or a reset (bytes it still
/// sends before that are skipped). False when the read times out with the connection open.
pub fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(wait));
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => return false,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A WebSocket upgrade request for the default app, with `extra` header lines.
pub fn upgrade_request(extra: &str) -> Vec<u8> {
    format!(
        "GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
    .into_bytes()
}

// ------------------------------------------------------------------------------ /proc probes

/// Nanoseconds the process's threads spent running or waiting to run (runqueue), summed from
/// `/proc/<pid>/task/*/schedstat`. A thread that spins counts about one second per second even
/// on a busy machine, where its CPU time alone would understate it; a parked thread counts
/// nothing.
pub fn demand_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .map(|s| s.split_whitespace().take(2).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>())
        .sum()
}

/// Share of one core the process wanted over `window` (1.0: one core all the time).
pub fn cpu_demand(pid: u32, window: Duration) -> f64 {
    let start = Instant::now();
    let before = demand_ns(pid);
    thread::sleep(window);
    let used = demand_ns(pid).saturating_sub(before);
    used as f64 / start.elapsed().as_nanos() as f64
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
