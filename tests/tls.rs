//! Native TLS on the client port (issue 8, "also in this issue"): with `[tls] cert_file` and
//! `key_file`, WebSocket clients connect over wss and the REST API answers over https, on the
//! same port; SIGHUP reloads the certificate for new connections.

mod common;

use base64::Engine;
use common::{
    now,
    raw::{eventually, read_reply, Launch},
    sign, APP_ID, KEY, SECRET,
};
use futures_rustls::rustls::{
    self,
    pki_types::{CertificateDer, ServerName},
    ClientConnection, StreamOwned,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{json, Value};
use std::{io::Write, net::TcpStream, path::PathBuf, sync::Arc, time::Duration};
use tungstenite::Message;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A test certificate authority and the files of a server certificate it signed.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("CA certificate");
        let dir =
            std::env::temp_dir().join(format!("pushgate-tls-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Pki { ca, dir }
    }

    /// Issues a certificate for localhost and 127.0.0.1 and writes `cert.pem` and `key.pem`;
    /// returns the certificate.
    fn issue(&self) -> CertificateDer<'static> {
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("server certificate");
        std::fs::write(self.cert_file(), pem("CERTIFICATE", cert.der())).expect("cert file");
        std::fs::write(self.key_file(), pem("PRIVATE KEY", &key.serialize_der()))
            .expect("key file");
        cert.der().clone()
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn config(&self) -> String {
        format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            self.cert_file().display(),
            self.key_file().display()
        )
    }

    /// A client configuration that trusts only this CA.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("trust the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        text.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A TLS connection to the server, handshake done; returns it and the certificate it showed.
fn tls_connect(port: u16, config: &Arc<rustls::ClientConfig>) -> (Tls, CertificateDer<'static>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("tcp connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(config.clone(), name).expect("client connection");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake with the server");
    }
    let shown =
        tls.conn.peer_certificates().and_then(|c| c.first()).expect("a certificate").clone();
    (tls, shown.into_owned())
}

#[test]
fn wss_and_https_on_the_client_port() {
    let pki = Pki::new();
    pki.issue();
    let (server, _log) = Launch::new(&pki.config()).start();
    let config = pki.client();

    let (tls, _) = tls_connect(server.port, &config);
    let url = format!("wss://localhost:{}/app/{KEY}?protocol=7", server.port);
    let (mut ws, _) = tungstenite::client::client(url, tls).expect("WebSocket upgrade over TLS");
    let read = |ws: &mut tungstenite::WebSocket<Tls>| -> Value {
        loop {
            match ws.read().expect("read") {
                Message::Text(text) => return serde_json::from_str(&text).expect("json"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    assert_eq!(read(&mut ws)["event"], "pusher:connection_established");
    let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": "secure"}});
    ws.send(Message::text(subscribe.to_string())).expect("subscribe");
    assert_eq!(read(&mut ws)["event"], "pusher_internal:subscription_succeeded");

    // A signed publish over https.
    let (mut https, _) = tls_connect(server.port, &config);
    let body = json!({"name": "e", "channel": "secure", "data": "over-tls"}).to_string();
    let path = format!("/apps/{APP_ID}/events");
    let query = sign("POST", &path, &body, KEY, SECRET, now());
    let request = format!(
        "POST {path}?{query} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    https.write_all(request.as_bytes()).expect("https request");
    let reply = read_reply(&mut https).expect("https reply");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(read(&mut ws)["data"], "over-tls");

    // And /health over https.
    let (mut https, _) = tls_connect(server.port, &config);
    https.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    assert_eq!(read_reply(&mut https).expect("reply").status, 200);
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let pki = Pki::new();
    let first = pki.issue();
    let (mut server, _log) = Launch::new(&pki.config()).start();
    let config = pki.client();
    let (_kept, shown) = tls_connect(server.port, &config);
    assert_eq!(shown, first);
    let second = pki.issue();
    assert_ne!(first, second);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    let reloaded = eventually(40, Duration::from_millis(250), || {
        matches!(server.child.try_wait(), Ok(None)) && tls_connect(server.port, &config).1 == second
    });
    assert!(
        reloaded,
        "after SIGHUP new connections do not get the new certificate (server exit: {:?})",
        server.child.try_wait()
    );
}
