#!/usr/bin/env python3
"""Checks the reference model of tests/support/queue_model.hpp against asyncio itself.

The randomized queue tests (test_sync_queue, test_sync_priority_queue) compare corio's queues with a
model of asyncio's Queue, LifoQueue and PriorityQueue. This is the same model and the same scenario
generator (same random numbers), line for line; each scenario is replayed on asyncio's queues and every
getter's outcome, and what is left in the queue, must equal the model's.

    queue_asyncio_model.py [SEEDS]    seeds 1..SEEDS of each kind (default: as many as the C++ tests)
"""
import asyncio
import sys

FIFO, LIFO, PRIORITY = "fifo", "lifo", "priority"
WAITING, CANCELLED = -2, -1
SEEDS = 300  # as kSeeds in tests/support/queue_model.hpp
ROUNDS = 8
MASK = (1 << 64) - 1


class Splitmix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


class Model:
    """asyncio's queues as they behave: a woken getter takes the next item only when it runs."""

    def __init__(self, kind):
        self.kind = kind
        self.items = []  # fifo: front first; lifo: top last; priority: any order, the smallest leaves
        self.waiting = []  # getters waiting, in arrival order
        self.woken = []  # getters woken and not run yet, in the order they were woken (they run so)
        self.cancel_requested = set()
        self.results = []

    def add_getter(self):
        """A getter that starts (runs) now, when no getter is woken: takes an item if there is one, else waits."""
        assert not self.woken
        if self.items:
            self.results.append(self.take())
        else:
            self.results.append(WAITING)
            self.waiting.append(len(self.results) - 1)

    def put(self, v):
        self.items.append(v)
        self.wakeup_next()

    def wakeup_next(self):
        if self.waiting:
            self.woken.append(self.waiting.pop(0))

    def cancel(self, g):
        if g in self.waiting:
            self.waiting.remove(g)
            self.results[g] = CANCELLED
        elif g in self.woken:
            self.cancel_requested.add(g)

    def live(self):
        """The getters still waiting, or woken and not cancelled, in arrival order."""
        return [g for g, r in enumerate(self.results) if r == WAITING and g not in self.cancel_requested]

    def take(self):
        if self.kind == FIFO:
            return self.items.pop(0)
        if self.kind == LIFO:
            return self.items.pop()
        i = self.items.index(min(self.items))
        return self.items.pop(i)

    def settle(self):
        while self.woken:
            g = self.woken.pop(0)
            if g in self.cancel_requested:
                self.results[g] = CANCELLED
                if self.items:
                    self.wakeup_next()
            else:
                assert self.items, "a woken getter finds the queue empty"
                self.results[g] = self.take()


def scenario(kind, seed):
    """The actions and the model's outcome: [("getters", k) | ("put", v) | ("cancel", g) | ("settle",)]."""
    rng = Splitmix64(seed)
    m = Model(kind)
    actions = []
    next_value = 0
    for _ in range(ROUNDS):
        k = rng.below(5)
        for _ in range(k):
            m.add_getter()
        actions.append(("getters", k))
        actions.append(("settle",))
        for _ in range(2 + rng.below(7)):
            live = m.live()
            if not live or rng.below(100) < 55:
                if kind == PRIORITY:
                    v = rng.below(10)
                else:
                    v = next_value
                    next_value += 1
                m.put(v)
                actions.append(("put", v))
            else:
                g = live[rng.below(len(live))]
                m.cancel(g)
                actions.append(("cancel", g))
        # corio hands a put item to its getter at once, asyncio's getter takes the top (lifo) or the
        # smallest (priority) only when it runs: they agree when the first getter woken is cancelled.
        if kind != FIFO and m.woken and m.woken[0] not in m.cancel_requested:
            m.cancel(m.woken[0])
            actions.append(("cancel", m.woken[0]))
        m.settle()
        actions.append(("settle",))
    for g in range(len(m.results)):
        m.cancel(g)
        actions.append(("cancel", g))
    m.settle()
    actions.append(("settle",))
    left = []
    while m.items:
        left.append(m.take())
    return actions, m.results, left


async def replay(kind, actions):
    q = {FIFO: asyncio.Queue, LIFO: asyncio.LifoQueue, PRIORITY: asyncio.PriorityQueue}[kind]()
    results, tasks = [], []

    async def getter(i):
        try:
            results[i] = await q.get()
            q.task_done()
        except asyncio.CancelledError:
            results[i] = CANCELLED
            raise

    for a in actions:
        if a[0] == "getters":
            for _ in range(a[1]):
                results.append(WAITING)
                tasks.append(asyncio.create_task(getter(len(results) - 1)))
        elif a[0] == "put":
            q.put_nowait(a[1])
        elif a[0] == "cancel":
            tasks[a[1]].cancel()
        else:
            for _ in range(len(tasks) + 2):
                await asyncio.sleep(0)
    await asyncio.gather(*tasks, return_exceptions=True)
    left = []
    while not q.empty():
        left.append(q.get_nowait())
    return results, left


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else SEEDS
    bad = 0
    for kind in (FIFO, LIFO, PRIORITY):
        for seed in range(1, seeds + 1):
            actions, results, left = scenario(kind, seed)
            got = asyncio.run(replay(kind, actions))
            if got != (results, left):
                bad += 1
                print(f"{kind} seed {seed}: model {results} left {left}, asyncio {got[0]} left {got[1]}")
    print(f"{3 * seeds - bad} of {3 * seeds} scenarios: the model agrees with asyncio")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
