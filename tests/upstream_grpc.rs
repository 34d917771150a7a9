//! Our unary gRPC client against our h2c server (tests/grpc: its own thread and executor):
//! the publish call with metadata, statuses, limits both ways, deadlines, plain HTTP over h2c,
//! many calls on one connection, and reconnection after the server reaps an idle connection.

mod grpc;

use bytes::Bytes;
use glommio::{timer::sleep, LocalExecutorBuilder, Placement};
use grpc::TestServer;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use prost::Message;
use pushgate::upstream::grpc::{
    pushserverpb::{MsgReply, MsgRequest, MSG_PATH},
    Code, GrpcClient, GrpcConfig, GrpcError, H2cConfig,
};
use pushgate::upstream::rt::{Io, LocalExec};
use std::{future::Future, time::Duration};

fn run<Fut: Future<Output = ()> + 'static>(test: impl FnOnce() -> Fut) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 * 1024)
        .make()
        .expect("glommio executor");
    executor.run(test());
}

fn server() -> TestServer {
    TestServer::start(H2cConfig { max_message: 64 * 1024, ..H2cConfig::default() })
}

fn client(server: &TestServer) -> GrpcClient {
    let config = GrpcConfig {
        request_timeout: Duration::from_millis(500),
        max_message: 32 * 1024,
        ..GrpcConfig::default()
    };
    GrpcClient::new(&format!("http://127.0.0.1:{}", server.port), config).expect("client")
}

fn metadata(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn upstream_grpc_publish_round_trip_with_metadata() {
    let server = server();
    let client = client(&server);
    run(|| async move {
        let request = MsgRequest { body: Bytes::from_static(b"q123") }.encode_to_vec();
        let meta = metadata(&[("topic", "hq_100001_123"), ("msgid", "1234")]);
        let reply = client.call(MSG_PATH, &request, &meta).await.expect("call");
        assert_eq!((reply.status, reply.message.as_str()), (Code::OK, ""));
        assert_eq!(MsgReply::decode(reply.body).expect("reply").msg_id, "1234");

        let refused = client.call(MSG_PATH, &request, &[]).await.expect("call");
        assert_eq!(refused.status, Code::INVALID_ARGUMENT);
        assert!(refused.message.contains("topic"), "{}", refused.message);
    });
    let published = server.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].topic, "hq_100001_123");
    assert_eq!(published[0].msg_id, "1234");
    assert_eq!(published[0].body, "q123");
}

#[test]
fn upstream_grpc_statuses_and_messages_come_back() {
    let server = server();
    let client = client(&server);
    run(|| async move {
        let echo = client.call("/test.Echo/Echo", b"ping", &[]).await.expect("echo");
        assert_eq!((echo.status, &echo.body[..]), (Code::OK, &b"ping"[..]));
        let empty = client.call("/test.Echo/Echo", b"", &[]).await.expect("empty message");
        assert_eq!((empty.status, empty.body.len()), (Code::OK, 0));
        let probe = metadata(&[("x-probe", "seen")]);
        let meta = client.call("/test.Echo/Metadata", b"", &probe).await.expect("metadata");
        assert_eq!(&meta.body[..], b"seen");

        let fail = client.call("/test.Echo/Fail", b"", &[]).await.expect("a status");
        assert_eq!(fail.status, Code::NOT_FOUND);
        assert_eq!(fail.message, "no such topic: 100%", "percent-encoded and back");
        let unknown = client.call("/test.Echo/Nope", b"", &[]).await.expect("a status");
        assert_eq!(unknown.status, Code::UNIMPLEMENTED);
    });
}

