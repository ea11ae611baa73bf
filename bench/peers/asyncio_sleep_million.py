#!/usr/bin/python3
"""Peer of bench/sleep_million.cpp in CPython asyncio, or uvloop: the main task creates N tasks, each sleeping
a random 0..MAX seconds (uniform, fixed seed), then awaits all of them in creation order. Prints the wall time
from the first create_task to the last await; run it under `/usr/bin/time -v` for the peak RSS. Each task
checks that it slept at least its delay (less 1 ms on uvloop, whose libuv timers count whole milliseconds);
exits 1 unless all N did.

Usage: bench/peers/asyncio_sleep_million.py [N=1000000] [MAX_SECONDS=1.0] [--loop asyncio|uvloop]
"""

import argparse
import asyncio
import random
import sys
import time


async def sleeper(d, tolerance):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(d)
    return 1 if loop.time() - start >= d - tolerance else 0


async def main_task(delays, tolerance):
    create_task = asyncio.create_task
    t0 = time.perf_counter()
    tasks = [create_task(sleeper(d, tolerance)) for d in delays]
    spawn_s = time.perf_counter() - t0
    ok = 0
    for i, t in enumerate(tasks):
        ok += await t
        tasks[i] = None  # let the finished task go
    return ok, spawn_s, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("max_seconds", nargs="?", type=float, default=1.0)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = ap.parse_args()

    rng = random.Random(42)
    delays = [rng.uniform(0.0, args.max_seconds) for _ in range(args.n)]
    if args.loop == "uvloop":
        import uvloop  # Debian: python3-uvloop

        factory, tolerance = uvloop.new_event_loop, 1e-3
    else:
        factory, tolerance = asyncio.new_event_loop, 1e-6
    with asyncio.Runner(loop_factory=factory) as runner:
        ok, spawn_s, wall_s = runner.run(main_task(delays, tolerance))
    print(f"{args.loop} sleep_million: tasks {args.n}, max sleep {args.max_seconds:.3f} s, "
          f"spawn {spawn_s:.3f} s, wall {wall_s:.3f} s, ok {ok}")
    if ok != args.n:
        print(f"asyncio_sleep_million: only {ok} of {args.n} tasks slept their full delay", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
