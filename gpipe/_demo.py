"""``python -m gpipe``: stream bytes through a pipe, greenlets first, then threads."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, Optional, TextIO

KiB = 1 << 10
MiB = 1 << 20
UPDATE = 0.1  # seconds between two progress updates on a terminal


def _number(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            shown = f"{low:,} and {high:,}" if kind is int else f"{low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"must be between {shown}, not {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the demo's options on *parser*."""
    parser.description = (
        "Stream bytes through a pipe between two greenlets (gevent backend), then"
        " between two OS threads (threading backend), showing the progress and"
        " the throughput. By default each run lasts about a second."
    )
    parser.add_argument(
        "--size",
        type=_number(int, 1, 1 << 20),
        default=None,
        metavar="MIB",
        help="stream this many MiB each time instead of streaming for --seconds",
    )
    parser.add_argument(
        "--seconds",
        type=_number(float, 0.01, 3600),
        default=1.0,
        metavar="S",
        help="how long each run streams when --size is not given (1)",
    )
    parser.add_argument(
        "--chunk",
        type=_number(int, 1, 1 << 20),
        default=64,
        metavar="KIB",
        help="KiB per write and per read (64)",
    )


class Progress:
    """Where the demo reports: live updates on a terminal, results only elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()

    def update(self, backend: str, got: int, total: Optional[int], elapsed: float) -> None:
        if self.live:
            self.out.write(f"\r  {_line(backend, got, total, elapsed)}")
            self.out.flush()

    def done(self, backend: str, got: int, elapsed: float) -> None:
        line = f"{_line(backend, got, None, elapsed)}  done in {elapsed:.2f} s"
        self.out.write(f"\r  {line}\n" if self.live else f"  {line}\n")
        self.out.flush()


def _line(backend: str, got: int, total: Optional[int], elapsed: float) -> str:
    rate = got / elapsed / 1e6 if elapsed > 0 else 0.0
    of = f" / {total / MiB:.0f}" if total is not None else ""
    return f"{backend:9} {got / MiB:9.1f}{of} MiB  {rate:8.1f} MB/s"


def _stream(
    backend: str,
    total: Optional[int],
    seconds: float,
    chunk: int,
    spawn: Callable[[Callable[[], Any]], Callable[[], Any]],
    progress: Progress,
) -> int:
    """Write *total* bytes (or for *seconds*) from a task, read them here."""
    import gpipe

    reader, writer = gpipe.pipe(backend=backend)
    block = (bytes(range(256)) * (chunk // 256 + 1))[:chunk]
    sent = [0]

    def produce() -> None:
        with writer:
            write = writer.write
            if total is not None:
                for _ in range(total // chunk):
                    write(block)
                sent[0] = total
                return
            deadline = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < deadline:
                write(block)
                n += 1
            sent[0] = n * chunk

    join = spawn(produce)
    buf = bytearray(chunk)
    got = 0
    start = last = time.perf_counter()
    with reader:
        while True:
            n = reader.readinto(buf)
            if not n:
                break
            got += n
            now = time.perf_counter()
            if now - last >= UPDATE:
                last = now
                progress.update(backend, got, total, now - start)
    elapsed = time.perf_counter() - start
    join()
    if got != sent[0]:
        raise RuntimeError(f"read {got} bytes, expected {sent[0]}")
    progress.done(backend, got, elapsed)
    return got


def run(args: argparse.Namespace) -> int:
    """Run the demo on both backends."""
    import threading

    import gevent

    chunk = args.chunk * KiB
    total = None if args.size is None else args.size * MiB
    if total is not None and total < chunk:
        args.fail(f"--size ({args.size} MiB) is smaller than one chunk (--chunk {args.chunk} KiB)")
    if total is not None:
        total -= total % chunk
        what = f"{total / MiB:g} MiB"
    else:
        what = f"for {args.seconds:g} s"
    out = sys.stdout
    out.write(f"gpipe demo: streaming {what} in {args.chunk} KiB writes, read with readinto()\n")
    progress = Progress(out)

    def greenlet(fn: Callable[[], Any]) -> Callable[[], Any]:
        spawned: Any = gevent.spawn(fn)
        return spawned.get  # type: ignore[no-any-return]

    def thread(fn: Callable[[], Any]) -> Callable[[], Any]:
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        return t.join

    out.write("two greenlets, gevent backend:\n")
    _stream("gevent", total, args.seconds, chunk, greenlet, progress)
    out.write("two OS threads, threading backend:\n")
    _stream("threading", total, args.seconds, chunk, thread, progress)
    return 0
