"""Memory: the size of an idle pipe, and many concurrent greenlet pairs."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import Any

from .cases import (
    KiB,
    _buffer,
    _check,
    block,
    channel_consume,
    channel_produce,
    floor_sides,
)

PAIRS_TOTAL = 64 * KiB  # bytes each concurrent pair moves
PAIRS_CHUNK = 4 * KiB  # in writes and reads of this size

_perf = time.perf_counter


def idle_pipe_bytes(backend: str, n: int) -> float:
    """Mean bytes that one idle pipe (both ends) keeps allocated.

    :mod:`tracemalloc`'s traced memory before and after creating *n*
    pipes (the lists that hold them are allocated before), divided by *n*.
    """
    import gpipe

    # The first pipe of a backend sets the backend up (and imports gevent).
    r, w = gpipe.pipe(backend=backend)
    r.close()
    w.close()
    readers: list[Any] = [None] * n
    writers: list[Any] = [None] * n
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            readers[i], writers[i] = gpipe.pipe(backend=backend)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    for r, w in zip(readers, writers, strict=True):
        r.close()
        w.close()
    return (after - before) / n


def pairs_gpipe(pairs: int) -> float:
    """*pairs* concurrent greenlet pairs, each moving 64 KiB through a pipe.

    The consumers read with ``readinto1``, the bytes of one write a call.
    """
    import gevent

    import gpipe

    data = block(PAIRS_CHUNK)
    writes = PAIRS_TOTAL // PAIRS_CHUNK

    def produce(writer: Any) -> None:
        write = writer.write
        for _ in range(writes):
            write(data)
        writer.close()

    def consume(reader: Any) -> int:
        buf = _buffer(PAIRS_CHUNK)
        readinto = reader.readinto1
        got = 0
        while True:
            n = readinto(buf)
            if not n:
                reader.close()
                return got
            got += n

    start = _perf()
    consumers = []
    producers = []
    for _ in range(pairs):
        reader, writer = gpipe.pipe(backend="gevent")
        producers.append(gevent.spawn(produce, writer))
        consumers.append(gevent.spawn(consume, reader))
    gevent.joinall(producers + consumers, raise_error=True)
    elapsed = _perf() - start
    _check(sum(g.value for g in consumers), pairs * PAIRS_TOTAL, "gpipe pairs")
    return elapsed


def pairs_channel(pairs: int) -> float:
    """The same with a Channel per pair and copying consumers."""
    import gevent
    from gevent.queue import Channel

    data = block(PAIRS_CHUNK)
    writes = PAIRS_TOTAL // PAIRS_CHUNK
    start = _perf()
    consumers = []
    producers = []
    for _ in range(pairs):
        channel = Channel()
        producers.append(gevent.spawn(channel_produce, channel, data, writes))
        consumers.append(gevent.spawn(channel_consume, channel, PAIRS_CHUNK))
    gevent.joinall(producers + consumers, raise_error=True)
    elapsed = _perf() - start
    _check(sum(g.value for g in consumers), pairs * PAIRS_TOTAL, "Channel pairs")
    return elapsed


def pairs_floor(pairs: int) -> float:
    """The same with the Semaphore floor's turns (see ``semaphore_floor``):
    each pair's two greenlets take turns on two Semaphores, copying a
    chunk a turn, as many turns as a pipe pair has writes."""
    import gevent

    data = block(PAIRS_CHUNK)
    start = _perf()
    sides = []
    for _ in range(pairs):
        sides += floor_sides(data, PAIRS_TOTAL // PAIRS_CHUNK)
    gevent.joinall(sides, raise_error=True)
    elapsed = _perf() - start
    _check(sum(g.value for g in sides), pairs * PAIRS_TOTAL, "Semaphore floor pairs")
    return elapsed


PAIRS_RUNNERS = {"gpipe": pairs_gpipe, "channel-copy": pairs_channel, "floor": pairs_floor}


def memory(pipes: int, pairs: int, rounds: int) -> dict[str, Any]:
    """Idle pipe size on each backend; *pairs* pairs, gpipe against Channel
    and against the Semaphore floor."""
    idle = {backend: idle_pipe_bytes(backend, pipes) for backend in ("gevent", "threading")}
    times: dict[str, list[float]] = {name: [] for name in PAIRS_RUNNERS}
    for runner in PAIRS_RUNNERS.values():
        runner(min(pairs, 100))  # warm-up
    for i in range(rounds):
        # Rotate which goes first, so none always runs on a warm heap.
        names = list(PAIRS_RUNNERS)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            gc.collect()
            times[name].append(PAIRS_RUNNERS[name](pairs))
    med = {name: statistics.median(values) for name, values in times.items()}
    per_round = [c / g for g, c in zip(times["gpipe"], times["channel-copy"], strict=True)]
    return {
        "idle_pipes": pipes,
        "idle_pipe_bytes": idle,
        "pairs": pairs,
        "pair_bytes": PAIRS_TOTAL,
        "pair_chunk": PAIRS_CHUNK,
        "pairs_times_s": times,
        "pairs_median_s": med,
        # Above 1.0: gpipe finished faster than Channel + copy.
        "pairs_ratio": med["channel-copy"] / med["gpipe"],
        "pairs_ratio_min": min(per_round),
        "pairs_ratio_max": max(per_round),
        # The floor's own speed against Channel's, and gpipe's against the
        # floor's: a pipe built on gevent's Semaphore cannot pass the first.
        "pairs_floor_ratio": med["channel-copy"] / med["floor"],
        "pairs_gpipe_floor_ratio": med["floor"] / med["gpipe"],
    }
