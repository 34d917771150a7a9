//! The accept loop and the opening of each connection: the TLS handshake when the port is
//! TLS, the first request head, then either hand an upgrade to the dialect the router picks
//! (which admits or refuses it before anything is answered) or hand the connection to the
//! REST server; a plain connection that opens with the HTTP/2 preface (backends publishing
//! over gRPC) goes to the h2c server. Near the open-file limit, upgrades are refused (503) so
//! the descriptors left serve the REST API; with none left, a client is accepted and closed
//! at once rather than left waiting.

use super::{gate::Gate, http, router::Router, stream::Stream, Edge, HEAD_TIMEOUT};
use crate::{
    engine::{
        conn::{driver, sys, tls::Tls, ConnKey},
        seam::Admission,
        shard::Shard,
    },
    hook::event::{now_ms, EmqxEvent, EmqxKind},
    rest::h2_not_found,
    upstream::grpc::server::{is_h2_preface, serve_h2c, H2Request},
    ws::{
        frame,
        handshake::{self, Opening, Upgrade},
    },
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use glommio::{net::TcpStream, GlommioError};
use std::{net::SocketAddr, os::fd::AsRawFd, rc::Rc, sync::Arc, time::Duration};

/// How long a connection accepted into the descriptor reserve may take to send its head: it
/// holds one of the last descriptors.
const RESERVE_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections until the shard shuts down; each runs as its own task.
pub async fn serve_listener(
    shard: Rc<Shard>,
    router: Rc<Router>,
    edge: Arc<Edge>,
    listener: sys::Listener,
) {
    let gate = Gate::new(shard.config.max_concurrent_rest_requests, edge.fds);
    let acceptor = edge.tls.as_ref().map(|tls| tls.acceptor());
    while !shard.shutting_down.get() {
        match listener.inner.accept().await {
            Ok(stream) => {
                let opening =
                    open(shard.clone(), router.clone(), gate.clone(), acceptor.clone(), stream);
                glommio::spawn_local(opening).detach();
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                // No descriptor for the client: take it with the spare one and close it, so it
                // is refused rather than left waiting in the listen queue.
                let refused = out_of_fds && gate.refuse_one(listener.fd);
                if let Some(n) = gate.accept_errors.note() {
                    tracing::warn!(shard = shard.id(), "accept failed ({n} in 10 s): {e}");
                }
                if !refused {
                    // Give closing sockets a moment.
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn open(
    shard: Rc<Shard>,
    router: Rc<Router>,
    gate: Rc<Gate>,
    acceptor: Option<TlsAcceptor>,
    tcp: TcpStream,
) {
    let _ = tcp.set_nodelay(true);
    if shard.config.socket_send_buffer > 0 {
        let _ = sys::set_send_buffer(tcp.as_raw_fd(), shard.config.socket_send_buffer);
    }
    let reserved = gate.fds.in_reserve(tcp.as_raw_fd());
    let within = if reserved { RESERVE_HEAD_TIMEOUT } else { HEAD_TIMEOUT };
    let opened = glommio::timer::timeout(within, async {
        let mut stream = match acceptor {
            // Boxed: the handshake's state is large, and plain connections should not carry
            // room for it in their opening task.
            Some(acceptor) => Stream::Tls(Box::new(Box::pin(acceptor.accept(tcp)).await?)),
            None => Stream::Plain(tcp),
        };
        let head = read_head(&mut stream).await?;
        Ok((stream, head))
    })
    .await;
    let (mut stream, head, opening, len) = match opened {
        Ok((stream, Head::Http1(head, opening, len))) => (stream, head, opening, len),
        Ok((Stream::Plain(tcp), Head::H2(read))) => {
            return Box::pin(serve_h2(shard, router, tcp, read)).await
        }
        Ok((_, Head::H2(_))) => return, // h2 over TLS (ALPN) is not served
        Err(e) => {
            tracing::debug!("no request head: {e}");
            return;
        }
    };
    match opening {
        Opening::Upgrade(_) if reserved => {
            if let Some(n) = gate.refused.note() {
                tracing::warn!(
                    shard = shard.id(),
                    "open-file limit: WebSocket clients refused ({n} in 10 s); the fd_reserve \
                     descriptors serve the REST API"
                );
            }
            let busy = handshake::http_error_with(
                "503 Service Unavailable",
                "The server is at its open-file limit",
                &["Retry-After: 5"],
            );
            let _ = stream.write_all(&busy).await;
            let _ = stream.flush().await;
        }
        Opening::Upgrade(upgrade) => {
            let rest = head[len..].to_vec();
            drop(head);
            Box::pin(open_websocket(shard, &router, stream, upgrade, rest)).await;
        }
        Opening::BadUpgrade(why) => {
            answer(&mut stream, &handshake::http_error("400 Bad Request", why)).await;
        }
        Opening::BadVersion => answer(&mut stream, &handshake::bad_version()).await,
        Opening::Http => Box::pin(http::serve(shard, router, gate, stream, head)).await,
    }
}

/// Writes an answer that ends the connection.
async fn answer(stream: &mut Stream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

/// How a connection opens.
enum Head {
    /// An HTTP/1.1 request head (what it asks for, its length), with any bytes past it.
    Http1(Vec<u8>, Opening, usize),
    /// The HTTP/2 preface, with any bytes past it.
    H2(Vec<u8>),
}

/// Reads until a complete request head (or the HTTP/2 preface); the buffer may hold bytes past
/// it.
async fn read_head(stream: &mut Stream) -> glommio::Result<Head, ()> {
    let mut buf = vec![0u8; 1024];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize((buf.len() * 2).min(handshake::MAX_HEAD), 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
        match is_h2_preface(&buf[..filled]) {
            Some(true) => {
                buf.truncate(filled);
                return Ok(Head::H2(buf));
            }
            None => continue,
            Some(false) => {}
        }
        match handshake::read_opening(&buf[..filled]) {
            Ok(Some((opening, len))) => {
                buf.truncate(filled);
                return Ok(Head::Http1(buf, opening, len));
            }
            Ok(None) => {}
            Err(e) => {
                answer(stream, &handshake::http_error(e.status(), &e.to_string())).await;
                return Err(GlommioError::IoError(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e,
                )));
            }
        }
    }
}

/// Serves HTTP/2 (h2c): each request goes to the route table that serves its path.
async fn serve_h2(shard: Rc<Shard>, router: Rc<Router>, stream: TcpStream, read: Vec<u8>) {
    let config = router.h2c.clone();
    let handler = move |request: H2Request| {
        let (shard, router) = (shard.clone(), router.clone());
        async move {
            match router.h2_for(&request.path) {
                Some(routes) => routes.call_h2(shard, request).await,
                None => h2_not_found(&request),
            }
        }
    };
    if let Err(e) = serve_h2c(stream, read, config, handler).await {
        tracing::debug!("h2c connection ended: {e}");
    }
}

/// Asks the upgrade's dialect to admit it; then answers 101 and starts the connection's task,
/// or refuses it the way the dialect says.
async fn open_websocket(
    shard: Rc<Shard>,
    router: &Router,
    mut stream: Stream,
    up: Upgrade,
    rest: Vec<u8>,
) {
    let dialect = router.dialect_for(&up.path).and_then(|tag| Some((tag, shard.dialect(tag)?)));
    let Some((tag, dialect)) = dialect.map(|(tag, d)| (tag, d.clone())) else {
        let not_found =
            handshake::http_error("404 Not Found", "No WebSocket endpoint at this path");
        return answer(&mut stream, &not_found).await;
    };
    let peer = stream.tcp().peer_addr().ok();
    let (ns, headers) = match dialect.admit(&shard, &up, peer).await {
        Admission::Accept { ns, headers } => (ns, headers),
        Admission::Refuse { status, body, why } => {
            connect_hooks(&shard, None, peer, why);
            return answer(&mut stream, &handshake::http_error(&http_status(status), &body)).await;
        }
        Admission::RefuseInside { frames, close, why } => {
            connect_hooks(&shard, None, peer, why);
            // The 101, the dialect's frames (already encoded), a close frame; then linger.
            let mut bytes = up.response(&[]);
            bytes.extend_from_slice(&frames);
            bytes.extend_from_slice(&frame::close(close.code, &close.reason));
            answer(&mut stream, &bytes).await;
            return stream.close().await;
        }
    };
    let key = shard.add_conn(ns, tag);
    connect_hooks(&shard, Some(key), peer, "success");
    let written = stream.write_all(&up.response(&headers)).await;
    if written.is_err() || stream.flush().await.is_err() {
        shard.remove_conn(key);
        return;
    }
    dialect.open(&shard, key, &up, peer);
    drop(up);
    // A task of its own, so the opening's state (head buffer, timers) is freed now rather than
    // kept for the connection's life: measured, it cuts an idle connection's memory from 5.2 KB
    // to 1.8 KB (docs/design/why-a-task-per-connection-after-the-opening.md).
    match stream {
        Stream::Plain(tcp) => {
            glommio::spawn_local(driver::run(shard, tcp, key, tag, rest)).detach();
        }
        Stream::Tls(tls) => {
            let (tcp, session) = tls.into_inner();
            let task = driver::run_with(shard, tcp, Tls::new(session), key, tag, rest);
            glommio::spawn_local(task).detach();
        }
    }
}

/// `404 Not Found` from 404.
fn http_status(status: u16) -> String {
    let code = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    format!("{} {}", code.as_u16(), code.canonical_reason().unwrap_or(""))
}

/// client.connect, client.connack and (when admitted) client.connected.
fn connect_hooks(shard: &Shard, key: Option<ConnKey>, peer: Option<SocketAddr>, ack: &'static str) {
    let hooks = &shard.hooks;
    if !hooks.wants_emqx(EmqxKind::ClientConnect, None)
        && !hooks.wants_emqx(EmqxKind::ClientConnack, None)
        && !hooks.wants_emqx(EmqxKind::ClientConnected, None)
    {
        return;
    }
    let clientid = key
        .and_then(|key| {
            let tag = shard.with_conn(key, |c| c.tag)?;
            Some(shard.dialect(tag)?.client_id(shard, key))
        })
        .unwrap_or_default();
    let ip = peer.map(|a| a.ip().to_string());
    let event =
        |kind| EmqxEvent { ipaddress: ip.clone(), ..EmqxEvent::new(kind, clientid.clone()) };
    hooks.emqx(EmqxKind::ClientConnect, None, || event(EmqxKind::ClientConnect));
    hooks.emqx(EmqxKind::ClientConnack, None, || EmqxEvent {
        conn_ack: Some(ack),
        ..event(EmqxKind::ClientConnack)
    });
    if key.is_some() {
        hooks.emqx(EmqxKind::ClientConnected, None, || EmqxEvent {
            connected_at: Some(now_ms()),
            ..event(EmqxKind::ClientConnected)
        });
    }
}
