#!/usr/bin/env python3
"""Checks the reference models of tests/support/queue_model.hpp against asyncio itself.

The randomized queue tests (test_sync_queue, test_sync_priority_queue) compare corio's queues with
models of asyncio's Queue, LifoQueue and PriorityQueue. These are the same models and the same scenario
generators (same random numbers), line for line; each scenario is replayed on asyncio's queues and every
task's outcome (and, for the bounded scenarios, each put_nowait/get_nowait, qsize() and full()), and
what is left in the queue, must equal the model's.

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


WAITING_, CANCELLED_, PUT_DONE = WAITING, CANCELLED, -3


class Sim:
    """asyncio_queue_sim: CPython's Lib/asyncio/queues.py (3.11) step by step, tasks on a FIFO ready queue.

    put(): `while full(): await a future in _putters`, then put_nowait(): store, wake the first getter.
    get(): `while empty(): await a future in _getters`, then get_nowait(): take, wake the first putter.
    A woken task runs after those already ready and re-reads the container; one cancelled after it was
    woken passes the wake-up on if not empty() (putter: not full()).
    """

    def __init__(self, kind, maxsize):
        self.kind, self.maxsize = kind, maxsize
        self.tasks = []  # [getter, value, woken, cancel_requested]
        self.results = []
        self.items = []
        self.ready, self.getters, self.putters = [], [], []

    def spawn(self, getter, v=0):
        self.tasks.append([getter, v, False, False])
        self.results.append(WAITING_)
        self.ready.append(len(self.tasks) - 1)

    def full(self):
        return self.maxsize > 0 and len(self.items) >= self.maxsize

    def take(self):
        if self.kind == FIFO:
            return self.items.pop(0)
        if self.kind == LIFO:
            return self.items.pop()
        return self.items.pop(self.items.index(min(self.items)))

    def wakeup_next(self, waiters):
        if waiters:
            t = waiters.pop(0)
            self.tasks[t][2] = True
            self.ready.append(t)

    def put_nowait(self, v):
        if self.full():
            return False
        self.items.append(v)
        self.wakeup_next(self.getters)
        return True

    def get_nowait(self):
        if not self.items:
            return None
        v = self.take()
        self.wakeup_next(self.putters)
        return v

    def cancel(self, t):
        for waiters in (self.getters, self.putters):
            if t in waiters:
                waiters.remove(t)
                self.results[t] = CANCELLED_
                return
        if self.tasks[t][2]:
            self.tasks[t][3] = True

    def settle(self):
        while self.ready:
            self.step(self.ready.pop(0))

    def step(self, t):
        x = self.tasks[t]
        getter, v, _, cancel_requested = x
        x[2] = False
        if cancel_requested:
            self.results[t] = CANCELLED_
            if (self.items if getter else not self.full()):
                self.wakeup_next(self.getters if getter else self.putters)
        elif getter:
            if not self.items:
                self.getters.append(t)
            else:
                self.results[t] = self.take()
                self.wakeup_next(self.putters)
        elif self.full():
            self.putters.append(t)
        else:
            self.items.append(v)
            self.wakeup_next(self.getters)
            self.results[t] = PUT_DONE

    def live(self):
        return [t for t, r in enumerate(self.results) if r == WAITING_ and not self.tasks[t][3]]

    def woken(self, getter):
        return any(self.tasks[t][2] and self.tasks[t][0] == getter for t in self.ready)


def bounded_scenario(kind, seed):
    """play_bounded_scenario's actions and the model's outcome."""
    rng = Splitmix64(seed)
    maxsize = 1 + rng.below(3)
    m = Sim(kind, maxsize)
    actions = []
    next_value = 0

    def value():
        nonlocal next_value
        if kind == PRIORITY:
            return rng.below(10)
        next_value += 1
        return next_value - 1

    def settle():
        m.settle()
        actions.append(("settle", len(m.items), m.full()))

    for _ in range(ROUNDS):
        k = rng.below(4)
        for _ in range(k):
            m.spawn(True)
        actions.append(("getters", k))
        settle()
        vs = []
        for _ in range(rng.below(4)):
            vs.append(value())
            m.spawn(False, vs[-1])
        actions.append(("putters", vs))
        settle()
        for _ in range(2 + rng.below(7)):
            r = rng.below(100)
            if r < 30:
                v = value()
                if not m.woken(False):
                    actions.append(("put_nowait", v, m.put_nowait(v)))
            elif r < 45:
                if not m.woken(True):
                    actions.append(("get_nowait", m.get_nowait()))
            else:
                live = m.live()
                if live:
                    t = live[rng.below(len(live))]
                    m.cancel(t)
                    actions.append(("cancel", t))
        actions.append(("sizes", len(m.items), m.full()))
        settle()
    for t in range(len(m.results)):
        m.cancel(t)
        actions.append(("cancel", t))
    settle()
    left = []
    while m.items:
        left.append(m.take())
    return maxsize, actions, m.results, left


async def replay_bounded(kind, maxsize, actions):
    """Replays the actions on asyncio; returns the tasks' outcomes, what is left, and the mismatches seen
    on the way (put_nowait/get_nowait results, qsize(), full())."""
    q = {FIFO: asyncio.Queue, LIFO: asyncio.LifoQueue, PRIORITY: asyncio.PriorityQueue}[kind](maxsize)
    results, tasks, mismatches = [], [], []

    async def getter(i):
        try:
            results[i] = await q.get()
            q.task_done()
        except asyncio.CancelledError:
            results[i] = CANCELLED_
            raise

    async def putter(i, v):
        try:
            await q.put(v)
            results[i] = PUT_DONE
        except asyncio.CancelledError:
            results[i] = CANCELLED_
            raise

    for a in actions:
        if a[0] == "getters":
            for _ in range(a[1]):
                results.append(WAITING_)
                tasks.append(asyncio.create_task(getter(len(results) - 1)))
        elif a[0] == "putters":
            for v in a[1]:
                results.append(WAITING_)
                tasks.append(asyncio.create_task(putter(len(results) - 1, v)))
        elif a[0] == "put_nowait":
            try:
                q.put_nowait(a[1])
                ok = True
            except asyncio.QueueFull:
                ok = False
            if ok != a[2]:
                mismatches.append(a)
        elif a[0] == "get_nowait":
            try:
                v = q.get_nowait()
                q.task_done()
            except asyncio.QueueEmpty:
                v = None
            if v != a[1]:
                mismatches.append((a, v))
        elif a[0] == "cancel":
            tasks[a[1]].cancel()
        else:  # "settle" or "sizes"
            if a[0] == "settle":
                for _ in range(2 * len(tasks) + 2):
                    await asyncio.sleep(0)
            if (q.qsize(), q.full()) != (a[1], a[2]):
                mismatches.append((a, q.qsize(), q.full()))
    await asyncio.gather(*tasks, return_exceptions=True)
    left = []
    while not q.empty():
        left.append(q.get_nowait())
    return results, left, mismatches


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else SEEDS
    bad = total = 0
    for kind in (FIFO, LIFO, PRIORITY):
        for seed in range(1, seeds + 1):
            total += 1
            actions, results, left = scenario(kind, seed)
            got = asyncio.run(replay(kind, actions))
            if got != (results, left):
                bad += 1
                print(f"{kind} seed {seed}: model {results} left {left}, asyncio {got[0]} left {got[1]}")
    for kind in (LIFO, PRIORITY):
        for seed in range(1, seeds + 1):
            total += 1
            maxsize, actions, results, left = bounded_scenario(kind, seed)
            got = asyncio.run(replay_bounded(kind, maxsize, actions))
            if got != (results, left, []):
                bad += 1
                print(f"bounded {kind} seed {seed}: model {results} left {left}, asyncio {got[0]} left {got[1]}"
                      f", mismatches {got[2]}")
    print(f"{total - bad} of {total} scenarios: the models agree with asyncio")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
