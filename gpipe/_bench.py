"""``python -m gpipe bench``: gpipe against its peers, in one process.

Every case moves a fixed number of bytes from a producer to a consumer
in chunks of one size and is timed with :func:`time.perf_counter`, from
before the two tasks start until both have finished. The number of
chunks per case is calibrated once, so that each case takes about
``--target`` seconds, and then stays fixed. After a warm-up, the cases
run in interleaved rounds: each round runs every case once, in a freshly
shuffled order, so that a slow spell of the machine spreads over all
cases instead of hitting one. Medians over the rounds are reported.

The cases (see ``benchmarks/README.md`` for why each peer is there):

* gpipe on the gevent backend between two greenlets, reading with
  ``readinto`` into a preallocated buffer and with ``read(n)``;
* gpipe on the threading backend between two OS threads, likewise;
* ``gevent.queue.Channel`` passing :class:`bytes` that the consumer
  copies into a preallocated buffer (memoryview slice assignment);
* :func:`os.pipe` with non-blocking fds, ``gevent.os.nb_write`` and
  ``gevent.os.nb_read`` between two greenlets;
* :class:`queue.Queue` of size 1 between two OS threads, the consumer
  copying as for the Channel;
* memoryview slice assignment in a loop: the copy limit;
* gpipe's buffered mode, ``pipe(65536)``, with 64-byte writes against
  :func:`os.pipe` with the same writes, where :func:`gpipe.pipe` has a
  ``bufsize`` parameter.

The memory part counts the bytes of an idle pipe with :mod:`tracemalloc`
and times many concurrent greenlet pairs, gpipe against Channel + copy.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import json
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

KiB = 1 << 10
MiB = 1 << 20
SIZES = (64, 4 * KiB, 64 * KiB, MiB)
BUFSIZE = 64 * KiB  # the buffered pipe's bufsize
SMALL_WRITE = 64  # the write size of the buffered cases
PAIRS_TOTAL = 64 * KiB  # bytes each concurrent pair moves
PAIRS_CHUNK = 4 * KiB  # in writes and reads of this size

_perf = time.perf_counter
_PAGE = 4096

# A case runs ``count`` chunks of ``size`` bytes and returns the seconds
# the transfer took; it raises if the consumer did not get every byte.
Runner = Callable[[int, int], float]


def _buffer(size: int) -> memoryview:
    """A writable *size*-byte buffer whose first byte starts a memory page.

    How fast a copy runs depends on where its source and destination lie
    relative to each other: on the development machine a 64 KiB copy to
    a destination 16 bytes past the source's page offset ran at a fifth
    of the speed of a page-aligned one. Where fresh buffers land is up to
    the allocator, and it keeps handing the same addresses to one case,
    so a case could draw a slow placement for a whole run. Every case
    therefore copies between page-aligned buffers.
    """
    store = bytearray(size + _PAGE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(store))
    start = -address % _PAGE
    return memoryview(store)[start : start + size]


def _block(size: int) -> memoryview:
    """What a producer writes: *size* read-only bytes, page-aligned."""
    view = _buffer(size)
    view[:] = (bytes(range(256)) * (size // 256 + 1))[:size]
    return view.toreadonly()


def _check(got: int, expected: int, what: str) -> None:
    if got != expected:
        raise RuntimeError(f"{what}: consumer got {got} bytes, expected {expected}")


# -- the cases ---------------------------------------------------------------


def _gpipe_greenlets(size: int, count: int, *, mode: str, bufsize: int = 0) -> float:
    import gevent

    import gpipe

    if bufsize:
        reader, writer = gpipe.pipe(bufsize, backend="gevent")
        read_size = bufsize
    else:
        reader, writer = gpipe.pipe(backend="gevent")
        read_size = size
    block = _block(size)

    def produce() -> None:
        write = writer.write
        for _ in range(count):
            write(block)
        writer.close()

    def consume_into() -> int:
        buf = _buffer(read_size)
        readinto = reader.readinto
        got = 0
        while True:
            n = readinto(buf)
            if not n:
                return got
            got += n

    def consume_read() -> int:
        read = reader.read
        got = 0
        while True:
            data = read(read_size)
            if not data:
                return got
            got += len(data)

    consume = consume_into if mode == "readinto" else consume_read
    start = _perf()
    tasks = [gevent.spawn(produce), gevent.spawn(consume)]
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    reader.close()
    _check(tasks[1].value, size * count, "gpipe gevent")
    return elapsed


def _gpipe_threads(size: int, count: int, *, mode: str) -> float:
    import threading

    import gpipe

    reader, writer = gpipe.pipe(backend="threading")
    block = _block(size)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            write = writer.write
            for _ in range(count):
                write(block)
            writer.close()
        except BaseException as exc:  # reported by the consumer's thread
            errors.append(exc)
            writer.close_with_error(exc)
            raise

    got = 0
    start = _perf()
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    if mode == "readinto":
        buf = _buffer(size)
        readinto = reader.readinto
        while True:
            n = readinto(buf)
            if not n:
                break
            got += n
    else:
        read = reader.read
        while True:
            data = read(size)
            if not data:
                break
            got += len(data)
    thread.join()
    elapsed = _perf() - start
    reader.close()
    if errors:
        raise errors[0]
    _check(got, size * count, "gpipe threading")
    return elapsed


def _channel_produce(channel: Any, block: memoryview, count: int) -> None:
    """Put *block* on a gevent Channel *count* times, then None (the end)."""
    put = channel.put
    for _ in range(count):
        put(block)
    put(None)


def _channel_consume(channel: Any, size: int) -> int:
    """Copy what arrives on *channel* into one buffer until None; the total."""
    view = _buffer(size)
    get = channel.get
    got = 0
    while True:
        data = get()
        if data is None:
            return got
        n = len(data)
        view[:n] = data
        got += n


def _channel_copy(size: int, count: int) -> float:
    import gevent
    from gevent.queue import Channel

    channel: Any = Channel()
    block = _block(size)
    start = _perf()
    tasks = [
        gevent.spawn(_channel_produce, channel, block, count),
        gevent.spawn(_channel_consume, channel, size),
    ]
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    _check(tasks[1].value, size * count, "Channel + copy")
    return elapsed


def _os_pipe(size: int, count: int, *, read_size: int = 0) -> float:
    import gevent
    from gevent.os import nb_read, nb_write

    read_size = read_size or size
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    block = _block(size)
    view = memoryview(block)

    def produce() -> None:
        try:
            for _ in range(count):
                # The first try passes the whole block: no slice to make.
                off = nb_write(wfd, block)
                while off < size:
                    off += nb_write(wfd, view[off:])
        finally:
            os.close(wfd)

    def consume() -> int:
        got = 0
        while True:
            data = nb_read(rfd, read_size)
            if not data:
                return got
            got += len(data)

    try:
        start = _perf()
        tasks = [gevent.spawn(produce), gevent.spawn(consume)]
        gevent.joinall(tasks, raise_error=True)
        elapsed = _perf() - start
    finally:
        os.close(rfd)
    _check(tasks[1].value, size * count, "os.pipe")
    return elapsed


def _queue_copy(size: int, count: int) -> float:
    import queue
    import threading

    q: queue.Queue[memoryview | None] = queue.Queue(1)
    block = _block(size)

    def produce() -> None:
        put = q.put
        for _ in range(count):
            put(block)
        put(None)

    view = _buffer(size)
    get = q.get
    got = 0
    start = _perf()
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    while True:
        data = get()
        if data is None:
            break
        n = len(data)
        view[:n] = data
        got += n
    thread.join()
    elapsed = _perf() - start
    _check(got, size * count, "Queue(1) + copy")
    return elapsed


def _memcpy(size: int, count: int) -> float:
    view = _buffer(size)
    block = _block(size)
    start = _perf()
    for _ in range(count):
        view[:] = block
    return _perf() - start


@dataclass
class Case:
    """One measured configuration: a kind of transfer at one chunk size."""

    kind: str  # e.g. "gevent-readinto"; a line in the plot, a row in the table
    size: int  # bytes per write (and per read, except the buffered cases)
    run: Runner
    count: int = 0  # chunks per run, set by calibration
    times: list[float] | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.size}"


# kind -> (label, runner); the order is the order of the table and the plot.
KINDS: dict[str, tuple[str, Runner]] = {
    "gevent-readinto": (
        "gpipe gevent readinto",
        lambda s, c: _gpipe_greenlets(s, c, mode="readinto"),
    ),
    "gevent-read": (
        "gpipe gevent read(n)",
        lambda s, c: _gpipe_greenlets(s, c, mode="read"),
    ),
    "threading-readinto": (
        "gpipe threading readinto",
        lambda s, c: _gpipe_threads(s, c, mode="readinto"),
    ),
    "threading-read": (
        "gpipe threading read(n)",
        lambda s, c: _gpipe_threads(s, c, mode="read"),
    ),
    "channel-copy": ("gevent Channel + copy", _channel_copy),
    "os-pipe": ("os.pipe nb_write/nb_read", _os_pipe),
    "queue-copy": ("threads Queue(1) + copy", _queue_copy),
    "memcpy": ("memoryview copy (limit)", _memcpy),
}
# The buffered cases: 64-byte writes, reads of up to BUFSIZE bytes.
BUFFERED_KINDS: dict[str, tuple[str, Runner]] = {
    "gevent-buffered": (
        f"gpipe pipe({BUFSIZE}) readinto",
        lambda s, c: _gpipe_greenlets(s, c, mode="readinto", bufsize=BUFSIZE),
    ),
    "os-pipe-buffered": (
        f"os.pipe, nb_read({BUFSIZE})",
        lambda s, c: _os_pipe(s, c, read_size=BUFSIZE),
    ),
}
LABELS = {kind: label for kind, (label, _) in {**KINDS, **BUFFERED_KINDS}.items()}


def has_bufsize() -> bool:
    """Return True if :func:`gpipe.pipe` takes a ``bufsize`` argument."""
    import gpipe

    return "bufsize" in inspect.signature(gpipe.pipe).parameters


def make_cases(buffered: bool) -> list[Case]:
    """Return every case to run, the buffered ones only if *buffered*."""
    cases = [Case(kind, size, run) for kind, (_, run) in KINDS.items() for size in SIZES]
    if buffered:
        cases += [Case(kind, SMALL_WRITE, run) for kind, (_, run) in BUFFERED_KINDS.items()]
    return cases


# -- timing ------------------------------------------------------------------


def calibrate(case: Case, target: float) -> None:
    """Set ``case.count`` so that one run takes about *target* seconds."""
    count = max(1, min(256, (256 * KiB) // case.size))
    while True:
        elapsed = case.run(case.size, count)
        if elapsed >= target / 4 or count >= 1 << 28:
            break
        # Grow fast while far off, without trusting a very short timing much.
        count *= max(2, min(16, int(target / 4 / max(elapsed, 1e-6))))
    case.count = max(1, round(count * target / elapsed))


def run_rounds(
    cases: list[Case], rounds: int, seed: int, out: TextIO | None = None
) -> list[list[str]]:
    """Run every case once per round in a shuffled order; return the orders."""
    rng = random.Random(seed)
    orders = []
    for case in cases:
        case.times = []
    for i in range(rounds):
        order = cases[:]
        rng.shuffle(order)
        orders.append([case.key for case in order])
        for case in order:
            gc.collect()
            elapsed = case.run(case.size, case.count)
            assert case.times is not None
            case.times.append(elapsed)
        if out is not None:
            out.write(f"  round {i + 1}/{rounds} done\n")
            out.flush()
    return orders


def summarize(case: Case) -> dict[str, Any]:
    """The JSON record of a measured case (medians over the rounds)."""
    assert case.times
    total = case.size * case.count
    median = statistics.median(case.times)
    return {
        "kind": case.kind,
        "label": LABELS[case.kind],
        "size": case.size,
        "count": case.count,
        "bytes": total,
        "times_s": case.times,
        "median_s": median,
        "mb_per_s": total / median / 1e6,
        "handoffs_per_s": case.count / median,
        "mb_per_s_min": total / max(case.times) / 1e6,
        "mb_per_s_max": total / min(case.times) / 1e6,
    }


# -- goals -------------------------------------------------------------------


def _rate(results: dict[str, Any], kind: str, size: int, field: str = "mb_per_s") -> float | None:
    for record in results["cases"]:
        if record["kind"] == kind and record["size"] == size:
            return float(record[field]) if field in record else None
    return None


def _fmt_size(size: int) -> str:
    if size >= MiB:
        return f"{size // MiB} MiB"
    if size >= KiB:
        return f"{size // KiB} KiB"
    return f"{size} B"


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each throughput goal with its measured ratio, from *results*."""
    found = []

    def ratio(name: str, kind: str, peer: str, size: int, target: float) -> None:
        a, b = _rate(results, kind, size), _rate(results, peer, size)
        value = None if a is None or b is None else a / b
        # The same ratio from each case's fastest round: far from the
        # median ratio means the machine was noisy during the run.
        a, b = (
            _rate(results, kind, size, "mb_per_s_max"),
            _rate(results, peer, size, "mb_per_s_max"),
        )
        best = None if a is None or b is None else a / b
        found.append(
            {
                "goal": name,
                "kind": kind,
                "peer": peer,
                "size": size,
                "target": target,
                "ratio": value,
                "ratio_of_best": best,
                "pass": None if value is None else value >= target,
            }
        )

    for size in (64, 4 * KiB):
        ratio(
            f"gevent readinto / Channel + copy, {_fmt_size(size)}",
            "gevent-readinto",
            "channel-copy",
            size,
            1.0,
        )
    ratio("gevent readinto / os.pipe, 64 KiB", "gevent-readinto", "os-pipe", 64 * KiB, 4.0)
    ratio("gevent readinto / memcpy, 1 MiB", "gevent-readinto", "memcpy", MiB, 0.8)
    for backend in ("gevent", "threading"):
        for size in SIZES:
            ratio(
                f"{backend} read(n) / readinto, {_fmt_size(size)}",
                f"{backend}-read",
                f"{backend}-readinto",
                size,
                0.9,
            )
    for size in SIZES:
        ratio(
            f"threading readinto / Queue(1) + copy, {_fmt_size(size)}",
            "threading-readinto",
            "queue-copy",
            size,
            1.0,
        )
    ratio(
        f"pipe({BUFSIZE}) / os.pipe, 64 B writes",
        "gevent-buffered",
        "os-pipe-buffered",
        SMALL_WRITE,
        2.0,
    )
    return found


