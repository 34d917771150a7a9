"""The official Python server SDK (`pusher` 3.3.4) against the pushgate binary.

Started by run.sh inside a temporary virtualenv. Starts pushgate on a free port with one app
whose id is numeric (the SDK refuses others: "123456"), then drives trigger, trigger_batch,
channel_info, channels_info, users_info and terminate_user_connections, checking each through
WebSocket clients (a minimal RFC 6455 client below: the standard library has none).
Every wait is bounded; exits 1 if any check fails.
"""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import pusher

HOST = "127.0.0.1"
APP_ID = "123456"
KEY = "app-key"
SECRET = "app-secret"
WAIT = 5.0
HERE = os.path.dirname(os.path.abspath(__file__))


def binary():
    default = os.path.join(HERE, "..", "..", "..", "target", "release", "pushgate")
    return os.path.abspath(os.environ.get("PUSHGATE_BIN", default))


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """pushgate with a numeric app id, 2 shards, on a free port; stopped with SIGTERM."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pushgate-pysdk-")
        config = os.path.join(self.dir, "pushgate.toml")
        with open(config, "w") as f:
            f.write('[[apps]]\nid = "%s"\nkey = "%s"\nsecret = "%s"\n' % (APP_ID, KEY, SECRET))
        self.port = free_port()
        args = [binary(), "--config", config, "--host", HOST, "--port", str(self.port),
                "--shards", "2"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = []
        threading.Thread(target=self._drain, daemon=True).start()
        ready = threading.Event()

        def watch():
            for line in self.proc.stdout:
                if b"listening on" in line:
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(10):
            self.stop()
            raise RuntimeError("pushgate did not start: %s" % b"".join(self.stderr)[-2000:])

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))
        os.rmdir(self.dir)


class Closed(Exception):
    """The server closed the WebSocket; `code` is its close code (None without one)."""

    def __init__(self, code):
        super().__init__("closed with %s" % code)
        self.code = code


class Client:
    """A Pusher protocol 7 client over a minimal WebSocket implementation."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = ("GET /app/%s?protocol=7&client=python-interop&version=1 HTTP/1.1\r\n"
                   "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (KEY, HOST, port, key))
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("no upgrade answer: %r" % head)
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("upgrade refused: %r" % head)
        hello = self.recv()
        assert hello["event"] == "pusher:connection_established", hello
        self.socket_id = json.loads(hello["data"])["socket_id"]

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise Closed(None)
            data += chunk
        return data

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, message):
        self._frame(0x1, json.dumps(message).encode())

    def recv(self, timeout=WAIT):
        """The next text message as JSON; raises Closed on a close frame or EOF."""
        self.sock.settimeout(timeout)
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x8:
                raise Closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
            if opcode == 0x9:
                self._frame(0xA, payload)

    def expect(self, event, channel=None):
        message = self.recv()
        assert message.get("event") == event, "expected %s, got %s" % (event, message)
        if channel is not None:
            assert message.get("channel") == channel, message
        return message

    def subscribe(self, channel, auth=None):
        data = {"channel": channel}
        if auth:
            data.update(auth)
        self.send({"event": "pusher:subscribe", "data": data})
        return self.expect("pusher_internal:subscription_succeeded", channel)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def check_trigger(server, sdk):
    client = Client(server.port)
    client.subscribe("py-public")
    sdk.trigger("py-public", "created", {"id": 42})
    message = client.expect("created", "py-public")
    assert json.loads(message["data"]) == {"id": 42}, message
    # Exclusion by socket_id: the excluded client gets only the next event.
    sdk.trigger("py-public", "skipped", {}, socket_id=client.socket_id)
    sdk.trigger("py-public", "after", {})
    client.expect("after", "py-public")
    client.close()


def check_trigger_batch(server, sdk):
    client = Client(server.port)
    client.subscribe("py-batch")
    sdk.trigger_batch([
        {"channel": "py-batch", "name": "first", "data": {"n": 1}},
        {"channel": "py-batch", "name": "second", "data": {"n": 2}},
    ])
    assert json.loads(client.expect("first", "py-batch")["data"]) == {"n": 1}
    assert json.loads(client.expect("second", "py-batch")["data"]) == {"n": 2}
    client.close()


def check_channel_info(server, sdk):
    clients = [Client(server.port) for _ in range(3)]
    for client in clients:
        client.subscribe("py-info")
    info = sdk.channel_info("py-info", ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 3}, info
    listed = sdk.channels_info(prefix_filter="py-info")
    assert "py-info" in listed["channels"], listed
    for client in clients:
        client.close()
    empty = sdk.channel_info("py-nobody")
    assert empty == {"occupied": False}, empty


def check_users_info(server, sdk):
    clients = []
    for user in ("ann", "bo"):
        client = Client(server.port)
        auth = sdk.authenticate("presence-py", client.socket_id,
                                {"user_id": user, "user_info": {"name": user.title()}})
        client.subscribe("presence-py", auth)
        clients.append(client)
    users = sdk.users_info("presence-py")
    assert sorted(u["id"] for u in users["users"]) == ["ann", "bo"], users
    for client in clients:
        client.close()


def check_terminate_user_connections(server, sdk):
    target = Client(server.port)
    bystander = Client(server.port)
    for client, user in ((target, "py-doomed"), (bystander, "py-kept")):
        signed = sdk.authenticate_user(client.socket_id, {"id": user})
        client.send({"event": "pusher:signin", "data": signed})
        client.expect("pusher:signin_success")
    sdk.terminate_user_connections("py-doomed")
    try:
        message = target.recv()
        raise AssertionError("the terminated connection got %s instead of a close" % message)
    except Closed as closed:
        assert closed.code == 4009, "closed with %s, expected 4009" % closed.code
    bystander.send({"event": "pusher:ping", "data": {}})
    bystander.expect("pusher:pong")
    target.close()
    bystander.close()


CHECKS = [
    check_trigger,
    check_trigger_batch,
    check_channel_info,
    check_users_info,
    check_terminate_user_connections,
]


def main():
    print("pusher (Python SDK) %s against %s" % (pusher.version.VERSION, binary()))
    server = Server()
    sdk = pusher.Pusher(app_id=APP_ID, key=KEY, secret=SECRET, ssl=False, host=HOST,
                        port=server.port, timeout=WAIT)
    failed = 0
    try:
        for check in CHECKS:
            started = time.monotonic()
            try:
                check(server, sdk)
                print("ok   %s (%.2f s)" % (check.__name__, time.monotonic() - started))
            except Exception:
                failed += 1
                print("FAIL %s" % check.__name__)
                traceback.print_exc(file=sys.stdout)
    finally:
        server.stop()
    print("%d of %d checks failed" % (failed, len(CHECKS)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
