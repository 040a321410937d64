"""8 writer threads and 8 reader threads on one pipe, on both backends.

On the threading backend each call blocks its OS thread. On the gevent
backend each native thread runs its own hub, and a write in one thread
wakes a read blocked in another through gevent's thread-safe
Semaphore. The threads are real OS threads even in a monkey-patched
process. Every write is a record (:class:`Records`), so the read
stream shows whether any byte was lost, duplicated, reordered or
invented.
"""

from __future__ import annotations

import random
import time
from typing import Any

import gevent
import pytest

import gpipe

from ._tasks import (
    CELL,
    NativeThread,
    Records,
    allocate_lock,
    payload,
    reader_blocked,
    wait_until,
    writer_blocked,
)

THREADS = 8  # writers, and as many readers
WRITES = 150  # per writer


def in_thread(backend: str, fn: Any, *args: Any) -> Any:
    """Run *fn* in this native thread; on gevent, destroy its hub after."""
    try:
        return fn(*args)
    finally:
        if backend == "gevent":
            # This thread's hub (if a call blocked here and made one) dies
            # with the thread; destroy it rather than leak its loop.
            hub = gevent.get_hub() if gevent.get_hub is not None else None
            if hub is not None:
                hub.destroy(destroy_loop=True)


@pytest.mark.parametrize("backend", ["threading", "gevent"])
def test_many_threads(backend: str) -> None:
    r, w = gpipe.pipe(backend=backend)
    records = Records()

    def writer(wid: int) -> None:
        rng = random.Random(wid)
        for seq in range(WRITES):
            ncells = rng.choice([1, 2, 3, 5, 16, 64])
            assert w.write(payload(wid, seq, ncells)) == ncells * CELL
            records.wrote(wid, seq, ncells, ncells * CELL)

    def reader(rid: int) -> int:
        rng = random.Random(1000 + rid)
        reads = 0
        while True:
            size = rng.randint(1, 8) * CELL
            if rng.random() < 0.5:
                chunk = r.read1(size)
            else:
                buf = bytearray(size)
                chunk = bytes(buf[: r.readinto1(buf)])
            if not chunk:
                return reads
            records.read(rid, chunk)
            reads += 1

    writers = [NativeThread(in_thread, backend, writer, i) for i in range(THREADS)]
    readers = [NativeThread(in_thread, backend, reader, i) for i in range(THREADS)]
    deadline = time.monotonic() + 60  # for all threads together
    for t in writers:
        t.get(max(0.1, deadline - time.monotonic()))
    w.close()
    reads = [t.get(max(0.1, deadline - time.monotonic())) for t in readers]
    r.close()
    records.check(ordered=False)
    total = sum(n for *_, n in records.writes)
    assert records.bytes_read == total
    # Each reader took part: the pipe does not starve parallel readers.
    assert sum(reads) >= THREADS * WRITES


@pytest.mark.parametrize("first", ["exits", "destroys its hub", "stays busy"])
@pytest.mark.parametrize("reading", [False, True], ids=["writer", "reader"])
def test_gevent_waiter_after_first_thread(reading: bool, first: str) -> None:
    """A call blocked in a second thread wakes whatever the first one does.

    Thread A blocks once on the pipe (its hub waits on the pipe's
    signal) and is served; then it exits, exits after destroying its
    hub, or stays alive doing other work without running its hub (here:
    waiting on an OS lock). Thread B then blocks on the same side and
    the main thread serves it: B must return, whatever A does. Threads
    that come and go, or get busy elsewhere (a thread pool), are the
    normal way to use a pipe across threads.
    """
    r, w = gpipe.pipe(backend="gevent")
    data = b"x" * 10
    hold = allocate_lock()
    hold.acquire()

    def blocked_call() -> Any:
        return r.read1(100) if reading else w.write(data)

    def serve() -> Any:
        return w.write(data) if reading else r.read1(100)

    def thread_a() -> Any:
        try:
            return blocked_call()
        finally:
            if first == "destroys its hub":
                gevent.get_hub().destroy(destroy_loop=True)
            elif first == "stays busy":
                hold.acquire(True, 30)

    def is_blocked() -> bool:
        return reader_blocked(r._pipe) if reading else writer_blocked(r._pipe)

    try:
        a = NativeThread(thread_a)
        wait_until("threading", is_blocked, "thread A blocks")
        serve()
        if first != "stays busy":
            assert a.get(5) == (data if reading else len(data))
        b = NativeThread(blocked_call)
        wait_until("threading", is_blocked, "thread B blocks")
        serve()
        assert b.get(5) == (data if reading else len(data))
    finally:
        hold.release()
        r.close()
        w.close()
