"""Fairness: does a stream running flat out let the rest of the program run?

A gevent server runs many greenlets on one hub. While one pipe streams
as fast as it can between two greenlets, a third greenlet sleeps
:data:`PERIOD` in a loop and records how late each wake-up is. A stream
whose handoffs never pass through the hub's loop starves timers (and
I/O) until it ends; one that does keeps every wake-up on time.

The same probe runs with gevent's Channel (passing chunks that the
consumer copies), as a peer.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from .cases import _buffer, block, channel_consume

PERIOD = 0.010  # the sleeper's period, seconds
CHUNK = 64  # the stream's write size: the most handoffs per second

_perf = time.perf_counter

# A stream: given the seconds to run, two callables for two greenlets (the
# producer stops writing once that time has passed) and a check of what
# the consumer returned.
Stream = Callable[[float], tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], None]]]


def _gpipe_stream(duration: float) -> tuple[Callable[[], Any], Callable[[], Any], Any]:
    import gpipe

    reader, writer = gpipe.pipe(backend="gevent")
    data = block(CHUNK)
    written = [0]

    def produce() -> None:
        write = writer.write
        deadline = _perf() + duration
        n = 0
        while _perf() < deadline:
            write(data)
            n += 1
        written[0] = n * CHUNK
        writer.close()

    def consume() -> int:
        buf = _buffer(CHUNK)
        readinto = reader.readinto1
        got = 0
        with reader:
            while True:
                n = readinto(buf)
                if not n:
                    return got
                got += n

    return produce, consume, lambda got: _same(got, written[0])


def _channel_stream(duration: float) -> tuple[Callable[[], Any], Callable[[], Any], Any]:
    from gevent.queue import Channel

    channel: Any = Channel()
    data = block(CHUNK)
    written = [0]

    def produce() -> None:
        put = channel.put
        deadline = _perf() + duration
        n = 0
        while _perf() < deadline:
            put(data)
            n += 1
        written[0] = n * CHUNK
        put(None)

    return (
        produce,
        lambda: channel_consume(channel, CHUNK),
        lambda got: _same(got, written[0]),
    )


def _same(got: int, written: int) -> None:
    if got != written:
        raise RuntimeError(f"the consumer got {got} bytes of {written}")


STREAMS: dict[str, tuple[str, Stream]] = {
    "gpipe": ("gpipe gevent readinto1", _gpipe_stream),
    "channel-copy": ("gevent Channel + copy", _channel_stream),
}


def lateness(stream: Stream, duration: float) -> dict[str, Any]:
    """Run *stream* for *duration* seconds next to a sleeper; how late it woke.

    :return: ``worst_ms`` (the latest wake-up past its due time), ``wakeups``
        and ``seconds`` (how long the stream ran).
    """
    import gevent

    produce, consume, check = stream(duration)
    late: list[float] = []
    running = [True]

    def sleeper() -> None:
        while running[0]:
            due = _perf() + PERIOD
            gevent.sleep(PERIOD)
            late.append(_perf() - due)

    probe = gevent.spawn(sleeper)
    gevent.sleep(0)  # the sleeper's first sleep has begun
    start = _perf()
    tasks = [gevent.spawn(produce), gevent.spawn(consume)]
    try:
        gevent.joinall(tasks, raise_error=True)
        elapsed = _perf() - start
    finally:
        running[0] = False
    probe.join()
    check(tasks[1].value)
    return {
        "worst_ms": max(late) * 1e3,
        "median_ms": statistics.median(late) * 1e3,
        "wakeups": len(late),
        "seconds": elapsed,
    }


def fairness(duration: float, rounds: int) -> dict[str, Any]:
    """The probe, for each stream in turn, *rounds* times; every figure kept."""
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in STREAMS}
    for i in range(rounds):
        # Alternate which goes first, so neither always runs on a warm heap.
        for name in sorted(STREAMS, reverse=bool(i % 2)):
            found[name].append(lateness(STREAMS[name][1], duration))
    return {
        "period_ms": PERIOD * 1e3,
        "chunk": CHUNK,
        "duration_s": duration,
        "rounds": rounds,
        "streams": {
            name: {
                "label": STREAMS[name][0],
                "runs": runs,
                "worst_ms": max(run["worst_ms"] for run in runs),
                "worst_ms_median": statistics.median(run["worst_ms"] for run in runs),
                "worst_ms_min": min(run["worst_ms"] for run in runs),
            }
            for name, runs in found.items()
        },
    }
