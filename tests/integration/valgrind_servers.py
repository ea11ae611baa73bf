"""valgrind memcheck on the tour and on short runs of http_server and echo_server: zero errors, zero
leaks (definite, indirect or possible).

usage: valgrind_servers.py TOUR HTTP_SERVER ECHO_SERVER
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

VALGRIND = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect,possible",
            "--error-exitcode=99", "--track-fds=no"]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_log(name, log, status):
    text = open(log).read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if status != 0 or errors is None or errors.group(1) != "0":
        fail(f"{name}: valgrind reported problems (exit {status}):\n{text[-4000:]}")
    leaks = re.findall(r"(definitely|indirectly|possibly) lost: ([\d,]+) bytes", text)
    if any(n != "0" for _, n in leaks):
        fail(f"{name}: leaks: {leaks}\n{text[-4000:]}")
    print(f"{name}: 0 errors, 0 bytes lost")


def start(exe, log, *args):
    p = subprocess.Popen(VALGRIND + [f"--log-file={log}", exe, "--port", "0", *args], stdout=subprocess.PIPE)
    line = p.stdout.readline().decode()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        fail(f"{exe} under valgrind did not start: {line!r}\n{open(log).read()[-2000:]}")
    return p, int(m.group(1))


def request(port, data, want_close=False):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def main():
    tour, http, echo = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="corio-valgrind-")

    log = os.path.join(tmp, "tour.log")
    r = subprocess.run(VALGRIND + [f"--log-file={log}", tour], stdout=subprocess.DEVNULL, timeout=600)
    check_log("tour", log, r.returncode)

    log = os.path.join(tmp, "http.log")
    p, port = start(http, log, "--idle-timeout", "30")
    get = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(20):
        out = request(port, get * (1 + i % 4))
        if out.count(b"HTTP/1.1 200 OK") != 1 + i % 4:
            fail(f"http_server answered {out[:200]!r}")
    if not request(port, b"\x00garbage\r\n\r\n").startswith(b"HTTP/1.1 400"):
        fail("http_server: garbage did not get 400")
    if not request(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431"):
        fail("http_server: a huge header did not get 431")
    idle = socket.create_connection(("127.0.0.1", port))  # open at shutdown: cancelled with the server
    p.send_signal(signal.SIGTERM)
    status = p.wait(timeout=120)
    idle.close()
    check_log("http_server", log, status)

    log = os.path.join(tmp, "echo.log")
    p, port = start(echo, log, "--idle-timeout", "30")
    for i in range(20):
        msg = b"ping %d\n" % i * (1 + 100 * i)
        if request(port, msg) != msg:
            fail("echo_server did not echo")
    p.send_signal(signal.SIGTERM)
    check_log("echo_server", log, p.wait(timeout=120))


if __name__ == "__main__":
    main()
