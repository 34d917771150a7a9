//! A test h2c server: a glommio executor in its own thread, accepting on 127.0.0.1 port 0,
//! telling HTTP/2 from HTTP/1.1 by the preface as the accept loop does, and serving each
//! connection with `serve_h2c` and a handler that records publishes and has a few test methods.

#![allow(dead_code)]

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{
    net::{TcpListener, TcpStream},
    LocalExecutorBuilder, Placement,
};
use pushgate::upstream::grpc::{
    is_h2_preface,
    pushserverpb::{Publish, MSG_PATH},
    serve_h2c, Code, GrpcResponse, H2Reply, H2Request, H2cConfig,
};
use std::{
    rc::Rc,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Mutex,
    },
    time::Duration,
};

/// The running server; its thread lives as long as the test process.
pub struct TestServer {
    pub port: u16,
    pub published: Arc<Mutex<Vec<Publish>>>,
    accepted: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start(config: H2cConfig) -> TestServer {
        let published = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (port_tx, port_rx) = mpsc::channel();
        let (seen, count) = (published.clone(), accepted.clone());
        std::thread::spawn(move || {
            let executor = LocalExecutorBuilder::new(Placement::Unbound)
                .io_memory(512 * 1024)
                .make()
                .expect("server executor");
            executor.run(accept_loop(Rc::new(config), port_tx, seen, count));
        });
        let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("server port");
        TestServer { port, published, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn published(&self) -> Vec<Publish> {
        self.published.lock().expect("lock").clone()
    }
}

async fn accept_loop(
    config: Rc<H2cConfig>,
    port: mpsc::Sender<u16>,
    published: Arc<Mutex<Vec<Publish>>>,
    accepted: Arc<AtomicUsize>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    port.send(listener.local_addr().expect("addr").port()).expect("send port");
    while let Ok(stream) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        glommio::spawn_local(open(stream, config.clone(), published.clone())).detach();
    }
}

/// Reads until the preface decides; HTTP/2 goes to `serve_h2c` with the bytes read.
async fn open(mut stream: TcpStream, config: Rc<H2cConfig>, published: Arc<Mutex<Vec<Publish>>>) {
    let mut buf = vec![0u8; 1024];
    let mut filled = 0;
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        match is_h2_preface(&buf[..filled]) {
            None => continue,
            Some(true) => break,
            Some(false) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
        }
    }
    buf.truncate(filled);
    let handler = move |request| handle(request, published.clone());
    if let Err(e) = serve_h2c(stream, buf, config, handler).await {
        eprintln!("h2c connection ended: {e}");
    }
}

async fn handle(request: H2Request, published: Arc<Mutex<Vec<Publish>>>) -> H2Reply {
    let grpc = |reply| H2Reply::Grpc(reply);
    match (request.grpc, request.path.as_str()) {
        (true, MSG_PATH) => match Publish::from_request(&request) {
            Ok(publish) => {
                let reply = publish.reply();
                published.lock().expect("lock").push(publish);
                grpc(reply)
            }
            Err(refusal) => grpc(refusal),
        },
        (true, "/test.Echo/Echo") => grpc(GrpcResponse::ok(request.body)),
        (true, "/test.Echo/Metadata") => {
            let value = request.header("x-probe").unwrap_or_default().to_string();
            grpc(GrpcResponse::ok(Bytes::from(value)))
        }
        (true, "/test.Echo/Slow") => {
            glommio::timer::sleep(Duration::from_secs(2)).await;
            grpc(GrpcResponse::ok(Bytes::new()))
        }
        (true, "/test.Echo/Big") => grpc(GrpcResponse::ok(Bytes::from(vec![b'x'; 100_000]))),
        (true, "/test.Echo/Fail") => {
            grpc(GrpcResponse::error(Code::NOT_FOUND, "no such topic: 100%"))
        }
        (true, _) => grpc(GrpcResponse::error(Code::UNIMPLEMENTED, "unknown method")),
        (false, "/list/topics") => {
            let topics: Vec<String> =
                published.lock().expect("lock").iter().map(|p| p.topic.clone()).collect();
            let body = serde_json::json!({ "topics": topics }).to_string();
            let response = http::Response::builder()
                .header("content-type", "application/json")
                .body(Bytes::from(body))
                .expect("response");
            H2Reply::Http(response)
        }
        (false, _) => {
            let response = http::Response::builder().status(404).body(Bytes::new()).expect("404");
            H2Reply::Http(response)
        }
    }
}