# -- memory ------------------------------------------------------------------


def idle_pipe_bytes(backend: str, n: int) -> float:
    """Mean bytes that one idle pipe (both ends) keeps allocated."""
    import gpipe

    # The first pipe of a backend creates the backend (and imports gevent).
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
    for r, w in zip(readers, writers):
        r.close()
        w.close()
    return (after - before) / n


def _pairs_gpipe(pairs: int) -> float:
    import gevent

    import gpipe

    block = _block(PAIRS_CHUNK)
    writes = PAIRS_TOTAL // PAIRS_CHUNK

    def produce(writer: Any) -> None:
        write = writer.write
        for _ in range(writes):
            write(block)
        writer.close()

    def consume(reader: Any) -> int:
        buf = _buffer(PAIRS_CHUNK)
        readinto = reader.readinto
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


def _pairs_channel(pairs: int) -> float:
    import gevent
    from gevent.queue import Channel

    block = _block(PAIRS_CHUNK)
    writes = PAIRS_TOTAL // PAIRS_CHUNK
    start = _perf()
    consumers = []
    producers = []
    for _ in range(pairs):
        channel = Channel()
        producers.append(gevent.spawn(_channel_produce, channel, block, writes))
        consumers.append(gevent.spawn(_channel_consume, channel, PAIRS_CHUNK))
    gevent.joinall(producers + consumers, raise_error=True)
    elapsed = _perf() - start
    _check(sum(g.value for g in consumers), pairs * PAIRS_TOTAL, "Channel pairs")
    return elapsed