#[test]
fn upstream_grpc_limits_hold_both_ways() {
    let server = server();
    let client = client(&server);
    let roomy = GrpcConfig { max_message: 1 << 20, ..GrpcConfig::default() };
    let roomy = GrpcClient::new(&format!("http://127.0.0.1:{}", server.port), roomy);
    let roomy = roomy.expect("client");
    run(|| async move {
        let big = vec![b'x'; 100 * 1024];
        let err = client.call("/test.Echo/Echo", &big, &[]).await.expect_err("over our limit");
        assert!(matches!(err, GrpcError::Message(_)), "{err}");

        let over = roomy.call("/test.Echo/Echo", &big, &[]).await.expect("a status");
        assert_eq!(over.status, Code::RESOURCE_EXHAUSTED, "{}", over.message);

        let err = client.call("/test.Echo/Big", b"", &[]).await.expect_err("reply too large");
        assert!(matches!(err, GrpcError::ReplyTooLarge { limit: 32768 }), "{err}");
        let fine = client.call("/test.Echo/Echo", b"after", &[]).await.expect("still serves");
        assert_eq!(&fine.body[..], b"after");
    });
}

#[test]
fn upstream_grpc_a_slow_call_times_out_and_the_connection_serves_on() {
    let server = server();
    let client = client(&server);
    run(|| async move {
        let err = client.call("/test.Echo/Slow", b"", &[]).await.expect_err("slow");
        assert!(matches!(err, GrpcError::Timeout), "{err}");
        assert!(err.is_socket());
        let echo = client.call("/test.Echo/Echo", b"next", &[]).await.expect("next call");
        assert_eq!(&echo.body[..], b"next");
    });
    assert_eq!(server.accepted(), 1, "the cancelled stream left the connection usable");
}

#[test]
fn upstream_grpc_plain_http_over_h2c_reaches_the_handler() {
    let server = server();
    let port = server.port;
    run(|| async move {
        // A plain HTTP/2 client: hyper's, on the crate's glommio glue.
        let stream = glommio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let (mut sender, connection) = http2::Builder::new(LocalExec)
            .handshake::<_, Full<Bytes>>(Io::new(stream))
            .await
            .expect("handshake");
        glommio::spawn_local(connection).detach();
        let base = format!("http://127.0.0.1:{port}");
        let get = http::Request::get(format!("{base}/list/topics")).body(Full::default());
        let response = sender.send_request(get.expect("request")).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], br#"{"topics":[]}"#);

        let huge = Full::new(Bytes::from(vec![0u8; 65 * 1024]));
        let post = http::Request::post(format!("{base}/upload")).body(huge).expect("request");
        let response = sender.send_request(post).await.expect("response");
        assert_eq!(response.status(), 413, "a plain body over max_message");
    });
}

#[test]
fn upstream_grpc_many_calls_share_one_connection() {
    let server = server();
    let client = client(&server);
    run(|| async move {
        let calls = (0..20u8).map(|i| {
            let client = client.clone();
            glommio::spawn_local(async move {
                let reply = client.call("/test.Echo/Echo", &[i], &[]).await.expect("call");
                assert_eq!(&reply.body[..], &[i]);
            })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await;
        }
        assert!(client.is_connected());
    });
    assert_eq!(server.accepted(), 1, "20 concurrent calls, one HTTP/2 connection");
}

#[test]
fn upstream_grpc_the_client_reconnects_after_an_idle_connection_is_reaped() {
    let server = TestServer::start(H2cConfig {
        idle_timeout: Duration::from_millis(200),
        ..H2cConfig::default()
    });
    let client = client(&server);
    run(|| async move {
        client.call("/test.Echo/Echo", b"1", &[]).await.expect("first");
        let start = std::time::Instant::now();
        while client.is_connected() {
            assert!(start.elapsed() < Duration::from_secs(20), "the idle connection stayed");
            sleep(Duration::from_millis(50)).await;
        }
        let again = client.call("/test.Echo/Echo", b"2", &[]).await.expect("after reconnect");
        assert_eq!(&again.body[..], b"2");
    });
    assert_eq!(server.accepted(), 2);
}

#[test]
fn upstream_grpc_connect_refused_is_a_socket_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    run(|| async move {
        let client = GrpcClient::new(&url, GrpcConfig::default()).expect("client");
        let err = client.call("/x.Y/Z", b"", &[]).await.expect_err("refused");
        assert!(matches!(err, GrpcError::Connect(_)), "{err}");
        assert!(err.is_socket());
    });
}
