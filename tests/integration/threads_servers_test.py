#!/usr/bin/python3
"""examples/http_server and examples/echo_server with --threads 2: two event loops, each with a listener on
the same port (SO_REUSEPORT). Every request on many connections is answered, and SIGTERM / SIGINT stop both
loops with exit status 0.

Usage: threads_servers_test.py <path to http_server> <path to echo_server>   (loopback only, bounded waits)
"""

import signal
import socket
import subprocess
import sys

HTTP_SERVER, ECHO_SERVER = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def start(cmd, threads):
    p = subprocess.Popen(cmd + ["--port", "0", "--threads", str(threads)], stdout=subprocess.PIPE, text=True)
    lines = [p.stdout.readline().strip() for _ in range(threads)]  # one "listening on" line per loop
    if not all(line.startswith("listening on ") for line in lines):
        p.kill()
        sys.exit("%s did not start: %r" % (cmd[0], lines))
    ports = {int(line.rsplit(":", 1)[1]) for line in lines}
    check(len(ports) == 1, "every loop listens on one port: %r" % lines)
    return p, ports.pop()


def stop(p, signo, what):
    p.send_signal(signo)
    try:
        code = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        code = "hung"
    check(code == 0, "%s: exit status %r after %s" % (what, code, signal.Signals(signo).name))


def http_round(port, connections=32, requests=20):
    answered = 0
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(connections)]
    try:
        for _ in range(requests):
            for s in socks:
                s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks:
                data = b""
                while not data.endswith(b"Hello, World!"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                answered += data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, World!")
    finally:
        for s in socks:
            s.close()
    return answered, connections * requests


def echo_round(port, connections=32):
    ok = 0
    for i in range(connections):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            msg = b"message %d\n" % i
            s.sendall(msg)
            data = b""
            while len(data) < len(msg):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok += data == msg
    return ok, connections


def main():
    for signo in (signal.SIGTERM, signal.SIGINT):
        p, port = start([HTTP_SERVER], 2)
        got, want = http_round(port)
        check(got == want, "http_server --threads 2: %d of %d requests answered" % (got, want))
        stop(p, signo, "http_server --threads 2")

        p, port = start([ECHO_SERVER, "--grace", "1"], 2)
        got, want = echo_round(port)
        check(got == want, "echo_server --threads 2: %d of %d echoes" % (got, want))
        stop(p, signo, "echo_server --threads 2")
    if failures:
        sys.exit("%d failure(s)" % len(failures))
    print("ok")


main()
