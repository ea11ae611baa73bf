"""10,000 concurrent connections to examples/echo_server and examples/http_server: every one is open at
the same time, every one gets its answer, zero errors; then the servers stop cleanly.

usage: stress_connections.py ECHO_SERVER HTTP_SERVER [CONNECTIONS]
Exits 77 (ctest: skipped) if the fd limit cannot be raised far enough for the client.
"""

import os
import resource
import selectors
import socket
import sys
import time

from example_server import Server, check, fail

DEADLINE = 90.0  # seconds for each server's whole run


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"skipped: the fd hard limit is {hard}, {need} are needed")
        sys.exit(77)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # inherited by the servers


def hammer(port, count, request, answer_complete):
    """Opens `count` connections, all at once, sends `request` on each and reads until answer_complete(data)."""
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + DEADLINE
    socks = []
    state = {}
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        state[s] = [b"", request]  # received, left to send
        sel.register(s, selectors.EVENT_WRITE)
        if i % 500 == 499:  # let the accept queue drain now and then (somaxconn)
            pump(sel, state, answer_complete, time.monotonic() + 0.05)
    done = pump(sel, state, answer_complete, deadline)
    check(done == count, f"{done} of {count} connections answered within {DEADLINE} s")
    open_at_end = sum(1 for s in socks if s.fileno() >= 0)
    check(open_at_end == count, f"only {open_at_end} of {count} connections were open together")
    for s in socks:
        s.close()
    sel.close()


def pump(sel, state, answer_complete, until):
    """Runs the selector until every connection is answered or `until`; returns how many are answered."""
    answered = sum(1 for st in state.values() if st[1] is None)
    while answered < len(state) and time.monotonic() < until:
        for key, events in sel.select(timeout=max(0.0, min(1.0, until - time.monotonic()))):
            s, st = key.fileobj, state[key.fileobj]
            if events & selectors.EVENT_WRITE and st[1]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    fail(f"connect failed: errno {err}")
                n = s.send(st[1])
                st[1] = st[1][n:]
                if not st[1]:
                    sel.modify(s, selectors.EVENT_READ)
            elif events & selectors.EVENT_READ:
                chunk = s.recv(65536)
                if not chunk:
                    fail(f"a connection was closed before its answer (got {st[0][:60]!r})")
                st[0] += chunk
                if answer_complete(st[0]):
                    st[1] = None
                    sel.unregister(s)
                    answered += 1
    return answered


def server_state(server):
    """Whether the server still runs, and what it wrote on stderr so far (for a failure's message)."""
    status = server.proc.poll()
    err = b""
    try:
        os.set_blocking(server.proc.stderr.fileno(), False)
        err = server.proc.stderr.read() or b""
    except (OSError, ValueError):
        pass
    state = "still running" if status is None else f"exited with status {status}"
    return f"{server.exe} {state}; its stderr: {err.decode(errors='replace')[-4000:]!r}"


def hammer_server(server, count, request, answer_complete):
    """hammer(), and on a socket error, what became of the server (a crash shows its sanitizer report)."""
    try:
        hammer(server.port, count, request, answer_complete)
    except OSError as e:
        fail(f"{e!r} talking to {server_state(server)}")


def main():
    echo_exe, http_exe = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    raise_fd_limit(count + 200)

    msg = b"x" * 64
    server = Server(echo_exe)
    t0 = time.monotonic()
    hammer_server(server, count, msg, lambda data: data == msg if len(data) >= len(msg) else False)
    print(f"echo_server: {count} concurrent connections echoed in {time.monotonic() - t0:.1f} s, 0 errors")
    server.stop()

    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
    server = Server(http_exe)
    t0 = time.monotonic()
    hammer_server(server, count, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
                  lambda data: data == response if len(data) >= len(response) else False)
    print(f"http_server: {count} concurrent connections answered in {time.monotonic() - t0:.1f} s, 0 errors")
    server.stop()


if __name__ == "__main__":
    main()
