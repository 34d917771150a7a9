//! The client port also speaks HTTP/2 with prior knowledge (h2c), for backends that publish
//! over gRPC: a connection opening with the HTTP/2 preface goes to the h2c server, and a method
//! no dialect serves is UNIMPLEMENTED, while WebSocket and HTTP/1.1 on the same port go on.

mod common;

use common::Server;
use glommio::{LocalExecutorBuilder, Placement};
use pushgate::upstream::grpc::{Code, GrpcClient, GrpcConfig};

#[test]
fn an_unknown_grpc_method_on_the_client_port_is_unimplemented() {
    let server = Server::start("", 2);
    let url = format!("http://127.0.0.1:{}", server.port);
    // On a thread of its own: the executor's signals must not interrupt this thread's reads.
    let status = std::thread::spawn(move || {
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(256 * 1024)
            .make()
            .expect("glommio executor");
        executor.run(async move {
            let client = GrpcClient::new(&url, GrpcConfig::default()).expect("client");
            let reply = client.call("/nobody.Serves/This", b"", &[]).await.expect("an answer");
            (reply.status, reply.message)
        })
    })
    .join()
    .expect("the gRPC thread");
    assert_eq!(status.0, Code::UNIMPLEMENTED, "{}", status.1);
    assert!(status.1.contains("/nobody.Serves/This"), "{}", status.1);
    let mut client = server.client();
    client.subscribe("after-h2");
    server.trigger("after-h2", "e", "still fine");
    assert_eq!(client.recv()["data"], "still fine");
}