def memory(pipes: int, pairs: int, rounds: int) -> dict[str, Any]:
    """The memory goals: idle pipe size, and many concurrent pairs."""
    idle = {backend: idle_pipe_bytes(backend, pipes) for backend in ("gevent", "threading")}
    times: dict[str, list[float]] = {"gpipe": [], "channel-copy": []}
    runners = {"gpipe": _pairs_gpipe, "channel-copy": _pairs_channel}
    _pairs_gpipe(min(pairs, 100))  # warm-up
    _pairs_channel(min(pairs, 100))
    for i in range(rounds):
        # Alternate which goes first, so neither always runs on a warm heap.
        for name in sorted(runners, reverse=bool(i % 2)):
            gc.collect()
            times[name].append(runners[name](pairs))
    med = {name: statistics.median(values) for name, values in times.items()}
    ratio = med["channel-copy"] / med["gpipe"]
    worst_idle = max(idle.values())
    return {
        "idle_pipes": pipes,
        "idle_pipe_bytes": idle,
        "idle_goal_bytes": 400,
        "idle_pass": worst_idle <= 400,
        "pairs": pairs,
        "pair_bytes": PAIRS_TOTAL,
        "pair_chunk": PAIRS_CHUNK,
        "pairs_times_s": times,
        "pairs_median_s": med,
        # Above 1.0: gpipe finished faster than Channel + copy.
        "pairs_ratio": ratio,
        "pairs_pass": ratio >= 1.0,
    }


