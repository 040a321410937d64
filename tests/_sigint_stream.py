"""Stream bytes through a pipe while SIGINT arrives every few milliseconds.

Run by ``tests/test_sigint.py`` in a process of its own, so that a hang
cannot wedge the test run::

    python tests/_sigint_stream.py BACKEND MAIN SECONDS SEED

(with the gpipe under test importable: the test puts it on ``PYTHONPATH``).

*BACKEND* is ``gevent`` (the other side in a greenlet) or ``threading``
(the other side in an OS thread); *MAIN* names the side that runs in
the main thread (``writer`` or ``reader``), the only thread Python runs
signal handlers in. A helper thread sends SIGINT to the main thread
every 0.5-5 ms (at random) while the writer streams chunks of random
sizes for *SECONDS*. Both sides catch :exc:`KeyboardInterrupt` and carry
on, as the pipe's contract allows:

* an interrupted read consumed nothing: it is simply called again;
* an interrupted write withdrew what no reader took, and its
  ``consumed`` tells how much readers took: the rest is written again.

At the end the bytes read must be exactly the concatenation of what the
writes reported delivered: nothing lost, nothing duplicated. Every call
has a timeout, so that a lost wakeup or a wedged lock is an error, not
a hang; ``faulthandler`` dumps every stack if the process still hangs.

The SIGINT handler raises :exc:`KeyboardInterrupt` where a pipe call
can see it: in a gpipe frame, or in the gevent hub (which throws it into
the main greenlet, blocked in a pipe call). Where the main thread runs
this harness's own code it drops the signal: an interrupt landing
between a write's return and the line that records its count would make
the harness lose track, which says nothing about the pipe. The last line
of the output is a JSON summary.
"""

from __future__ import annotations

import collections
import faulthandler
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
from typing import Any

HERE = os.path.abspath(__file__)

import gpipe  # noqa: E402  # the test's own (tests/test_sigint.py's child_env)

GPIPE_DIR = os.path.dirname(os.path.abspath(gpipe.__file__)) + os.sep
CALL_TIMEOUT = 10.0  # the ends' settimeout: a backstop, far above any handoff
MAX_SIGNALS = 3000

stats: collections.Counter[str] = collections.Counter()


def on_sigint(signum: int, frame: Any) -> None:
    stats["signals handled"] += 1
    harness = False
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(GPIPE_DIR):
            stats["raised in a pipe call"] += 1
            raise KeyboardInterrupt
        harness = harness or name == HERE
        frame = frame.f_back
    if harness:
        stats["dropped in the harness"] += 1
        return
    stats["raised in the hub"] += 1
    raise KeyboardInterrupt


def sender(main: int, stop: threading.Event, rng: random.Random) -> None:
    while stats["signals sent"] < MAX_SIGNALS and not stop.wait(rng.uniform(0.0005, 0.005)):
        signal.pthread_kill(main, signal.SIGINT)
        stats["signals sent"] += 1


