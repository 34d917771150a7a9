//! Bad input and faults: unknown topics, bad JSON, a publication over the size cap, notify
//! endpoints that hang or fail forever (bounded, paused, other subscriptions unaffected), an
//! unwritable data directory, a corrupted store file, and a disk that fills up.

use crate::{
    common::zato::{config, topics, wait_until, Api, DataDir, Hang, ADMIN, USER},
    hook_receiver::Receiver,
    start,
};
use serde_json::json;
use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    sync::atomic::Ordering,
    time::Duration,
};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn unknown_topics_and_bad_json_get_zato_errors() {
    let dir = DataDir::new("bad-input");
    let server = start(&dir, "", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let (status, answer, _) = api.publish("/nope", &json!({"data": "x"}));
    assert_eq!(status, 404);
    assert_eq!(answer["zato_env"]["details"], "No such topic `/nope`");
    assert_eq!(api.subscribe("/nope", None).0, 403, "subscribing reveals no topic names");
    for body in ["{not json", "[1, 2]", "\"just a string\""] {
        let (status, answer, _) = api.request("POST", "/zato/pubsub/topic//t", Some(body));
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["zato_env"]["result"], "ZATO_ERROR");
    }
    let (status, _, _) = api.publish("/t", &json!({"data": "x", "has_gd": "yes"}));
    assert_eq!(status, 400);
    let (status, _, _) = api.publish("/t", &json!({"data": "x", "expiration": -1}));
    assert_eq!(status, 400);
}

#[test]
fn a_publication_over_the_size_cap_is_refused_before_it_is_read_whole() {
    let dir = DataDir::new("cap");
    let server = start(&dir, "max_publish_bytes = 65536", &topics(&["/t"]));
    let api = Api::new(&server, USER);
    let key = api.subscribe_ok("/t");
    // 100 MB announced; the answer comes once the cap is passed.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let head = format!(
        "POST /zato/pubsub/topic//t HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        crate::common::zato::basic(USER.0, USER.1)
    );
    stream.write_all(head.as_bytes()).expect("head");
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..4 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).expect("an answer");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("ZATO_ERROR"), "{text}");
    // Just under the cap is fine.
    let data = "y".repeat(60_000);
    api.publish_ok("/t", &data, json!({}));
    assert_eq!(api.messages("/t", &key)[0]["size"], 60_000);
}

