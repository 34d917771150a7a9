"""Calls pushgate's h2c server with the real gRPC client (grpcio): pushserverpb.Push/Msg with
metadata topic and msgid, as the API7 Push Gateway's publishers do, then a call the server
refuses. Messages are encoded by hand (field 1, length-delimited), so no protoc is needed.

    python push_msg.py PORT     # exits 0 when every check passed, printing one line per call
"""

import sys

import grpc


def field1(data: bytes) -> bytes:
    """A message whose only field is number 1, wire type 2 (bytes or string)."""
    assert len(data) < 128, "one-byte varint length only"
    return b"\x0a" + bytes([len(data)]) + data


def parse_field1(message: bytes) -> bytes:
    if not message:
        return b""
    assert message[0] == 0x0A and message[1] == len(message) - 2, message
    return message[2:]


def main() -> int:
    port = int(sys.argv[1])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        msg = channel.unary_unary(
            "/pushserverpb.Push/Msg",
            request_serializer=lambda body: field1(body),
            response_deserializer=parse_field1,
        )
        reply, call = msg.with_call(
            b"q123", metadata=(("topic", "hq_100001_123"), ("msgid", "1234")), timeout=10
        )
        assert call.code() == grpc.StatusCode.OK, call.code()
        assert reply == b"1234", reply
        print(f"Msg: {call.code().name}, msgId {reply.decode()}")

        try:
            msg(b"no topic", metadata=(("msgid", "5"),), timeout=10)
        except grpc.RpcError as refused:
            assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.code()
            assert "topic" in refused.details(), refused.details()
            print(f"Msg without topic: {refused.code().name}, {refused.details()}")
        else:
            raise AssertionError("a call without topic was accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
