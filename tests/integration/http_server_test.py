#!/usr/bin/python3
"""examples/http_server against real clients: curl for the routes, limits and keep-alive, raw sockets for
pipelining, split requests, garbage and the idle timeout; then SIGTERM and SIGINT end it with status 0.

Usage: http_server_test.py <path to http_server> [server options...]   (loopback only; every wait is bounded)
The options go to every server it starts (ctest runs it once as is and once with --parser http-parser).
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SERVER = sys.argv[1]
SERVER_ARGS = sys.argv[2:]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def start(root, *extra):
    p = subprocess.Popen([SERVER, "--port", "0", "--root", root, "--idle-timeout", "0.5",
                          "--max-header-bytes", "4096", "--max-body-bytes", "1000", *SERVER_ARGS, *extra],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()  # "listening on 127.0.0.1:PORT"
    if not line.startswith("listening on "):
        p.kill()
        sys.exit("http_server did not start: %r" % line)
    return p, int(line.rsplit(":", 1)[1])


def curl(port, path, *args):
    out = subprocess.run(["curl", "-s", "--max-time", "5", "--path-as-is", "-w", "\n%{http_code}", *args,
                          "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, timeout=10)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), body


def read_responses(sock, count, deadline=5.0):
    """Reads `count` HTTP responses (Content-Length bodies); returns [(status, body)]."""
    sock.settimeout(deadline)
    data = b""
    out = []
    while len(out) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode()
            length = int([h.split(":")[1] for h in head.split("\r\n") if h.lower().startswith("content-length")][0])
            if len(data) >= head_end + 4 + length:
                out.append((int(head.split()[1]), data[head_end + 4:head_end + 4 + length]))
                data = data[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return out


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def main():
    root = tempfile.mkdtemp(prefix="corio-http-")
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>corio</h1>\n")
    blob = os.urandom(300_000)
    os.mkdir(os.path.join(root, "sub"))
    with open(os.path.join(root, "sub", "blob.bin"), "wb") as f:
        f.write(blob)
    big = os.urandom(5_000_000)  # sent with sendfile: never read into the server's memory
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    with open(os.path.join(root, "empty.txt"), "wb"):
        pass
    outside = tempfile.mkdtemp(prefix="corio-http-outside-")
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("secret\n")
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "outside.txt"))
    os.symlink(outside, os.path.join(root, "outdir"))
    os.symlink("index.html", os.path.join(root, "inside.html"))

    server, port = start(root)
    try:
        check(curl(port, "/plaintext") == (200, b"Hello, World!"), "GET /plaintext")
        check(curl(port, "/") == (200, b"Hello, World!"), "GET /")
        check(curl(port, "/plaintext", "-I")[0] == 200, "HEAD /plaintext")
        check(curl(port, "/static/index.html") == (200, b"<h1>corio</h1>\n"), "static file")
        check(curl(port, "/static/sub/blob.bin") == (200, blob), "static binary file, 300 kB")
        check(curl(port, "/static/big.bin") == (200, big), "static file, 5 MB")
        check(curl(port, "/static/empty.txt") == (200, b""), "empty static file")
        code, head = curl(port, "/static/big.bin", "-I")
        check(code == 200 and b"Content-Length: 5000000\r\n" in head, "HEAD of the 5 MB file")
        check(curl(port, "/static/missing.txt")[0] == 404, "missing static file: 404")
        check(curl(port, "/static/../../etc/passwd")[0] == 404, "path traversal refused")
        check(curl(port, "/static/sub")[0] == 404, "a directory is not a file")
        check(curl(port, "/nowhere")[0] == 404, "unknown path: 404")
        check(curl(port, "/plaintext", "-X", "DELETE")[0] == 405, "DELETE: 405")
        check(curl(port, "/plaintext", "-H", "X-Big: " + "a" * 5000)[0] == 431, "big header: 431")
        check(curl(port, "/plaintext", "--data-binary", "x" * 2000)[0] == 413, "big body: 413")
        check(curl(port, "/plaintext", "-H", "Transfer-Encoding: chunked", "--data-binary", "x" * 2000)[0] == 413,
              "big chunked body: 413")
        check(curl(port, "/plaintext", "--data-binary", "x" * 500)[0] == 405, "small body to a GET route: 405")
        out = subprocess.run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", "-o", "/dev/null", "-w",
                              "%{http_code} %{num_connects}\n", "http://127.0.0.1:%d/" % port,
                              "http://127.0.0.1:%d/plaintext" % port], capture_output=True, text=True, timeout=10)
        check(out.stdout.split("\n")[:2] == ["200 1", "200 0"], "keep-alive: the second request reuses the connection")
        check(curl(port, "/plaintext", "--http1.0") == (200, b"Hello, World!"), "HTTP/1.0 closes after its answer")

        # Pipelining: 16 requests in one write, an unknown path in the middle; answers in order.
        with connect(port) as s:
            paths = ["/plaintext"] * 7 + ["/nowhere"] + ["/"] * 8
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths))
            got = read_responses(s, len(paths))
            check([st for st, _ in got] == [404 if p == "/nowhere" else 200 for p in paths], "16 pipelined, in order")

        # The 5 MB file pipelined between plaintext requests: the answers before and after it keep their order
        # and every byte of the file arrives; twice on one connection.
        with connect(port) as s:
            paths = ["/plaintext", "/static/big.bin", "/", "/static/big.bin", "/static/index.html", "/plaintext"]
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths))
            got = read_responses(s, len(paths), deadline=20)
            want = [(200, b"Hello, World!"), (200, big), (200, b"Hello, World!"), (200, big),
                    (200, b"<h1>corio</h1>\n"), (200, b"Hello, World!")]
            check(len(got) == len(want) and all(g == w for g, w in zip(got, want)),
                  "5 MB file pipelined between plaintext requests, in order, every byte")

        # HEAD of the big file pipelined before a GET: no body between the two answers.
        with connect(port) as s:
            s.sendall(b"HEAD /static/big.bin HTTP/1.1\r\n\r\nGET /plaintext HTTP/1.1\r\n\r\n")
            s.settimeout(5)
            data = b""
            while not data.endswith(b"Hello, World!") and len(data) < 10000:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            first, _, rest = data.partition(b"\r\n\r\n")
            check(b"Content-Length: 5000000" in first and rest.startswith(b"HTTP/1.1 200 OK\r\n")
                  and rest.endswith(b"\r\n\r\nHello, World!"), "HEAD of the 5 MB file sends no body")

        # A request split into single bytes, then another one.
        with connect(port) as s:
            for b in b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n":
                s.send(bytes([b]))
                time.sleep(0.001)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            check([st for st, _ in read_responses(s, 2)] == [200, 200], "split request")

        # Garbage: 400, then the server closes.
        with connect(port) as s:
            s.sendall(b"\x00\x01 NOT HTTP\r\n\r\n")
            got = read_responses(s, 1)
            check(got and got[0][0] == 400, "garbage: 400")
            s.settimeout(5)
            check(s.recv(100) == b"", "garbage: connection closed")

        # Connection: close after a pipelined pair: only the first is answered.
        with connect(port) as s:
            s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            got = read_responses(s, 2)
            check(len(got) == 1 and got[0][0] == 200, "Connection: close ends the connection")

        # Idle timeout (0.5 s): a silent connection is closed; a lower bound only.
        with connect(port) as s:
            t0 = time.monotonic()
            s.settimeout(10)
            check(s.recv(100) == b"", "idle connection closed")
            check(time.monotonic() - t0 >= 0.4, "not before the idle timeout")

        # Slowloris: a request head trickling in (a byte every 0.1 s) is cut off once its wait passes the idle
        # timeout (0.5 s), however steady the trickle.
        with connect(port) as s:
            t0 = time.monotonic()
            s.sendall(b"GET /plaintext HTTP/1.1\r\n")
            closed = False
            while time.monotonic() - t0 < 5 and not closed:
                try:
                    s.sendall(b"X")
                    s.settimeout(0.1)
                    closed = s.recv(100) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            check(closed and time.monotonic() - t0 < 3, "slowloris: a head trickling in is closed")

        # Expect: 100-continue with a body: "100 Continue" comes before the body is sent, the answer after it.
        with connect(port) as s:
            s.sendall(b"POST /nowhere HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            s.settimeout(5)
            interim = s.recv(100)
            check(interim == b"HTTP/1.1 100 Continue\r\n\r\n", "Expect: 100-continue answered at once (%r)" % interim)
            s.sendall(b"hello")
            check([st for st, _ in read_responses(s, 1)] == [404], "the final answer after the body")

        # HTTP/1.0 keep-alive is said so, and the connection stays open; other HTTP versions get 505.
        with connect(port) as s:
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            s.settimeout(5)
            head = s.recv(1000)
            check(b"\r\nConnection: keep-alive\r\n" in head, "HTTP/1.0 keep-alive answered with Connection: keep-alive")
            s.sendall(b"GET /plaintext HTTP/1.0\r\n\r\n")
            check([st for st, _ in read_responses(s, 1)] == [200], "HTTP/1.0 keep-alive: a second request")
        with connect(port) as s:
            s.sendall(b"GET / HTTP/2.0\r\n\r\n")
            got = read_responses(s, 1)
            check(got and got[0][0] == 505, "HTTP/2.0 request line: 505")

        # Symbolic links: one inside the root is followed, one leading out of it is not.
        check(curl(port, "/static/inside.html") == (200, b"<h1>corio</h1>\n"), "a link inside the root")
        check(curl(port, "/static/outside.txt")[0] == 404, "a link out of the root is not followed")
        check(curl(port, "/static/outdir/secret.txt")[0] == 404, "a directory link out of the root neither")

        # Many connections at once.
        socks = [connect(port) for _ in range(200)]
        for s in socks:
            s.sendall(b"GET /plaintext HTTP/1.1\r\n\r\n")
        check(all(read_responses(s, 1) == [(200, b"Hello, World!")] for s in socks), "200 concurrent connections")
        for s in socks:
            s.close()
    finally:
        idle = connect(port)  # an open connection must not keep the server from stopping
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "hung"
        idle.close()
    check(code == 0, "SIGTERM: exit status 0 (got %s)" % code)

    server, port = start(root)
    check(curl(port, "/")[0] == 200, "second server answers")
    server.send_signal(signal.SIGINT)
    try:
        code = server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        code = "hung"
    check(code == 0, "SIGINT: exit status 0 (got %s)" % code)

    if failures:
        sys.exit("%d check(s) failed" % len(failures))
    print("http_server: all checks passed")


main()
