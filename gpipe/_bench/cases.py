"""What is timed: one function per kind of transfer.

Every runner moves ``count`` chunks of ``size`` bytes from a producer to
a consumer and returns the seconds the transfer took, from before the
two tasks start until both have finished; it raises if the consumer did
not get every byte (or every line).

The kinds, in the order of the report:

* gpipe on the gevent backend between two greenlets: the headline,
  ``readinto1`` into a preallocated buffer (the bytes of one write, as
  soon as it is there: Go's Read), and two more ways to read,
  ``readinto`` into a buffer the size of a write and ``read(n)`` with
  n the size of a write (each waits for that many bytes, which one
  write brings);
* the floor of a greenlet handoff on gevent's own primitives: two
  greenlets ping-ponging on two :class:`gevent.lock.Semaphore` objects,
  copying the chunk on each turn (what a pipe built on Semaphores
  cannot beat);
* ``gevent.queue.Channel`` passing the chunk, which the consumer copies
  into a preallocated buffer (memoryview slice assignment);
* :func:`os.pipe` with non-blocking fds, ``gevent.os.nb_write`` and
  ``gevent.os.nb_read`` between two greenlets;
* memoryview slice assignment in a loop: the copy limit;
* gpipe on the threading backend between two OS threads, read the same
  three ways, and its peer there, a :class:`queue.Queue` of size 1 with
  a copying consumer;
* gpipe's buffered mode, ``pipe(65536)``, with 64-byte writes read by
  ``readinto1`` into a 64 KiB buffer (``readinto`` would wait for the
  buffer to fill), against :func:`os.pipe` with the same writes;
* lines: 80-byte lines written in 64 KiB writes, read by
  ``for line in reader`` and by ``for line in io.BufferedReader(reader)``.
"""

from __future__ import annotations

import ctypes
import inspect
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KiB = 1 << 10
MiB = 1 << 20
SIZES = (64, 4 * KiB, 64 * KiB, MiB)
BUFSIZE = 64 * KiB  # the buffered pipe's bufsize
SMALL_WRITE = 64  # the write size of the buffered cases
LINE = 80  # bytes per line of the line cases, newline included
LINE_WRITE = 64 * KiB  # the write size of the line cases

_perf = time.perf_counter
_PAGE = 4096

#: How gpipe's consumers read: ``readinto1(buf)`` (the headline),
#: ``readinto(buf)`` or ``read(n)``.
MODES = ("readinto1", "readinto", "read")

# A runner moves ``count`` chunks of ``size`` bytes; the seconds it took.
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