# -- output ------------------------------------------------------------------


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else "PASS" if passed else "MISS"


def format_table(results: dict[str, Any]) -> str:
    """The text report: throughput table, goal lines and memory lines."""
    lines = [
        f"{'case':28} {'size':>7} {'MB/s':>10} {'handoffs/s':>12} {'spread':>7}",
    ]
    for record in results["cases"]:
        rate = record["mb_per_s"]
        spread = (record["mb_per_s_max"] - record["mb_per_s_min"]) / rate
        lines.append(
            f"{record['label']:28} {_fmt_size(record['size']):>7} {rate:10.1f}"
            f" {record['handoffs_per_s']:12,.0f} {spread:6.0%}"
        )
    if not results["buffered"]["available"]:
        lines.append(f"buffered mode not available: {results['buffered']['reason']}")
    lines.append("")
    lines.append("goals (ratios of median throughputs in this run, and of each case's best round):")
    for goal in results["goals"]:
        value = goal["ratio"]
        shown = "   -  " if value is None else f"{value:6.2f}"
        best = goal.get("ratio_of_best")
        best_shown = "   -  " if best is None else f"{best:6.2f}"
        lines.append(
            f"  {_verdict(goal['pass']):4} {shown}x  (best rounds {best_shown}x)"
            f"  goal >= {goal['target']:.1f}x  {goal['goal']}"
        )
    mem = results.get("memory")
    if mem:
        lines.append("")
        lines.append("memory:")
        for backend, size in mem["idle_pipe_bytes"].items():
            lines.append(
                f"  {_verdict(size <= mem['idle_goal_bytes']):4} idle pipe, both ends,"
                f" {backend}: {size:.0f} bytes (goal <= {mem['idle_goal_bytes']},"
                f" tracemalloc over {mem['idle_pipes']:,} pipes)"
            )
        med = mem["pairs_median_s"]
        lines.append(
            f"  {_verdict(mem['pairs_pass']):4} {mem['pairs']:,} concurrent greenlet pairs,"
            f" {_fmt_size(mem['pair_bytes'])} each in {_fmt_size(mem['pair_chunk'])} chunks:"
            f" gpipe {med['gpipe']:.3f} s, Channel + copy {med['channel-copy']:.3f} s,"
            f" ratio {mem['pairs_ratio']:.2f}x (goal >= 1.0x)"
        )
    return "\n".join(lines)


