"""Publishes to pushgate's gateway dialect with the real gRPC client (grpcio), as the API7 Push
Gateway's publishers do: pushserverpb.Push/Msg with metadata topic, msgid and the publish key
as authorization; then the same call without the key, which must be refused. Messages are
encoded by hand (field 1, length-delimited), so no protoc is needed.

    python gateway_msg.py PORT TOPIC KEY     # exits 0 when every check passed
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
    port, topic, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        msg = channel.unary_unary(
            "/pushserverpb.Push/Msg",
            request_serializer=field1,
            response_deserializer=parse_field1,
        )
        metadata = (("topic", topic), ("msgid", "1234"), ("authorization", f"Bearer {key}"))
        reply, call = msg.with_call(b"q123", metadata=metadata, timeout=10)
        assert call.code() == grpc.StatusCode.OK, call.code()
        assert reply == b"1234", reply
        print(f"Msg: {call.code().name}, msgId {reply.decode()}")

        try:
            msg(b"no key", metadata=(("topic", topic), ("msgid", "5")), timeout=10)
        except grpc.RpcError as refused:
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused.code()
            print(f"Msg without key: {refused.code().name}")
        else:
            raise AssertionError("a call without the publish key was accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
