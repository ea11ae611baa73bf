"""examples/chat_server: three clients, broadcast order per sender, nick changes, a client that never reads
(it does not block the others; what it misses is counted and reported to it), leaving, SIGTERM.

usage: example_chat.py CHAT_SERVER

The server's queues hold QUEUE messages (--queue-size); the senders here go in batches of BATCH
lines and let the receivers read each batch before the next, so an attentive client never has more than
BATCH messages queued and never loses one: every outcome below is deterministic.
"""

import signal
import socket
import time
import sys

from example_server import TIMEOUT, Server, check, recv_eof

BATCH = 32
QUEUE = 64


class Client:
    def __init__(self, server, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # set before connecting: it fixes the TCP window (no autotuning)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", server.port))
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            check(chunk, f"connection closed while waiting for a line (have {self.buf[:80]!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def expect(self, text):
        got = self.line()
        check(got == text, f"expected {text!r}, got {got!r}")

    def close(self):
        self.sock.close()


def main():
    server = Server(sys.argv[1], "--queue-size", str(QUEUE), "--grace", "0.5")

    # Joining: each client learns its name; the others hear about it.
    a = Client(server)
    a.expect("* you are user1")
    b = Client(server)
    b.expect("* you are user2")
    a.expect("* user2 joined")
    slow = Client(server, rcvbuf=4096)  # user3: from now on it reads nothing until the end
    a.expect("* user3 joined")
    b.expect("* user3 joined")

    # Nick changes (and a refused one: taken).
    a.send("/nick alice")
    a.expect("* you are alice")
    b.expect("* user1 is now alice")
    b.send("/nick alice")
    b.expect("* nick alice refused: taken")
    b.send("/nick bob")
    b.expect("* you are bob")
    a.expect("* user2 is now bob")

    # Broadcast: both send, interleaved; each receives the other's lines in the order they were sent
    # (and never its own).
    for start in range(0, 200, BATCH):
        for i in range(start, min(start + BATCH, 200)):
            a.send(f"a{i}")
            b.send(f"b{i}")
        for i in range(start, min(start + BATCH, 200)):
            b.expect(f"alice: a{i}")
            a.expect(f"bob: b{i}")

    # The slow client: alice sends 12 MB; bob gets every line, in order, although the slow client's
    # socket buffers and queue are full most of that time.
    big = 8000
    pad = "x" * 1500
    for start in range(0, big, BATCH):
        for i in range(start, start + BATCH):
            a.send(f"big{i} {pad}")
        for i in range(start, start + BATCH):
            b.expect(f"alice: big{i} {pad}")

    # Now the slow client reads: what it got before it stopped keeping up, a subsequence in order, then
    # how many it missed; the two add up.
    for line in ["* you are user3", "* user1 is now alice", "* user2 is now bob"]:
        slow.expect(line)
    lines = [slow.line() for _ in range(400)]  # alice's and bob's interleave; each in its own order
    check([x for x in lines if x.startswith("alice: ")] == [f"alice: a{i}" for i in range(200)], "slow: alice's order")
    check([x for x in lines if x.startswith("bob: ")] == [f"bob: b{i}" for i in range(200)], "slow: bob's order")
    received, last = 0, -1
    while True:
        line = slow.line()
        if line.startswith("* ") and line.endswith(" messages to you were dropped"):
            dropped = int(line.split()[1])
            break
        check(line.startswith("alice: big"), f"slow client: unexpected {line[:60]!r}")
        n = int(line[len("alice: big"):].split()[0])
        check(n > last, f"slow client: big{n} after big{last}")
        received, last = received + 1, n
    check(dropped > 0, "nothing was dropped: the slow client's buffers were not filled")
    check(received + dropped == big, f"slow client: {received} received + {dropped} dropped != {big}")

    # It catches up and takes part again.
    slow.send("hello")
    a.expect("user3: hello")
    b.expect("user3: hello")

    # A line over the 64 KiB limit is dropped whole, even when it comes in pieces; the next line goes out.
    a.sock.sendall(b"L" * 70000)
    time.sleep(0.05)
    a.sock.sendall(b"T" * 30000 + b"\n")
    a.send("after the long line")
    b.expect("alice: after the long line")
    slow.expect("alice: after the long line")

    # Leaving: the others are told.
    b.close()
    a.expect("* bob left")
    slow.expect("* bob left")

    # SIGTERM with two clients still connected: they are told, and closed after the grace period.
    err = server.stop(signal.SIGTERM)
    check(err == "", f"chat_server wrote to stderr: {err}")
    for c in (a, slow):
        c.expect("* server shutting down")
        rest = recv_eof(c.sock)
        check(rest == b"", f"data after the shutdown notice: {rest[:60]!r}")
        c.close()
    print("example_chat: all checks passed")


if __name__ == "__main__":
    main()
