//! Process lifecycle: graceful shutdown with 4200, and the configuration commands.

mod common;

use common::Server;
use std::process::Command;

fn pushgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate")).args(args).output().expect("run pushgate")
}

#[test]
fn sigterm_closes_every_client_with_4200_and_exits_0() {
    let mut server = Server::start("", 2);
    let mut clients: Vec<_> = (0..6).map(|_| server.client()).collect();
    for c in &mut clients {
        c.subscribe("x");
    }
    let status = server.terminate().expect("exits within 10 s");
    assert!(status.success(), "exit status {status:?}");
    for c in &mut clients {
        assert_eq!(c.close_code(), Some(4200));
    }
}

#[test]
fn print_default_config_round_trips_through_check_config() {
    let out = pushgate(&["--print-default-config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("port = 6001") && text.contains("key = \"app-key\""), "{text}");
    let path = std::env::temp_dir().join(format!("pushgate-default-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write");
    let out = pushgate(&["--check-config", "--config", path.to_str().expect("path")]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn invalid_config_fails_naming_the_key() {
    let path = std::env::temp_dir().join(format!("pushgate-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"\"\n").expect("write");
    let out = pushgate(&["--check-config", "--config", path.to_str().expect("path")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("apps[0].secret"));
    std::fs::write(&path, "port = \"high\"\n").expect("write");
    let out = pushgate(&["--config", path.to_str().expect("path")]);
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}

#[test]
fn environment_overrides_the_default_app() {
    let out = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["--check-config"])
        .env("PUSHGATE_PORT", "not-a-port")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PUSHGATE_PORT"));
}

#[test]
fn silent_keep_alive_http_connections_are_closed() {
    use std::io::{Read, Write};
    let server = Server::start("http_idle_timeout_secs = 1\n", 1);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Kept alive, then silent: the server hangs up (read returns 0 rather than timing out).
    let n = stream.read(&mut buf).expect("the server closes before our read timeout");
    assert_eq!(n, 0, "expected EOF");
}

#[test]
fn a_restart_binds_the_same_port_at_once() {
    let mut first = Server::start("", 1);
    let port = first.port;
    let mut client = first.client();
    client.subscribe("x");
    // The server closes first (4200), so its side of the connection lingers in TIME_WAIT; the
    // next process must still be able to listen on the port.
    first.terminate().expect("first server exits");
    assert_eq!(client.close_code(), Some(4200));
    let mut second = Server::start_on(&format!("port = {port}\n"), 1, port);
    second.client().sync();
    second.terminate().expect("second server exits");
}
