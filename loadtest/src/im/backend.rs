//! A mock IM backend for `im-rtt`: unary gRPC over h2c (hyper's HTTP/2 server on tokio) that
//! answers every call at once with `CommonResp{}` (code 0), counting the calls.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
};
use tokio::net::TcpListener;

/// The reply message: field 1 (`CommonResp`) empty, framed with gRPC's 5-byte prefix.
const REPLY: &[u8] = &[0, 0, 0, 0, 2, 0x0a, 0x00];

/// Serves on `addr` until the process ends; returns the call counter.
pub async fn start(addr: SocketAddr) -> anyhow::Result<Arc<AtomicU64>> {
    let listener = TcpListener::bind(addr).await?;
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        counter.fetch_add(1, Relaxed);
                        Ok::<_, Infallible>(reply())
                    }
                });
                let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(calls)
}

/// A reply body: the framed message, then the `grpc-status` trailer.
type ReplyBody = http_body_util::combinators::WithTrailers<
    Full<Bytes>,
    std::future::Ready<Option<Result<hyper::http::HeaderMap, Infallible>>>,
>;

fn reply() -> Response<ReplyBody> {
    let mut trailers = hyper::http::HeaderMap::new();
    trailers.insert("grpc-status", hyper::http::HeaderValue::from_static("0"));
    let body =
        Full::new(Bytes::from_static(REPLY)).with_trailers(std::future::ready(Some(Ok(trailers))));
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", hyper::http::HeaderValue::from_static("application/grpc"));
    response
}
