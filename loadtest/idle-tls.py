"""RSS per idle subscribed connection, plain or TLS, for servers the Rust load generator cannot
reach over TLS. Opens 200 connections as a baseline, samples the server's RSS, opens N more
(each subscribed to one of 100 channels), samples again after 2 s and prints the difference
per connection.

    python3 loadtest/idle-tls.py PORT N plain|tls SERVER_PID [CA_FILE]

For tls, CA_FILE is the certificate authority that signed the server's certificate (for
127.0.0.1), e.g. one made as tests/interop/test/tls.test.js makes it with openssl.
"""

import json
import socket
import ssl
import struct
import sys
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def frame(payload):
    mask = b"\x37\xfa\x21\x3d"
    head = struct.pack("!BB", 0x81, 0x80 | len(payload))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def connect(port, ctx, channel):
    sock = socket.create_connection(("127.0.0.1", port))
    if ctx is not None:
        sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    sock.sendall(b"GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    seen = b""
    while b"connection_established" not in seen:
        seen += sock.recv(4096)
    subscribe = {"event": "pusher:subscribe", "data": {"channel": channel}}
    sock.sendall(frame(json.dumps(subscribe).encode()))
    seen = b""
    while b"subscription_succeeded" not in seen:
        seen += sock.recv(4096)
    return sock


def main():
    port, n, mode, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=sys.argv[5]) if mode == "tls" else None
    held = [connect(port, ctx, "ch-%d" % (i % 100)) for i in range(200)]
    time.sleep(1)
    before = rss_kib(pid)
    held += [connect(port, ctx, "ch-%d" % (i % 100)) for i in range(n)]
    time.sleep(2)
    grown = rss_kib(pid) - before
    print("%s: %d idle subscribed connections: RSS +%d KiB = %.0f B per connection"
          % (mode, n, grown, grown * 1024 / n))


if __name__ == "__main__":
    main()