def block(size: int) -> memoryview:
    """What a producer writes: *size* read-only bytes, page-aligned."""
    view = _buffer(size)
    view[:] = (bytes(range(256)) * (size // 256 + 1))[:size]
    return view.toreadonly()


def _check(got: int, expected: int, what: str) -> None:
    if got != expected:
        raise RuntimeError(f"{what}: consumer got {got}, expected {expected}")


# -- between greenlets -------------------------------------------------------


def gpipe_greenlets(size: int, count: int, *, mode: str, bufsize: int = 0) -> float:
    """gpipe, gevent backend; the consumer reads as *mode* says (:data:`MODES`)."""
    import gevent

    import gpipe

    if bufsize:
        reader, writer = gpipe.pipe(bufsize, backend="gevent")
        read_size = bufsize
    else:
        reader, writer = gpipe.pipe(backend="gevent")
        read_size = size
    data = block(size)

    def produce() -> None:
        write = writer.write
        for _ in range(count):
            write(data)
        writer.close()

    start = _perf()
    tasks = [gevent.spawn(produce), gevent.spawn(consumer(reader, mode, read_size))]
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    reader.close()
    _check(tasks[1].value, size * count, "gpipe gevent")
    return elapsed


def consumer(reader: Any, mode: str, read_size: int) -> Callable[[], int]:
    """A loop that reads *reader* to its end as *mode* says; it returns the bytes.

    ``readinto1`` and ``readinto`` fill one preallocated *read_size*-byte
    buffer again and again; ``read`` asks for *read_size* bytes.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")

    def consume_into() -> int:
        buf = _buffer(read_size)
        readinto = reader.readinto1 if mode == "readinto1" else reader.readinto
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
            chunk = read(read_size)
            if not chunk:
                return got
            got += len(chunk)

    return consume_read if mode == "read" else consume_into


def floor_side(mine: Any, other: Any, data: memoryview, turns: int) -> int:
    """One side of the Semaphore floor: *turns* turns of waiting for
    *mine*, copying *data* into a buffer of its own, releasing *other*."""
    view = _buffer(len(data))
    got = 0
    for _ in range(turns):
        mine.acquire()
        view[:] = data
        got += len(data)
        other.release()
    return got


def floor_sides(data: memoryview, turns: int) -> list[Any]:
    """The greenlets of the floor's two sides, *turns* turns in all."""
    import gevent
    from gevent.lock import Semaphore

    a, b = Semaphore(1), Semaphore(0)  # a has the first turn
    return [
        gevent.spawn(floor_side, a, b, data, (turns + 1) // 2),
        gevent.spawn(floor_side, b, a, data, turns // 2),
    ]


def semaphore_floor(size: int, count: int) -> float:
    """Two greenlets take turns on two Semaphores, copying a chunk each turn.

    A turn is one handoff: wait for your semaphore, copy the chunk into
    your buffer, release the other side's semaphore. It is the least a
    pipe built on gevent's Semaphore can do per handoff -- one wake-up
    through the hub and one copy -- when the side that arrives second
    does the copy, so that only one side blocks.
    """
    import gevent

    data = block(size)
    start = _perf()
    tasks = floor_sides(data, count)
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    _check(tasks[0].value + tasks[1].value, size * count, "Semaphore floor")
    return elapsed


def channel_produce(channel: Any, data: memoryview, count: int) -> None:
    """Put *data* on a gevent Channel *count* times, then None (the end)."""
    put = channel.put
    for _ in range(count):
        put(data)
    put(None)


def channel_consume(channel: Any, size: int) -> int:
    """Copy what arrives on *channel* into one buffer until None; the total."""
    view = _buffer(size)
    get = channel.get
    got = 0
    while True:
        chunk = get()
        if chunk is None:
            return got
        n = len(chunk)
        view[:n] = chunk
        got += n


def channel_copy(size: int, count: int) -> float:
    """gevent's Channel between two greenlets; the consumer copies."""
    import gevent
    from gevent.queue import Channel

    channel: Any = Channel()
    data = block(size)
    start = _perf()
    tasks = [
        gevent.spawn(channel_produce, channel, data, count),
        gevent.spawn(channel_consume, channel, size),
    ]
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    _check(tasks[1].value, size * count, "Channel + copy")
    return elapsed


def os_pipe(size: int, count: int, *, read_size: int = 0) -> float:
    """An OS pipe, non-blocking, with gevent's ``nb_write``/``nb_read``."""
    import gevent
    from gevent.os import nb_read, nb_write

    read_size = read_size or size
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    data = block(size)

    def produce() -> None:
        try:
            for _ in range(count):
                # The first try passes the whole block: no slice to make.
                off = nb_write(wfd, data)
                while off < size:
                    off += nb_write(wfd, data[off:])
        finally:
            os.close(wfd)

    def consume() -> int:
        got = 0
        while True:
            chunk = nb_read(rfd, read_size)
            if not chunk:
                return got
            got += len(chunk)

    try:
        start = _perf()
        tasks = [gevent.spawn(produce), gevent.spawn(consume)]
        gevent.joinall(tasks, raise_error=True)
        elapsed = _perf() - start
    finally:
        os.close(rfd)
    _check(tasks[1].value, size * count, "os.pipe")
    return elapsed


def memcpy(size: int, count: int) -> float:
    """Memoryview slice assignment in a loop: the copy with no handoff."""
    view = _buffer(size)
    data = block(size)
    start = _perf()
    for _ in range(count):
        view[:] = data
    return _perf() - start


# -- between threads ---------------------------------------------------------


def gpipe_threads(size: int, count: int, *, mode: str) -> float:
    """gpipe, threading backend, the producer in a second OS thread.

    The consumer reads in the calling thread, as *mode* says (:data:`MODES`).
    """
    import threading

    import gpipe

    reader, writer = gpipe.pipe(backend="threading")
    data = block(size)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            write = writer.write
            for _ in range(count):
                write(data)
            writer.close()
        except BaseException as exc:  # reported by the consumer's thread
            errors.append(exc)
            writer.close_with_error(exc)
            raise

    consume = consumer(reader, mode, size)
    start = _perf()
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    got = consume()
    thread.join()
    elapsed = _perf() - start
    reader.close()
    if errors:
        raise errors[0]
    _check(got, size * count, "gpipe threading")
    return elapsed


def queue_copy(size: int, count: int) -> float:
    """:class:`queue.Queue` of size 1 between two threads; the consumer copies."""
    import queue
    import threading

    q: queue.Queue[memoryview | None] = queue.Queue(1)
    data = block(size)

    def produce() -> None:
        put = q.put
        for _ in range(count):
            put(data)
        put(None)

    view = _buffer(size)
    get = q.get
    got = 0
    start = _perf()
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    while True:
        chunk = get()
        if chunk is None:
            break
        n = len(chunk)
        view[:n] = chunk
        got += n
    thread.join()
    elapsed = _perf() - start
    _check(got, size * count, "Queue(1) + copy")
    return elapsed


# -- lines -------------------------------------------------------------------


def line_blocks(size: int = LINE_WRITE) -> list[memoryview]:
    """Consecutive *size*-byte writes of a stream of 80-byte lines.

    The stream repeats after as many writes as it takes for a write to
    end on a line's end, so every line is 80 bytes, including the lines
    that span two writes.
    """
    period = size
    while period % LINE:
        period += size
    line = bytes(range(48, 48 + LINE - 1)) + b"\n"
    stream = line * (period // LINE)
    blocks = []
    for off in range(0, period, size):
        view = _buffer(size)
        view[:] = stream[off : off + size]
        blocks.append(view.toreadonly())
    return blocks


def lines(size: int, count: int, *, buffered: bool) -> float:
    """Greenlets; the consumer iterates over the reader's lines.

    ``buffered``: through :class:`io.BufferedReader` (its default buffer
    size); else over the reader itself.
    """
    import gevent

    import gpipe

    reader, writer = gpipe.pipe(backend="gevent")
    blocks = line_blocks(size)

    def produce() -> None:
        write = writer.write
        for i in range(count):
            write(blocks[i % len(blocks)])
        writer.close()

    def consume() -> tuple[int, int]:
        source: Any = io.BufferedReader(reader) if buffered else reader
        got = n = 0
        for line in source:
            got += len(line)
            n += 1
        source.close()
        return got, n

    start = _perf()
    tasks = [gevent.spawn(produce), gevent.spawn(consume)]
    gevent.joinall(tasks, raise_error=True)
    elapsed = _perf() - start
    reader.close()
    got, n = tasks[1].value
    what = "lines through BufferedReader" if buffered else "lines"
    _check(got, size * count, f"{what} (bytes)")
    _check(n, -(-size * count // LINE), f"{what} (lines)")
    return elapsed


# -- the registry ------------------------------------------------------------


@dataclass
class Kind:
    """A kind of transfer: how it is labelled, run and compared."""

    label: str
    run: Runner
    #: The gpipe kind the report compares this one with (None: none).
    reference: str | None
    #: What the report counts: "MB/s" or "lines/s".
    unit: str = "MB/s"
    #: Where the report puts it: "greenlets", "threads", "buffered", "lines".
    group: str = "greenlets"


KINDS: dict[str, Kind] = {
    "gevent-readinto1": Kind(
        "gpipe gevent readinto1",
        lambda s, c: gpipe_greenlets(s, c, mode="readinto1"),
        None,
    ),
    "gevent-readinto": Kind(
        "gpipe gevent readinto",
        lambda s, c: gpipe_greenlets(s, c, mode="readinto"),
        "gevent-readinto1",
    ),
    "gevent-read": Kind(
        "gpipe gevent read(n)",
        lambda s, c: gpipe_greenlets(s, c, mode="read"),
        "gevent-readinto1",
    ),
    "semaphore-floor": Kind("floor: 2 Semaphores + copy", semaphore_floor, "gevent-readinto1"),
    "channel-copy": Kind("gevent Channel + copy", channel_copy, "gevent-readinto1"),
    "os-pipe": Kind("os.pipe nb_write/nb_read", os_pipe, "gevent-readinto1"),
    "memcpy": Kind("memoryview copy (limit)", memcpy, "gevent-readinto1"),
    "threading-readinto1": Kind(
        "gpipe threading readinto1",
        lambda s, c: gpipe_threads(s, c, mode="readinto1"),
        None,
        group="threads",
    ),
    "threading-readinto": Kind(
        "gpipe threading readinto",
        lambda s, c: gpipe_threads(s, c, mode="readinto"),
        "threading-readinto1",
        group="threads",
    ),
    "threading-read": Kind(
        "gpipe threading read(n)",
        lambda s, c: gpipe_threads(s, c, mode="read"),
        "threading-readinto1",
        group="threads",
    ),
    "queue-copy": Kind(
        "threads Queue(1) + copy", queue_copy, "threading-readinto1", group="threads"
    ),
}
# 64-byte writes, reads of up to BUFSIZE bytes.
BUFFERED_KINDS: dict[str, Kind] = {
    "gevent-buffered": Kind(
        f"gpipe pipe({BUFSIZE}) readinto1",
        lambda s, c: gpipe_greenlets(s, c, mode="readinto1", bufsize=BUFSIZE),
        None,
        group="buffered",
    ),
    "os-pipe-buffered": Kind(
        f"os.pipe, nb_read({BUFSIZE})",
        lambda s, c: os_pipe(s, c, read_size=BUFSIZE),
        "gevent-buffered",
        group="buffered",
    ),
}
# 80-byte lines in 64 KiB writes.
LINE_KINDS: dict[str, Kind] = {
    "lines-raw": Kind(
        "for line in reader",
        lambda s, c: lines(s, c, buffered=False),
        None,
        unit="lines/s",
        group="lines",
    ),
    "lines-buffered": Kind(
        "for line in io.BufferedReader(reader)",
        lambda s, c: lines(s, c, buffered=True),
        "lines-raw",
        unit="lines/s",
        group="lines",
    ),
}
ALL_KINDS: dict[str, Kind] = {**KINDS, **BUFFERED_KINDS, **LINE_KINDS}


def has_bufsize() -> bool:
    """Return True if :func:`gpipe.pipe` takes a ``bufsize`` argument."""
    import gpipe

    return "bufsize" in inspect.signature(gpipe.pipe).parameters


@dataclass
class Case:
    """One measured configuration: a kind of transfer at one chunk size."""

    kind: str
    size: int  # bytes per write (and per read, except the buffered cases)
    count: int = 0  # chunks per run, set by calibration
    times: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.size}"

    def run(self, count: int) -> float:
        return ALL_KINDS[self.kind].run(self.size, count)


def make_cases(buffered: bool) -> list[Case]:
    """Every case to run; the buffered ones only if *buffered*."""
    cases = [Case(kind, size) for kind in KINDS for size in SIZES]
    if buffered:
        cases += [Case(kind, SMALL_WRITE) for kind in BUFFERED_KINDS]
    cases += [Case(kind, LINE_WRITE) for kind in LINE_KINDS]
    return cases
