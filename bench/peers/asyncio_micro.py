#!/usr/bin/python3
"""Peer of bench/loop_micro.cpp: the event-loop micro-benchmarks in CPython asyncio, or in uvloop.

Usage: bench/peers/asyncio_micro.py [--loop asyncio|uvloop] [--min-time SECONDS] [--json]

  sleep0        `await asyncio.sleep(0)` in a loop inside one task: ns per sleep(0)
  spawn_await   `await asyncio.create_task(trivial(i))`: ns per create_task + await
  await_inline  `await trivial(i)` (no task), for reference

Each workload runs in a fresh event loop, about --min-time seconds, and checks its own result (that sleep(0)
went through the loop, the count, the sum). Prints wall-clock and CPU ns per operation, or one JSON object
with --json (bench/compare_loops reads that).
"""

import argparse
import asyncio
import json
import sys
import time


async def trivial(x):
    return x + 1


async def sleep0_loop(n):
    ran = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    await asyncio.sleep(0)
    if not ran:
        raise AssertionError("sleep(0) did not go through the loop (a callback scheduled before it had not run)")
    sleep = asyncio.sleep
    c0, t0 = time.process_time(), time.perf_counter()
    count = 0
    for _ in range(n):
        await sleep(0)
        count += 1
    t1, c1 = time.perf_counter(), time.process_time()
    if count != n:
        raise AssertionError(f"wrong count {count}, expected {n}")
    return t1 - t0, c1 - c0


async def spawn_await_loop(n):
    create_task = asyncio.create_task
    c0, t0 = time.process_time(), time.perf_counter()
    total = 0
    for i in range(n):
        v = await create_task(trivial(i))
        if v != i + 1:
            raise AssertionError(f"task {i} returned {v}")
        total += v
    t1, c1 = time.perf_counter(), time.process_time()
    if total != n * (n + 1) // 2:
        raise AssertionError(f"wrong sum {total}")
    return t1 - t0, c1 - c0


async def await_inline_loop(n):
    c0, t0 = time.process_time(), time.perf_counter()
    total = 0
    for i in range(n):
        v = await trivial(i)
        total += v
    t1, c1 = time.perf_counter(), time.process_time()
    if total != n * (n + 1) // 2:
        raise AssertionError(f"wrong sum {total}")
    return t1 - t0, c1 - c0


WORKLOADS = {"sleep0": sleep0_loop, "spawn_await": spawn_await_loop, "await_inline": await_inline_loop}


def loop_factory(name):
    if name == "uvloop":
        import uvloop  # Debian: python3-uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def measure(factory, workload, min_time):
    """(wall ns, CPU ns) per operation: short calibration runs, then one run of about min_time seconds."""
    n = 1000
    while True:
        with asyncio.Runner(loop_factory=factory) as runner:
            elapsed, _ = runner.run(workload(n))
        if elapsed >= min_time / 10 or n >= 1 << 30:
            break
        n *= 4
    n = max(n, int(n * min_time / max(elapsed, 1e-9)))
    with asyncio.Runner(loop_factory=factory) as runner:
        elapsed, cpu = runner.run(workload(n))
    return elapsed * 1e9 / n, cpu * 1e9 / n, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per workload")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    factory = loop_factory(args.loop)
    wall, cpu = {}, {}
    for name, workload in WORKLOADS.items():
        wall[name], cpu[name], n = measure(factory, workload, args.min_time)
        if not args.json:
            print(f"{args.loop:8} {name:13} {wall[name]:10.1f} ns wall {cpu[name]:10.1f} ns CPU  ({n} operations)")
    if args.json:
        print(json.dumps({"loop": args.loop, "python": sys.version.split()[0], "wall_ns": wall, "cpu_ns": cpu}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