#[test]
fn a_notify_endpoint_that_hangs_is_bounded_and_holds_up_no_other_subscription() {
    let dir = DataDir::new("hang");
    let tables = "[[zato.topics]]\nname = \"/t\"\nmax_depth_non_gd = 50\ndepth_check_freq = 1\n";
    let server = start(&dir, "notify_timeout_ms = 300", tables);
    let admin = Api::new(&server, ADMIN);
    let hang = Hang::start();
    let stuck = admin.notify_sub("/t", &hang.url(), json!({"wait_sock_err": 0.1}));
    let receiver = Receiver::start();
    admin.notify_sub(
        "/t",
        &receiver.url("/ok"),
        json!({"delivery_batch_size": 1, "endpoint": "n1"}),
    );
    let api = Api::new(&server, USER);
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..120 {
        match api.publish("/t", &json!({"data": format!("m{i}")})).0 {
            200 => accepted += 1,
            503 => refused += 1,
            other => panic!("publish answered {other}"),
        }
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(refused > 0, "the stuck queue filled the topic to its depth: refused, not grown");
    let got = receiver.wait_for(WAIT, |r| r.len() >= accepted);
    assert_eq!(got.len(), accepted, "the healthy subscription got every accepted message");
    let sub = admin.sub(&stuck);
    assert!(sub["current_depth_non_gd"].as_u64().is_some_and(|d| d <= 51), "{sub}");
    assert_eq!(sub["last_delivery_error"]["kind"], "socket", "a timeout is socket-level");
    // One delivery at a time: a handful of connections, not one per message or retry burst.
    assert!(hang.connections.load(Ordering::SeqCst) < 60);
}

#[test]
fn a_notify_endpoint_answering_500_forever_is_retried_with_pauses_and_never_blocks_others() {
    let dir = DataDir::new("500");
    let server = start(&dir, "", &topics(&["/t"]));
    let admin = Api::new(&server, ADMIN);
    let failing = Receiver::start();
    failing.script(&[500; 10_000]);
    let stuck = admin.notify_sub("/t", &failing.url("/fail"), json!({"wait_non_sock_err": 0.05}));
    let healthy = Receiver::start();
    admin.notify_sub("/t", &healthy.url("/ok"), json!({"endpoint": "n1"}));
    let api = Api::new(&server, USER);
    for i in 0..20 {
        api.publish_ok("/t", &format!("m{i}"), json!({}));
    }
    let got = healthy.wait_for(WAIT, |r| {
        r.iter().flat_map(|r| r.json().as_array().cloned().unwrap_or_default()).count() >= 20
    });
    let count: usize = got.iter().map(|r| r.json().as_array().map_or(0, Vec::len)).sum();
    assert_eq!(count, 20);
    // The failing one keeps trying, with growing delivery counts, and keeps its messages.
    assert!(wait_until(WAIT, || failing.received().len() >= 5));
    let counts: Vec<u64> = failing
        .received()
        .iter()
        .map(|r| r.json()[0]["delivery_count"].as_u64().unwrap_or(0))
        .collect();
    assert!(counts.windows(2).all(|w| w[1] >= w[0]), "{counts:?}");
    let sub = admin.sub(&stuck);
    assert_eq!(sub["current_depth_non_gd"], 20);
    assert_eq!(sub["last_delivery_error"]["kind"], "other");
    assert_eq!(sub["last_delivery_error"]["pause_secs"], 0.05);
}

/// Runs the binary with `toml` and waits for it to exit; returns (success, stderr).
fn run_to_exit(toml: &str, limit_file_size: Option<u64>) -> (bool, String) {
    let path =
        std::env::temp_dir().join(format!("pushgate-zato-fault-{}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("write config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    command.args(["--config", path.to_str().expect("path"), "--host", "127.0.0.1", "--port", "0"]);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(bytes) = limit_file_size {
        limit(&mut command, bytes);
    }
    let output = command.output().expect("run pushgate");
    let _ = std::fs::remove_file(&path);
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn limit(command: &mut Command, bytes: u64) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
}

#[test]
fn an_unwritable_data_directory_stops_the_start_with_an_error_naming_it() {
    let dir = DataDir("/proc/pushgate-zato-test/data".into());
    let toml = config(&dir, "", &topics(&["/t"]));
    let (ok, stderr) = run_to_exit(&toml, None);
    assert!(!ok, "the server did not start");
    assert!(stderr.contains("/proc/pushgate-zato-test/data"), "{stderr}");
    assert!(stderr.contains("store"), "{stderr}");
}

#[test]
fn a_corrupted_store_file_stops_the_start_with_an_error_naming_it() {
    let dir = DataDir::new("corrupt");
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    let file = dir.0.join(pushgate::store::FILE_NAME);
    let garbage: Vec<u8> =
        (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(&file, &garbage).expect("garbage");
    let (ok, stderr) = run_to_exit(&config(&dir, "", &topics(&["/t"])), None);
    assert!(!ok);
    assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("corrupted"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), garbage, "left as it was");
}

#[test]
fn a_full_disk_refuses_gd_publications_and_loses_nothing_acknowledged() {
    let dir = DataDir::new("full");
    let tables = "[[zato.topics]]\nname = \"/t\"\nhas_gd = true\nmax_depth_gd = 100000\n";
    let toml = config(&dir, "", tables);
    // The store file of a fresh start, then a file size limit a little above it.
    let server = start(&dir, "", tables);
    let sub_key = Api::new(&server, USER).subscribe_ok("/t");
    drop(server);
    let size = std::fs::metadata(dir.0.join(pushgate::store::FILE_NAME)).expect("stat").len();
    let path = std::env::temp_dir().join(format!("pushgate-zato-full-{}.toml", std::process::id()));
    std::fs::write(&path, &toml).expect("config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    command.args([
        "--config",
        path.to_str().expect("path"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--shards",
        "2",
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    limit(&mut command, size + 1024 * 1024);
    let mut child = Killed(command.spawn().expect("spawn"));
    let api = Api::at(ready_port(&mut child.0), USER);
    let data = "z".repeat(2000);
    let mut acked = Vec::new();
    let refusal = loop {
        let (status, answer, _) =
            api.publish("/t", &json!({ "data": format!("{}-{data}", acked.len()) }));
        if status != 200 {
            break (status, answer);
        }
        acked.push(acked.len());
        assert!(acked.len() < 10_000, "the limit was never reached");
    };
    assert_eq!(refusal.0, 503, "{}", refusal.1);
    let details = refusal.1["zato_env"]["details"].as_str().unwrap_or_default().to_string();
    assert!(details.contains("store write failed"), "{details}");
    drop(child);
    let _ = std::fs::remove_file(&path);

    let server = start(&dir, "", tables);
    let api = Api::new(&server, USER);
    let mut found = 0;
    loop {
        let batch = api.messages("/t", &sub_key);
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let n: usize =
                m["data"].as_str().and_then(|d| d.split('-').next()?.parse().ok()).expect("number");
            assert_eq!(n, found, "in order, none missing");
            found += 1;
        }
    }
    assert!(found >= acked.len(), "{found} of {} acknowledged", acked.len());
}

/// A child process killed (SIGKILL) when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the ready line of a spawned server; returns its port.
fn ready_port(child: &mut std::process::Child) -> u16 {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("ready line");
    line.split_whitespace()
        .find_map(|w| w.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}
