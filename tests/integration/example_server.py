"""Helpers for the example-server tests: start a server binary on port 0, read its listening line, stop it.

Every wait is bounded (socket timeouts, process wait timeouts), so a broken server fails a test instead
of hanging it.
"""

import os
import select
import signal
import socket
import subprocess
import sys
import time

TIMEOUT = 10.0  # seconds: the bound on any single wait in these tests


_started = []  # every server process, killed when a check fails so that none outlives the test


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sys.exit(1)


def check(cond, message):
    if not cond:
        fail(message)


class Server:
    """A server process started with `--port 0` and extra arguments; .port is the port it printed."""

    def __init__(self, exe, *args):
        self.exe = os.path.basename(exe)
        self.proc = subprocess.Popen([exe, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _started.append(self.proc)
        line = self._read_line()
        prefix = "listening on 127.0.0.1:"
        check(line.startswith(prefix) and line.endswith("\n"), f"{self.exe}: unexpected first line {line!r}")
        self.port = int(line[len(prefix):])
        check(self.port > 0, f"{self.exe}: port 0 printed")

    def _read_line(self):
        deadline = time.monotonic() + TIMEOUT
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.proc.kill()
                fail(f"{self.exe}: no listening line within {TIMEOUT} s (got {data!r})")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")
                fail(f"{self.exe}: exited before listening (status {self.proc.wait()}): {err}")
            data += chunk
        return data.decode()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def alive(self):
        return self.proc.poll() is None

    def stop(self, signo=signal.SIGTERM, within=TIMEOUT):
        """Sends `signo`; checks exit status 0, nothing more on stdout, and that the process is gone."""
        check(self.alive(), f"{self.exe}: died before it was stopped (status {self.proc.returncode})")
        self.proc.send_signal(signo)
        try:
            status = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail(f"{self.exe}: still running {within} s after signal {signo}")
        out = self.proc.stdout.read().decode(errors="replace")
        err = self.proc.stderr.read().decode(errors="replace")
        check(status == 0, f"{self.exe}: exit status {status} after signal {signo}; stderr: {err}")
        check(out == "", f"{self.exe}: printed more than the listening line: {out!r}")
        try:
            os.kill(self.proc.pid, 0)
            fail(f"{self.exe}: pid {self.proc.pid} still exists")
        except ProcessLookupError:
            pass
        return err


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            fail(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_eof(sock):
    """Reads until end of stream (or a reset, which also means closed); returns the bytes read."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
