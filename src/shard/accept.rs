//! The accept loop and the opening of each connection: read the first request head, then either
//! run a WebSocket dialect or hand the connection to the REST server.

use super::Shard;
use crate::{
    conn::{driver, sys, ConnKey, SocketId},
    dialect::pusher::{outbound, session, url},
    error::CloseCode,
    hook::event::{now_ms, EmqxEvent, EmqxKind},
    http,
    ws::handshake::{self, Opening, Upgrade},
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::{os::fd::AsRawFd, rc::Rc, time::Duration};

/// How long a client may take to send its first request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until the shard shuts down; each runs as its own task.
pub async fn serve_listener(shard: Rc<Shard>, listener: TcpListener) {
    while !shard.shutting_down.get() {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(open(shard.clone(), stream)).detach();
            }
            Err(e) => {
                // EMFILE and friends: say so and give closing sockets a moment.
                tracing::warn!(shard = shard.id(), "accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn open(shard: Rc<Shard>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if shard.config.socket_send_buffer > 0 {
        let _ = sys::set_send_buffer(stream.as_raw_fd(), shard.config.socket_send_buffer);
    }
    let head = glommio::timer::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await;
    let (head, opening, len) = match head {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("no request head: {e}");
            return;
        }
    };
    match opening {
        Opening::Upgrade(upgrade) => {
            let rest = head[len..].to_vec();
            drop(head);
            Box::pin(open_websocket(shard, stream, upgrade, rest)).await;
        }
        Opening::BadUpgrade(why) => {
            let _ = stream.write_all(&handshake::http_error("400 Bad Request", why)).await;
        }
        Opening::Http => Box::pin(http::serve(shard, stream, head)).await,
    }
}

/// Reads until a complete request head; the buffer may hold bytes past it.
async fn read_head(stream: &mut TcpStream) -> glommio::Result<(Vec<u8>, Opening, usize), ()> {
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
        match handshake::read_opening(&buf[..filled]) {
            Ok(Some((opening, len))) => {
                buf.truncate(filled);
                return Ok((buf, opening, len));
            }
            Ok(None) => {}
            Err(e) => {
                let answer = handshake::http_error("400 Bad Request", &e.to_string());
                let _ = stream.write_all(&answer).await;
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e).into());
            }
        }
    }
}

/// Routes an upgrade to the Pusher dialect, or refuses it with the matching close code.
async fn open_websocket(shard: Rc<Shard>, mut stream: TcpStream, up: Upgrade, rest: Vec<u8>) {
    let admitted =
        admit(&shard, &up).and_then(|app| shard.add_conn(app).ok_or(CloseCode::OverQuota));
    let ip = stream.peer_addr().ok().map(|a| a.ip().to_string());
    connect_hooks(&shard, &admitted, ip);
    let (key, socket_id) = match admitted {
        Ok(conn) => conn,
        Err(code) => {
            let error = outbound::error(Some(code.code()), code.reason());
            return driver::refuse(stream, &up.response, &error, code).await;
        }
    };
    if stream.write_all(&up.response).await.is_err() {
        shard.remove_conn(key);
        return;
    }
    drop(up);
    session::open(&shard, key, &socket_id.to_string());
    // A task of its own, so the opening's state (head buffer, timers) is freed now rather than
    // kept for the connection's life: measured, it cuts an idle connection's memory from 5.2 KB
    // to 1.8 KB (docs/design/why-a-task-per-connection-after-the-opening.md).
    glommio::spawn_local(driver::run(shard, stream, key, rest, session::on_message)).detach();
}

/// client.connect, client.connack and (when admitted) client.connected.
fn connect_hooks(
    shard: &Shard,
    admitted: &Result<(ConnKey, SocketId), CloseCode>,
    ip: Option<String>,
) {
    let clientid = admitted.as_ref().map(|(_, s)| s.to_string()).unwrap_or_default();
    let event =
        |kind| EmqxEvent { ipaddress: ip.clone(), ..EmqxEvent::new(kind, clientid.clone()) };
    let hooks = &shard.hooks;
    hooks.emqx(EmqxKind::ClientConnect, None, || event(EmqxKind::ClientConnect));
    let conn_ack = admitted.as_ref().map_or_else(|c| c.conn_ack(), |_| "success");
    hooks.emqx(EmqxKind::ClientConnack, None, || EmqxEvent {
        conn_ack: Some(conn_ack),
        ..event(EmqxKind::ClientConnack)
    });
    if admitted.is_ok() {
        hooks.emqx(EmqxKind::ClientConnected, None, || EmqxEvent {
            connected_at: Some(now_ms()),
            ..event(EmqxKind::ClientConnected)
        });
    }
}

/// The app a Pusher upgrade may join, or the close code that refuses it.
fn admit(shard: &Shard, up: &Upgrade) -> Result<u16, CloseCode> {
    if shard.shutting_down.get() {
        return Err(CloseCode::Reconnect);
    }
    let key = url::app_key(&up.path).ok_or(CloseCode::PathNotFound)?;
    let (app, config) = shard.config.app_by_key(key).ok_or(CloseCode::AppNotFound)?;
    url::check_protocol(&up.query)?;
    if !config.enabled {
        return Err(CloseCode::AppDisabled);
    }
    let origins = &config.allowed_origins;
    if !origins.is_empty() && !up.origin.as_ref().is_some_and(|o| origins.contains(o)) {
        return Err(CloseCode::Unauthorized);
    }
    Ok(app)
}
