//! The listening socket under pressure (issue 8): the open-file limit, a second pushgate on the
//! same port, and errors at start.

mod common;

use common::{
    raw::{connect, open_fds, read_reply, wait_bounded, Launch},
    Client, Server,
};
use serde_json::Value;
use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    time::Duration,
};
use tungstenite::{handshake::HandshakeError, stream::MaybeTlsStream, Message};

/// What one connection attempt came to.
enum Attempt {
    Connected(Box<Client>),
    /// Refused in a way the client sees: an HTTP error, a `pusher:error` and close, or the
    /// connection closed.
    Refused(String),
    /// No answer at all within the read timeout.
    Hung(String),
}

/// Opens a Pusher connection with a 3 s read timeout and says what became of it.
fn attempt(server: &Server) -> Attempt {
    let stream = match TcpStream::connect(("127.0.0.1", server.port)) {
        Ok(stream) => stream,
        Err(e) => return Attempt::Refused(format!("connect: {e}")),
    };
    stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let url = server.url("/app/app-key?protocol=7");
    let mut ws = match tungstenite::client::client(url, MaybeTlsStream::Plain(stream)) {
        Ok((ws, _)) => ws,
        Err(HandshakeError::Interrupted(_)) => return Attempt::Hung("no 101 within 3 s".into()),
        Err(HandshakeError::Failure(e)) => return Attempt::Refused(format!("handshake: {e}")),
    };
    match ws.read() {
        Ok(Message::Text(text)) => {
            let first: Value = serde_json::from_str(&text).unwrap_or_default();
            if first["event"] != "pusher:connection_established" {
                return Attempt::Refused(text.to_string());
            }
            let data: Value =
                serde_json::from_str(first["data"].as_str().unwrap_or("{}")).unwrap_or_default();
            let socket_id = data["socket_id"].as_str().unwrap_or_default().to_string();
            Attempt::Connected(Box::new(Client { ws, socket_id }))
        }
        Ok(other) => Attempt::Refused(format!("{other:?}")),
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Attempt::Hung("101, then nothing within 3 s".into())
        }
        Err(e) => Attempt::Refused(format!("closed: {e}")),
    }
}

/// Defect 6: with few descriptors (RLIMIT_NOFILE 64), clients past what the server can hold
/// are refused rather than left hanging, the REST API still answers (a reserve of
/// `fd_reserve` descriptors), and "accept failed" is not logged many times a second.
#[test]
fn at_the_open_file_limit_clients_are_refused_and_the_rest_api_answers() {
    let (server, log) = Launch::new("fd_reserve = 16\n").nofile(64).start();
    let pid = server.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(limits.lines().any(|l| l.starts_with("Max open files") && l.contains(" 64 ")));
    let mut connected = Vec::new();
    let mut refusals = Vec::new();
    // 64 descriptors cannot hold 100 clients; stop after five refusals in a row.
    for i in 0..100 {
        match attempt(&server) {
            Attempt::Connected(client) => {
                connected.push(client);
                refusals.clear();
            }
            Attempt::Refused(why) => refusals.push(why),
            Attempt::Hung(why) => panic!(
                "client {i} was left hanging ({why}) with {} connected and {} descriptors open \
                 in the server (limit 64)",
                connected.len(),
                open_fds(pid)
            ),
        }
        if refusals.len() == 5 {
            break;
        }
    }
    assert_eq!(refusals.len(), 5, "100 clients fit in 64 descriptors?");
    assert!(!connected.is_empty(), "no client was admitted at all: {refusals:?}");
    // The REST API answers at the limit, and publishing reaches the connected clients.
    let mut stream = connect(server.port);
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let health = read_reply(&mut stream).map(|r| r.status);
    assert!(matches!(health, Ok(200)), "GET /health at the open-file limit: {health:?}");
    drop(stream);
    connected[0].subscribe("at-limit");
    server.trigger("at-limit", "e", "reached");
    assert_eq!(connected[0].recv()["data"], "reached");
    // A few more refused clients, then the log (warnings only): a few lines about all this,
    // not one or more per refused client or 20 a second.
    for _ in 0..10 {
        let _ = attempt(&server);
    }
    std::thread::sleep(Duration::from_secs(2));
    let text = log.text();
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 10, "{lines} log lines at the open-file limit:\n{text}");
}

/// Defect 8: a second pushgate on a port the first one holds must refuse to start (today it
/// joins the first one's SO_REUSEPORT group and takes half the clients).
#[test]
fn a_second_server_on_the_same_port_refuses_to_start() {
    let first = Server::start("", 1);
    let mut second = Launch::new("").port(first.port).spawn();
    let status = wait_bounded(&mut second.child, Duration::from_secs(10));
    // Whatever the second one did, the first must get every client while it lives.
    let mut clients: Vec<Client> = (0..20).map(|_| first.client()).collect();
    for client in &mut clients {
        client.subscribe("all");
    }
    first.trigger("all", "e", "to-everyone");
    let mut reached = 0;
    for client in &mut clients {
        if client.try_recv(Duration::from_millis(500)).is_some_and(|v| v["data"] == "to-everyone") {
            reached += 1;
        }
    }
    let stdout = second.stdout.text();
    let stderr = second.stderr.text();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the second server is still running 10 s after start, and a publish on the first \
             reached {reached} of 20 clients; its stdout: {stdout:?}"
        )
    });
    assert!(!status.success(), "the second server exited with {status:?}");
    let message = stderr.to_lowercase();
    assert!(
        message.contains("in use") && message.contains(&first.port.to_string()),
        "the second server's error should say the port {} is in use: {stderr:?}",
        first.port
    );
    assert_eq!(reached, 20, "a publish on the first server reached {reached} of 20 clients");
}

/// Lesser item: an error at start is one clear line, even with RUST_BACKTRACE set.
#[test]
fn an_address_in_use_at_start_is_one_line_even_with_rust_backtrace() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let exited =
        Launch::new("").port(port).env("RUST_BACKTRACE", "1").run_to_exit(Duration::from_secs(10));
    assert!(exited.status.is_some_and(|s| !s.success()), "exit {:?}", exited.status);
    let lines: Vec<&str> = exited.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{}", exited.stderr);
    assert!(lines[0].to_lowercase().contains("in use"), "{}", lines[0]);
}