def format_rst(results: dict[str, Any]) -> str:
    """The results as reST tables (throughput, goals, memory)."""
    meta = results["meta"]
    kinds = [kind for kind in LABELS if any(r["kind"] == kind for r in results["cases"])]

    def cell(kind: str, size: int) -> str:
        rate = _rate(results, kind, size)
        return "" if rate is None else f"{rate:,.0f}"

    out = [
        ".. This file is generated by ``python -m gpipe bench --rst``; do not edit.",
        "",
        f"Measured with ``{meta['command']}`` on {meta['machine']},",
        f"Python {meta['python']}, gevent {meta['gevent']}, gpipe {meta['gpipe']},",
        f"{meta['rounds']} interleaved rounds, medians.",
        "",
    ]
    if not results["buffered"]["available"]:
        out += [
            f"The buffered mode was not measured: {results['buffered']['reason']}.",
            "",
        ]
    out += [
        ".. list-table:: Throughput, MB/s (buffered cases: 64 B writes)",
        "   :header-rows: 1",
        "",
        "   * - Case",
    ]
    out += [f"     - {_fmt_size(size)}" for size in SIZES]
    for kind in kinds:
        out.append(f"   * - {LABELS[kind]}")
        out += [f"     - {cell(kind, size)}" for size in SIZES]
    out += [
        "",
        ".. list-table:: Goals: throughput ratios measured in the same run",
        "   :header-rows: 1",
        "",
        "   * - Goal",
        "     - Target",
        "     - Measured (medians)",
        "     - Result",
        "     - Best rounds",
    ]
    for goal in results["goals"]:
        value = goal["ratio"]
        best = goal.get("ratio_of_best")
        out += [
            f"   * - {goal['goal']}",
            f"     - >= {goal['target']:.1f}x",
            f"     - {'not run' if value is None else f'{value:.2f}x'}",
            f"     - {_verdict(goal['pass'])}",
            f"     - {'' if best is None else f'{best:.2f}x'}",
        ]
    mem = results.get("memory")
    if mem:
        out += [
            "",
            ".. list-table:: Memory goals",
            "   :header-rows: 1",
            "",
            "   * - Goal",
            "     - Target",
            "     - Measured",
            "     - Result",
        ]
        for backend, size in mem["idle_pipe_bytes"].items():
            out += [
                f"   * - idle pipe, both ends, {backend} backend",
                f"     - <= {mem['idle_goal_bytes']} bytes",
                f"     - {size:.0f} bytes",
                f"     - {_verdict(size <= mem['idle_goal_bytes'])}",
            ]
        out += [
            f"   * - {mem['pairs']:,} greenlet pairs, time of Channel + copy / gpipe",
            "     - >= 1.0x",
            f"     - {mem['pairs_ratio']:.2f}x",
            f"     - {_verdict(mem['pairs_pass'])}",
        ]
    return "\n".join(out) + "\n"


