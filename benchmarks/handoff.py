"""Where a small handoff's time goes, on the gevent backend.

``python benchmarks/handoff.py [--trials N]`` prints three tables:

1. hub switches per handoff (counted with :func:`greenlet.settrace`) for
   gpipe ``readinto``/``read(n)``, the Semaphore floor, Channel + copy and os.pipe, at 64 B and
   4 KiB;
2. nanoseconds per handoff of gpipe and Channel + copy next to the cost of
   one wake-up by each gevent primitive a pipe could block on (two
   greenlets ping-pong; each wake blocks one side once);
3. nanoseconds per call of the pieces a handoff's code runs: the mutex,
   memoryview creation, the copy (only public API: no internals of gpipe).

Every timing is the median of ``--trials`` trials, the trials of all
items interleaved in a shuffled order, as in ``python -m gpipe bench``.
The numbers are per call, so they add up to a budget: a handoff that
blocks one side costs about one wake-up plus the code both sides run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import gevent
import greenlet
from gevent.event import Event
from gevent.lock import Semaphore

from gpipe._bench import cases

try:
    from gevent._waiter import Waiter
except ImportError:  # gevent's private module moved
    from gevent.hub import Waiter  # type: ignore[no-redef]

HANDOFFS = 20_000


def count_switches(kind: str, size: int, n: int = HANDOFFS) -> dict[str, float]:
    """Greenlet switches per handoff while one case moves *n* chunks."""
    hub = gevent.get_hub()
    counts = {"to hub": 0, "from hub": 0, "greenlet to greenlet": 0}

    def tracer(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            origin, target = args
            key = (
                "to hub"
                if target is hub
                else "from hub"
                if origin is hub
                else "greenlet to greenlet"
            )
            counts[key] += 1

    run = cases.KINDS[kind].run
    old = greenlet.settrace(tracer)
    try:
        run(size, n)
    finally:
        greenlet.settrace(old)
    return {key: value / n for key, value in counts.items()}


def ping_pong(make: Callable[[], tuple[Callable[[], Any], Callable[[], Any]]], n: int) -> float:
    """Seconds per wake-up: two greenlets take turns, each blocking once a turn."""
    a_wait, a_wake = make()
    b_wait, b_wake = make()

    def a() -> None:
        for _ in range(n):
            b_wake()
            a_wait()

    def b() -> None:
        for _ in range(n):
            b_wait()
            a_wake()

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(b), gevent.spawn(a)], raise_error=True)
    return (time.perf_counter() - start) / (2 * n)


def semaphore() -> tuple[Callable[[], Any], Callable[[], Any]]:
    sem = Semaphore(0)
    return sem.acquire, sem.release


def event() -> tuple[Callable[[], Any], Callable[[], Any]]:
    ev = Event()

    def wait() -> None:
        ev.wait()
        ev.clear()

    return wait, ev.set


def waiter() -> tuple[Callable[[], Any], Callable[[], Any]]:
    """A one-waiter signal on gevent's Waiter, woken by a hub callback."""
    loop = gevent.get_hub().loop
    state: dict[str, Any] = {"set": False, "waiter": None}

    def wait() -> None:
        if not state["set"]:
            w = state["waiter"] = Waiter()
            w.get()
        state["set"] = False

    def wake() -> None:
        w = state["waiter"]
        if w is None:
            state["set"] = True
        else:
            state["waiter"] = None
            state["set"] = True
            loop.run_callback(w.switch, None)

    return wait, wake


def per_handoff(kind: str, size: int) -> Callable[[], float]:
    run = cases.KINDS[kind].run
    return lambda: run(size, HANDOFFS) / HANDOFFS


def per_call(stmt: str, setup: dict[str, Any], number: int = 100_000) -> Callable[[], float]:
    timer = timeit.Timer(stmt, globals=setup)
    return lambda: timer.timeit(number) / number


def interleaved(items: dict[str, Callable[[], float]], trials: int) -> dict[str, float]:
    """Median seconds of each item, trials interleaved in shuffled orders."""
    times: dict[str, list[float]] = {name: [] for name in items}
    rng = random.Random(1)
    for _ in range(trials):
        order = list(items)
        rng.shuffle(order)
        for name in order:
            times[name].append(items[name]())
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=9)
    args = parser.parse_args(argv)

    print("hub switches per handoff")
    for size in (64, 4096):
        for kind in (
            "gevent-readinto",
            "gevent-read",
            "semaphore-floor",
            "channel-copy",
            "os-pipe",
        ):
            found = count_switches(kind, size)
            shown = ", ".join(f"{key} {value:.2f}" for key, value in found.items())
            print(f"  {cases.KINDS[kind].label:28} {size:5} B: {sum(found.values()):.2f} ({shown})")

    small, page = bytearray(64), bytearray(4096)
    items = {
        f"handoff: {cases.KINDS[kind].label}, {size} B": per_handoff(kind, size)
        for size in (64, 4096)
        for kind in ("gevent-readinto", "gevent-read", "semaphore-floor", "channel-copy")
    }
    items.update(
        {
            "wake: gevent.lock.Semaphore": lambda: ping_pong(semaphore, HANDOFFS),
            "wake: gevent.event.Event (wait, clear)": lambda: ping_pong(event, HANDOFFS),
            "wake: gevent Waiter + loop.run_callback": lambda: ping_pong(waiter, HANDOFFS),
        }
    )
    import _thread

    held = _thread.RLock()
    held.acquire()  # as the pipe's mutex is, when a call is about to wait
    calls = {
        "with RLock()": ("with m: pass", {"m": _thread.RLock()}),
        "with allocate_lock()": ("with m: pass", {"m": _thread.allocate_lock()}),
        "RLock release()+acquire() (around a wait)": (
            "m.release(); m.acquire()",
            {"m": held},
        ),
        "Semaphore.locked()": ("s.locked()", {"s": Semaphore(0)}),
        "Semaphore(0) creation": ("Semaphore(0)", {"Semaphore": Semaphore}),
        "memoryview(bytearray) + release()": ("memoryview(b).release()", {"b": small}),
        "64 B copy: want[:n] = view[off:off + n]": (
            "w[:64] = v[0:64]",
            {"w": memoryview(small), "v": memoryview(bytes(64))},
        ),
        "64 B copy: bytes(view[off:off + n])": (
            "bytes(v[0:64])",
            {"v": memoryview(bytes(64))},
        ),
        "4 KiB copy: want[:n] = view[off:off + n]": (
            "w[:4096] = v[0:4096]",
            {"w": memoryview(page), "v": memoryview(bytes(4096))},
        ),
        "4 KiB copy: bytes(view[off:off + n])": (
            "bytes(v[0:4096])",
            {"v": memoryview(bytes(4096))},
        ),
    }
    items.update({f"call: {name}": per_call(*spec) for name, spec in calls.items()})
    # One untimed pass warms every item up.
    interleaved(items, 1)
    medians = interleaved(items, args.trials)
    print(f"\nnanoseconds, medians of {args.trials} interleaved trials")
    for name, seconds in medians.items():
        print(f"  {name:55} {seconds * 1e9:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
