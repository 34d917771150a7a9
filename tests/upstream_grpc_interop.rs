//! A real third-party gRPC client against our h2c server: Python's grpcio (installed with pip
//! into a venv under the target directory by tests/grpc/run.sh, once) calls
//! `pushserverpb.Push/Msg` with metadata `topic` and `msgid`; the server must have seen them
//! and the client must have had OK. Skipped, saying so, only where python3 has no pip.

mod grpc;

use grpc::TestServer;
use pushgate::upstream::grpc::H2cConfig;
use std::{path::Path, process::Command};

/// Exit status of run.sh when python3, venv or pip is missing.
const SKIP: i32 = 77;

#[test]
fn upstream_grpc_interop_grpcio_publishes_with_topic_and_msgid() {
    let server = TestServer::start(H2cConfig::default());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/run.sh");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc-venv");
    // `timeout` bounds the pip install and the calls; the script's own calls time out at 10 s.
    let output = Command::new("timeout")
        .args(["300", "bash"])
        .arg(&script)
        .arg(server.port.to_string())
        .env("GRPC_VENV", &venv)
        .output()
        .expect("run tests/grpc/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(SKIP) {
        eprintln!("SKIPPED: the grpcio interop test needs python3 with venv and pip: {stderr}");
        return;
    }
    assert!(
        output.status.success(),
        "grpcio client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Msg: OK, msgId 1234"), "{stdout}");
    assert!(stdout.contains("Msg without topic: INVALID_ARGUMENT"), "{stdout}");

    let published = server.published();
    assert_eq!(published.len(), 1, "only the call with a topic publishes: {published:?}");
    assert_eq!(published[0].topic, "hq_100001_123");
    assert_eq!(published[0].msg_id, "1234");
    assert_eq!(published[0].body, "q123");
}