def plot_results(results: dict[str, Any], path: str) -> None:
    """Draw throughput against chunk size, and the goal ratios, to *path*.

    :raises ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    for kind in KINDS:
        records = [r for r in results["cases"] if r["kind"] == kind]
        if not records:
            continue
        style = "-" if kind.startswith(("gevent", "threading")) else "--"
        left.plot(
            [r["size"] for r in records],
            [r["mb_per_s"] for r in records],
            style,
            marker="o",
            label=LABELS[kind],
        )
    for kind, marker in (("gevent-buffered", "*"), ("os-pipe-buffered", "x")):
        rate = _rate(results, kind, SMALL_WRITE)
        if rate is not None:
            left.plot(
                [SMALL_WRITE],
                [rate],
                marker,
                markersize=11,
                label=f"{LABELS[kind]}, 64 B writes",
            )
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xticks(list(SIZES), [_fmt_size(s) for s in SIZES])
    left.set_xlabel("chunk size (bytes per write and read)")
    left.set_ylabel("MB/s (median)")
    left.set_title("Throughput")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="small")

    shown = [g for g in results["goals"] if g["ratio"] is not None]
    mem = results.get("memory")
    if mem:
        # Memory goals as ratios too: goal bytes / measured bytes, and the
        # time of Channel + copy / the time of gpipe.
        for backend, size in mem["idle_pipe_bytes"].items():
            limit = mem["idle_goal_bytes"]
            shown.append(
                {
                    "goal": f"idle pipe {size:.0f} B <= {limit} B, {backend}",
                    "ratio": limit / size,
                    "target": 1.0,
                    "pass": size <= limit,
                }
            )
        shown.append(
            {
                "goal": f"{mem['pairs']:,} pairs: Channel + copy time / gpipe time",
                "ratio": mem["pairs_ratio"],
                "target": 1.0,
                "pass": mem["pairs_pass"],
            }
        )
    names = [g["goal"] for g in shown]
    scores = [g["ratio"] / g["target"] for g in shown]
    colors = ["tab:green" if g["pass"] else "tab:red" for g in shown]
    right.barh(range(len(shown)), scores, color=colors)
    for y, (goal, score) in enumerate(zip(shown, scores)):
        right.annotate(
            f" {goal['ratio']:.2f}x / {goal['target']:g}x",
            (score, y),
            va="center",
            fontsize="x-small",
        )
    right.axvline(1.0, color="black", linewidth=1)
    right.set_yticks(range(len(shown)), names, fontsize="x-small")
    right.invert_yaxis()
    right.set_xscale("log", base=2)
    ticks = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0]
    right.set_xticks(ticks, [f"{t:g}" for t in ticks])
    right.minorticks_off()
    right.set_xlim(min([0.1, *scores]) * 0.8, max([4.0, *scores]) * 2.5)
    right.set_xlabel("measured ratio / goal (>= 1 meets the goal)")
    right.set_title("Goals")
    meta = results["meta"]
    fig.suptitle(
        f"gpipe {meta['gpipe']}, Python {meta['python']}, gevent {meta['gevent']},"
        f" {meta['rounds']} rounds, medians"
    )
    fig.savefig(path, dpi=100)


# -- the command -------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        metavar="N",
        help="interleaved rounds (9; --quick: 2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds: tiny byte totals, 2 rounds",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time of one case run, by calibration (0.2; --quick: 0.003)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the round orders")
    parser.add_argument(
        "--json",
        action="append",
        default=[],
        metavar="PATH",
        help="write results as JSON",
    )
    parser.add_argument(
        "--plot",
        action="append",
        default=[],
        metavar="PATH",
        help="draw a PNG (needs matplotlib)",
    )
    parser.add_argument("--rst", metavar="PATH", help="write the results as reST tables")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory goals")


def _meta(args: argparse.Namespace, rounds: int, target: float, seed: int) -> dict[str, Any]:
    import gevent

    import gpipe

    argv = ["python -m gpipe bench"]
    if args.quick:
        argv.append("--quick")
    if args.rounds is not None:
        argv.append(f"--rounds {rounds}")
    if args.target is not None:
        argv.append(f"--target {target}")
    return {
        "command": " ".join(argv),
        "gpipe": gpipe.__version__,
        "gevent": gevent.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rounds": rounds,
        "target_s": target,
        "seed": seed,
        "quick": bool(args.quick),
        # Development mode's debug allocator hooks slow every case down.
        "dev_mode": sys.flags.dev_mode,
    }


def run(args: argparse.Namespace) -> int:
    import gevent.monkey

    if gevent.monkey.is_module_patched("threading"):
        print(
            "bench: threading is monkey-patched; run it in a fresh process",
            file=sys.stderr,
        )
        return 2
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 9)
    target = args.target if args.target is not None else (0.003 if args.quick else 0.2)
    if rounds < 1 or not target > 0:
        print("bench: --rounds and --target must be positive", file=sys.stderr)
        return 2
    if sys.flags.dev_mode:
        print("bench: Python development mode is on; timings are not representative")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    out = sys.stdout
    buffered = has_bufsize()
    cases = make_cases(buffered)
    out.write(f"calibrating {len(cases)} cases to about {target} s each\n")
    out.flush()
    for case in cases:
        calibrate(case, target)
    if not args.quick:
        out.write("warm-up round\n")
        run_rounds(cases, 1, seed)
    out.write(f"{rounds} interleaved rounds, shuffled (seed {seed})\n")
    out.flush()
    orders = run_rounds(cases, rounds, seed + 1, out)
    results: dict[str, Any] = {
        "meta": _meta(args, rounds, target, seed),
        "cases": [summarize(case) for case in cases],
        "orders": orders,
        "buffered": {
            "available": buffered,
            "reason": "measured" if buffered else "gpipe.pipe() takes no bufsize argument",
        },
    }
    results["goals"] = goals(results)
    if not args.no_memory:
        out.write("memory goals\n")
        out.flush()
        if args.quick:
            results["memory"] = memory(pipes=1000, pairs=100, rounds=1)
        else:
            results["memory"] = memory(pipes=100_000, pairs=10_000, rounds=5)
    out.write("\n" + format_table(results) + "\n")
    for path in [*args.json, *args.plot, *([args.rst] if args.rst else [])]:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    for path in args.json:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        out.write(f"wrote {path}\n")
    if args.rst:
        with open(args.rst, "w", encoding="utf-8") as f:
            f.write(format_rst(results))
        out.write(f"wrote {args.rst}\n")
    for path in args.plot:
        try:
            plot_results(results, path)
        except ImportError:
            out.write(
                "plot skipped: matplotlib is not installed"
                f" (pip install 'gevent-gpipe[plot]'); not written: {path}\n"
            )
        else:
            out.write(f"wrote {path}\n")
    return 0
