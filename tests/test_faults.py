"""Fault injection: many writers and many readers on one pipe.

On the gevent backend, a chaos greenlet kills readers and writers at
random (seeded) moments, and calls run under :class:`gevent.Timeout`\\ s
of random lengths. On the threading backend, where an OS thread cannot
be killed, a chaos thread turns the ends' timeouts on and off at random
moments instead. Every write is a record naming its writer, its
sequence number and each 16-byte cell's index (:class:`Records`), so
the read stream alone shows whether any byte was lost, duplicated,
reordered or invented, and whether each write that raised contributed
exactly the ``consumed`` prefix it reported. Every call must return or
raise within a bound.
"""

from __future__ import annotations

import itertools
import random
import time
from contextlib import nullcontext
from typing import Any

import gevent
import pytest

import gpipe

from ._tasks import CELL, NativeThread, Records, native_sleep, payload

WRITERS = 8
READERS = 8
WRITES = 60  # per writer
BOUND = 10.0  # seconds: no call may take longer (a deadlock detector)
SEEDS = [1, 2, 3]

STATS = {"runs": 0, "calls": 0, "faults": 0, "bytes": 0}


class Killed(Exception):
    """Thrown into a worker by the chaos greenlet."""


class Run:
    """One fault-injection run: records, call durations and counts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.records = Records()
        self.longest = 0.0
        # next() on a count is atomic: safe from many threads.
        self._calls = itertools.count()
        self._faults = itertools.count()  # interruptions that landed in a call

    def fault(self) -> None:
        next(self._faults)

    def timed(self, fn: Any, *args: Any) -> Any:
        start = time.monotonic()
        try:
            return fn(*args)
        finally:
            next(self._calls)
            self.longest = max(self.longest, time.monotonic() - start)

    def finish(self, ordered: bool) -> None:
        self.records.check(ordered)
        assert self.longest < BOUND, f"a call took {self.longest:.1f}s"
        assert self.records.bytes_read > 0
        STATS["runs"] += 1
        STATS["calls"] += next(self._calls)
        STATS["faults"] += next(self._faults)
        STATS["bytes"] += self.records.bytes_read


def read_op(r: gpipe.PipeReader, rng: random.Random) -> bytes:
    ncells = rng.randint(1, 6)
    if rng.random() < 0.5:
        return r.read1(ncells * CELL)
    buf = bytearray(ncells * CELL)
    return bytes(buf[: r.readinto1(buf)])


@pytest.mark.parametrize("seed", SEEDS)
def test_gevent_kills_and_timeouts(seed: int) -> None:
    run = Run(seed)
    rng = run.rng
    r, w = gpipe.pipe(backend="gevent")
    interrupts = (Killed, gevent.Timeout)

    def timeout() -> Any:
        if rng.random() < 0.2:
            return gevent.Timeout(rng.choice([0, 0.0001, 0.0005, 0.002]))
        return nullcontext()

    def pause() -> None:
        try:
            gevent.sleep(rng.choice([0, 0, 0, 0.0002]))
        except Killed:
            pass  # a kill that landed outside the pipe: nothing to check

    def writer(wid: int) -> None:
        for seq in range(WRITES):
            ncells = rng.choice([1, 1, 2, 3, 8, 30])
            data = payload(wid, seq, ncells)
            try:
                with timeout():
                    n = run.timed(w.write, data)
            except interrupts as exc:
                run.fault()
                n = exc.consumed
            run.records.wrote(wid, seq, ncells, n)
            pause()

    def reader(rid: int) -> None:
        while True:
            try:
                with timeout():
                    chunk = run.timed(read_op, r, rng)
            except interrupts:
                run.fault()
            else:
                if not chunk:
                    return  # EOF
                run.records.read(rid, chunk)
            pause()

    writers = [gevent.spawn(writer, i) for i in range(WRITERS)]
    readers = [gevent.spawn(reader, i) for i in range(READERS)]
    gevent.sleep(0)  # every worker started: a kill before start would skip it

    def chaos() -> None:
        workers = writers + readers
        while True:
            gevent.sleep(rng.choice([0, 0.0001, 0.0005]))
            target = rng.choice(workers)
            if target:  # started and not finished
                target.kill(Killed(), block=False)

    monkey = gevent.spawn(chaos)
    try:
        assert len(gevent.joinall(writers, timeout=60, raise_error=True)) == len(writers), (
            "writers hung"
        )
    finally:
        monkey.kill()
    w.close()
    assert len(gevent.joinall(readers, timeout=BOUND, raise_error=True)) == len(readers), (
        "readers hung"
    )
    r.close()
    # One OS thread: records were made in stream order.
    run.finish(ordered=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_threading_timeouts(seed: int) -> None:
    run = Run(seed)
    r, w = gpipe.pipe(backend="threading")
    done = [False]

    def writer(wid: int, rng: random.Random) -> None:
        for seq in range(WRITES // 2):
            ncells = rng.choice([1, 1, 2, 3, 8, 30])
            data = payload(wid, seq, ncells)
            try:
                n = run.timed(w.write, data)
            except TimeoutError as exc:
                run.fault()
                n = exc.consumed  # type: ignore[attr-defined]
            run.records.wrote(wid, seq, ncells, n)

    def reader(rid: int, rng: random.Random) -> None:
        while True:
            try:
                chunk = run.timed(read_op, r, rng)
            except TimeoutError:
                run.fault()
                continue
            if not chunk:
                return
            run.records.read(rid, chunk)

    def chaos(rng: random.Random) -> None:
        while not done[0]:
            native_sleep(rng.choice([0, 0.0001, 0.001]))
            end = rng.choice([r, w])
            end.settimeout(rng.choice([None, None, 0, 0.0001, 0.001]))
        r.settimeout(None)
        w.settimeout(None)

    # Each thread its own seeded generator: random.Random is not shared.
    seeds = iter(range(seed * 1000, seed * 1000 + 100))
    writers = [NativeThread(writer, i, random.Random(next(seeds))) for i in range(WRITERS)]
    readers = [NativeThread(reader, i, random.Random(next(seeds))) for i in range(READERS)]
    monkey = NativeThread(chaos, random.Random(next(seeds)))
    try:
        for t in writers:
            t.get(60)
    finally:
        done[0] = True
        monkey.get()
    w.close()
    for t in readers:
        t.get()
    r.close()
    run.finish(ordered=False)


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    print(
        f"\nfaults: {STATS['runs']} runs, {STATS['calls']} calls, "
        f"{STATS['faults']} faults landed in calls, {STATS['bytes']} bytes read"
    )
