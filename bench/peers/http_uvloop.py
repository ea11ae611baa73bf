#!/usr/bin/python3
"""Peer of corio's examples/http_server for bench/compare_http: the HTTP/1.1 plaintext server as an asyncio
Protocol on uvloop (python3-uvloop), one event loop.

Usage: bench/peers/http_uvloop.py --port P [--loop uvloop|asyncio]
       listens on 127.0.0.1:P until SIGINT or SIGTERM (--loop asyncio: the same on CPython's own loop)

data_received answers every complete request in the bytes so far, in order, with one transport.write
(pipelining), and keeps the incomplete tail. The framing and the responses are plaintext.h's: a request
ends at its blank line; GET /plaintext and GET / answer "Hello, World!", other paths 404, anything else
(other methods, a body, a malformed request line, a head over 8 KiB) 400 and close.
"""

import argparse
import asyncio
import signal

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found"
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
               b"Connection: close\r\n\r\nBad Request")
MAX_HEAD = 8192
PATHS_OK = (b"/plaintext", b"/")


def reply_for(head):
    """The response to one request head (without its blank line), and whether to close after it."""
    line, _, headers = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or len(parts[2]) != 8 or not parts[2].startswith(b"HTTP/1.") or parts[0] != b"GET":
        return BAD_REQUEST, True
    if headers:
        low = b"\r\n" + headers.lower()
        if b"\r\ncontent-length:" in low or b"\r\ntransfer-encoding:" in low:
            return BAD_REQUEST, True
    return (OK if parts[1] in PATHS_OK else NOT_FOUND), False


class Plaintext(asyncio.Protocol):
    __slots__ = ("transport", "pending")

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        buf = self.pending + data if self.pending else data
        out = []
        start = 0
        close = False
        while not close:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            response, close = reply_for(buf[start:end])
            out.append(response)
            start = end + 4
        self.pending = buf[start:]
        if len(self.pending) > MAX_HEAD:
            close = True
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            self.transport.close()  # after the buffered reply is written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args()
    if args.loop == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(Plaintext, "127.0.0.1", args.port, backlog=1024))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    loop.run_forever()
    server.close()
    loop.close()


if __name__ == "__main__":
    main()