def chunks(rng: random.Random, seconds: float) -> Any:
    """Chunks of random sizes (mostly small, some spanning many reads) of
    a random stream, for *seconds*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        size = rng.choice((rng.randint(1, 64), rng.randint(1, 4096), rng.randint(4096, 20_000)))
        yield rng.randbytes(size)


def write_all(w: Any, rng: random.Random, seconds: float, sent: list[bytes]) -> None:
    for chunk in chunks(rng, seconds):
        rest = memoryview(chunk)
        while rest:
            try:
                n = w.write(rest)
            except KeyboardInterrupt as exc:
                n = getattr(exc, "consumed", None)
                stats["writes interrupted"] += 1
                if n is None:
                    stats["interrupted writes without consumed"] += 1
                    n = 0
                elif 0 < n < len(rest):
                    stats["interrupted writes partly read"] += 1
            else:
                if n != len(rest):
                    raise AssertionError(f"write({len(rest)} bytes) returned {n}")
            sent.append(bytes(rest[:n]))
            rest = rest[n:]
    while not w.closed:
        try:
            w.close()
        except KeyboardInterrupt:
            stats["closes interrupted"] += 1


def read_all(r: Any, rng: random.Random, got: bytearray) -> None:
    readinto1 = getattr(r, "readinto1", r.readinto)
    read1 = getattr(r, "read1", r.read)
    buf = bytearray(65536)
    while True:
        size = rng.choice((rng.randint(1, 64), rng.randint(1, 65536)))
        try:
            if rng.random() < 0.5:
                data = read1(size)
            else:
                with memoryview(buf)[:size] as view:
                    data = buf[: readinto1(view)]
        except KeyboardInterrupt:
            stats["reads interrupted"] += 1
            continue  # an interrupted read consumed nothing
        if not data:
            return
        got += data


def first_difference(a: bytes | bytearray, b: bytes) -> int:
    """The offset of the first byte where *a* and *b* differ."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # a bisection: the prefixes a[:lo] and b[:lo] are equal
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def describe(exc: BaseException) -> str:
    """The exception and where it was raised, in a line."""
    # The innermost frames of gpipe and of this harness (not gevent's).
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f for f in frames if "gevent" not in f.filename][-3:]
    return f"{exc!r} at " + " < ".join(
        f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(where)
    )


def calmly(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, called again if the barrage interrupts it: for the
    harness's own steps (closing an end, stopping the barrage), which
    must happen whatever lands in them."""
    while True:
        try:
            return fn(*args)
        except KeyboardInterrupt:
            stats["harness steps retried"] += 1


def main() -> int:
    backend, main_side, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    faulthandler.dump_traceback_later(max(30.0, 10 * seconds), exit=True)
    rng = random.Random(seed)
    r, w = gpipe.pipe(backend=backend)
    r.settimeout(CALL_TIMEOUT)
    w.settimeout(CALL_TIMEOUT)
    sent: list[bytes] = []
    got = bytearray()
    errors: list[str] = []
    writer_rng, reader_rng = random.Random(rng.random()), random.Random(rng.random())

    def writer() -> None:
        try:
            write_all(w, writer_rng, seconds, sent)
        except BaseException as exc:
            errors.append(f"writer: {describe(exc)}")
            calmly(w.close_with_error, RuntimeError("the writer failed"))

    def reader() -> None:
        try:
            read_all(r, reader_rng, got)
        except BaseException as exc:
            errors.append(f"reader: {describe(exc)}")
        calmly(r.close)

    mine, other = (writer, reader) if main_side == "writer" else (reader, writer)
    stop = threading.Event()
    signal.signal(signal.SIGINT, on_sigint)
    if backend == "gevent":
        import gevent

        gevent.get_hub().exception_stream = None  # no report of each interrupt
        task = gevent.spawn(other)
    else:
        task = threading.Thread(target=other, daemon=True)
        task.start()
    alarm = threading.Thread(
        target=sender, args=(threading.main_thread().ident, stop, random.Random(seed)), daemon=True
    )
    started = time.monotonic()
    alarm.start()
    mine()
    calmly(stop.set)
    calmly(alarm.join)
    while True:
        try:
            task.join(4 * seconds + CALL_TIMEOUT)
            break
        except KeyboardInterrupt:  # thrown by the hub into the join
            stats["joins interrupted"] += 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if (task.dead if backend == "gevent" else not task.is_alive()) is False:
        errors.append("the other side never finished")
    expected = b"".join(sent)
    if bytes(got) != expected:
        errors.append(
            f"the stream differs from what the writes reported from byte "
            f"{first_difference(got, expected)}: {len(got)} bytes read, "
            f"{len(expected)} reported written"
        )
    summary = dict(
        stats,
        backend=backend,
        main=main_side,
        seconds=round(time.monotonic() - started, 2),
        bytes=len(expected),
        errors=errors,
    )
    print(json.dumps(summary, sort_keys=True))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
