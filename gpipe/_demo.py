"""The demo: stream bytes through a pipe, greenlets first, then threads."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, TextIO

MiB = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size", type=int, default=256, metavar="MIB", help="MiB to stream each time (256)"
    )
    parser.add_argument(
        "--chunk", type=int, default=64, metavar="KIB", help="KiB per write and read (64)"
    )


def _stream(
    backend: str,
    total: int,
    chunk: int,
    spawn: Callable[[Callable[[], Any]], Callable[[], Any]],
    out: TextIO,
) -> float:
    """Write *total* bytes in *chunk*s from a task; read them here. MB/s."""
    import gpipe

    reader, writer = gpipe.pipe(backend=backend)
    block = bytes(range(256)) * (chunk // 256)

    def produce() -> None:
        with writer:
            for _ in range(total // chunk):
                writer.write(block)

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
            if now - last >= 0.1:
                last = now
                rate = got / (now - start) / 1e6
                out.write(
                    f"\r  {backend:9} {got / MiB:7.1f} / {total / MiB:.0f} MiB  {rate:8.1f} MB/s"
                )
                out.flush()
    elapsed = time.perf_counter() - start
    join()
    if got != total:
        raise RuntimeError(f"read {got} bytes, expected {total}")
    rate = total / elapsed / 1e6
    done = f"{total / MiB:7.1f} / {total / MiB:.0f} MiB"
    out.write(f"\r  {backend:9} {done}  {rate:8.1f} MB/s  done in {elapsed:.2f} s\n")
    return rate


def run(args: argparse.Namespace) -> int:
    import threading

    import gevent

    if args.size <= 0 or args.chunk <= 0:
        print("--size and --chunk must be positive", file=sys.stderr)
        return 2
    total = args.size * MiB
    chunk = args.chunk * 1024
    total -= total % chunk
    out = sys.stdout
    out.write(f"gpipe: {total // MiB} MiB in {chunk // 1024} KiB writes, read with readinto()\n")

    def greenlet(fn: Callable[[], Any]) -> Callable[[], Any]:
        spawned: Any = gevent.spawn(fn)
        return spawned.get  # type: ignore[no-any-return]

    def thread(fn: Callable[[], Any]) -> Callable[[], Any]:
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        return t.join

    out.write("two greenlets, gevent backend:\n")
    _stream("gevent", total, chunk, greenlet, out)
    out.write("two OS threads, threading backend:\n")
    _stream("threading", total, chunk, thread, out)
    return 0
