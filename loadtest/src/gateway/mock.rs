//! The mock upstream the gateway modes run for the server's routes: the original's
//! length-prefixed TCP JSON (`0xB7 0x00` + u32 LE + JSON) on one port and HTTP (hyper) on the
//! next, both answering at once as the original's `mock_ms1975` does: code "0", the request's
//! `msgId`, and `topics` = the request's `body.topics` joined with commas.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::{convert::Infallible, net::SocketAddr};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Largest request frame the mock reads.
const MAX_FRAME: usize = 1 << 20;

/// Binds the TCP mock on `addr` and the HTTP mock on the next port; serves until the process ends.
pub async fn start(addr: SocketAddr) -> anyhow::Result<()> {
    let http_addr = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1));
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("mock upstream: cannot listen on {addr}: {e}"))?;
    let http = TcpListener::bind(http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("mock upstream: cannot listen on {http_addr}: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            tokio::spawn(serve_tcp(stream));
        }
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = http.accept().await {
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(serve_http);
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let _ = conn.await;
            });
        }
    });
    Ok(())
}

/// The answer's body and `topics` for a request `{uri, header, body}`.
fn answer(request: &Value) -> (Value, Option<String>) {
    let topics = request["body"]["topics"]
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
    let body = json!({"code": "0", "message": "upstream success",
                      "msgId": request["header"]["msgId"], "resultData": "null"});
    (body, topics)
}

async fn serve_tcp(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut head = [0u8; 6];
    let mut payload = Vec::new();
    loop {
        if stream.read_exact(&mut head).await.is_err() || head[..2] != [0xB7, 0x00] {
            return;
        }
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        if len > MAX_FRAME {
            return;
        }
        payload.resize(len, 0);
        if stream.read_exact(&mut payload).await.is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        let (body, topics) = answer(&request);
        let mut reply = json!({"status": 200, "body": body});
        if let Some(topics) = topics {
            reply["header"] = json!({ "topics": topics });
        }
        let text = reply.to_string();
        let mut out = Vec::with_capacity(6 + text.len());
        out.extend_from_slice(&[0xB7, 0x00]);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn serve_http(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let msg_id = request.headers().get("msgid").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let request = json!({"header": {"msgId": msg_id},
                         "body": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)});
    let (body, topics) = answer(&request);
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(value) = topics.and_then(|t| hyper::header::HeaderValue::from_str(&t).ok()) {
        headers.insert("topics", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_echo_the_msg_id_and_list_the_topics() {
        let request =
            json!({"uri": "/r", "header": {"msgId": "7"}, "body": {"topics": ["a", "b"]}});
        let (body, topics) = answer(&request);
        assert_eq!(body["msgId"], "7");
        assert_eq!(body["code"], "0");
        assert_eq!(topics.as_deref(), Some("a,b"));
        assert_eq!(answer(&json!({"header": {}})).1, None);
    }
}
