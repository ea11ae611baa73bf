"""examples/echo_server and echo_client: many clients, large payloads, idle timeout, SIGTERM and SIGINT.

usage: example_echo.py ECHO_SERVER ECHO_CLIENT
"""

import signal
import subprocess
import sys
import threading
import time

from example_server import TIMEOUT, Server, check, fail, recv_eof, recv_exactly

IDLE = 0.3  # the server's --idle-timeout in these tests, in seconds


def test_echo_client(server, client_exe):
    r = subprocess.run([client_exe, "--port", str(server.port), "--count", "200", "--message", "ping"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 0, f"echo_client exit {r.returncode}: {r.stderr}")
    check(r.stdout.startswith("200 lines echoed in "), f"echo_client printed {r.stdout!r}")
    # Nothing listens on port 1: the client reports the error and exits 1.
    r = subprocess.run([client_exe, "--port", "1"], capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 1 and "echo_client:" in r.stderr, f"echo_client to a closed port: {r.returncode} {r.stderr}")


def test_many_clients(server, clients=50, rounds=20):
    errors = []

    def run(k):
        try:
            with server.connect() as s:
                for i in range(rounds):
                    msg = f"client {k} message {i} ".encode() * (1 + (k + i) % 7)
                    s.sendall(msg)
                    got = recv_exactly(s, len(msg))
                    if got != msg:
                        errors.append(f"client {k} round {i}: {got[:40]!r} != {msg[:40]!r}")
                        return
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    check(not any(t.is_alive() for t in threads), "a client thread did not finish")
    check(not errors, "; ".join(errors[:5]))


def test_large_payload(server, size=8 << 20):
    # Written from a thread while this one reads, so neither side's socket buffers can deadlock the test.
    payload = bytes((i * 7 + i // 251) % 256 for i in range(size))
    with server.connect() as s:
        writer = threading.Thread(target=s.sendall, args=(payload,))
        writer.start()
        got = recv_exactly(s, size)
        writer.join(TIMEOUT)
        check(got == payload, "large payload came back different")
        s.shutdown(1)  # half-close: the server sees end of stream and closes its side
        check(recv_eof(s) == b"", "data after the echo")


def test_idle_timeout(server):
    # A lower bound only (real clock): the server must not close before IDLE; it must close eventually.
    with server.connect() as s:
        s.sendall(b"x")
        check(recv_exactly(s, 1) == b"x", "no echo")
        start = time.monotonic()
        check(recv_eof(s) == b"", "data from an idle connection")
        elapsed = time.monotonic() - start
        check(elapsed >= IDLE * 0.9, f"idle connection closed after {elapsed:.3f} s < {IDLE} s")
    # The server still serves others after closing an idle one.
    with server.connect() as s:
        s.sendall(b"still here")
        check(recv_exactly(s, 10) == b"still here", "no echo after an idle close")


def test_stop_with_open_connection(server_exe, signo):
    # A client keeps its connection open through the stop: the grace period ends, its handler is cancelled,
    # its connection closed, and the server still exits 0.
    server = Server(server_exe, "--idle-timeout", "30", "--grace", "0.2")
    with server.connect() as s:
        s.sendall(b"hi")
        check(recv_exactly(s, 2) == b"hi", "no echo")
        server.stop(signo)
        check(recv_eof(s) == b"", "data after stop")
    # Refused now: the listening socket is gone with the process.
    try:
        server.connect().close()
        fail("connected after the server stopped")
    except OSError:
        pass


def main():
    server_exe, client_exe = sys.argv[1], sys.argv[2]
    # The load tests get a long idle timeout: on a loaded machine (sanitizers, 2 cores) a client thread
    # may well pause for longer than IDLE between two messages.
    server = Server(server_exe, "--idle-timeout", "30")
    test_echo_client(server, client_exe)
    test_many_clients(server)
    test_large_payload(server)
    server.stop(signal.SIGTERM)

    server = Server(server_exe, "--idle-timeout", str(IDLE))
    test_idle_timeout(server)
    server.stop(signal.SIGINT)

    test_stop_with_open_connection(server_exe, signal.SIGTERM)
    test_stop_with_open_connection(server_exe, signal.SIGINT)
    print("example_echo: all checks passed")


if __name__ == "__main__":
    main()
