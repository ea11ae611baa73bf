#!/usr/bin/python3
"""Peer of corio's examples/echo_server for bench/compare_echo: a TCP echo server as an asyncio Protocol on
uvloop (python3-uvloop), one event loop.

Usage: bench/peers/echo_uvloop.py --port P [--loop uvloop|asyncio]
       listens on 127.0.0.1:P until SIGINT or SIGTERM (--loop asyncio: the same on CPython's own loop)

data_received writes every chunk straight back; when the transport's buffer passes its high-water mark,
reading pauses until it drains (so a client that does not read stalls only itself).
"""

import argparse
import asyncio
import signal


class Echo(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


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
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", args.port, backlog=1024))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    loop.run_forever()
    server.close()
    loop.close()


if __name__ == "__main__":
    main()
