"""Soak: many concurrent pipes with mixed sizes, for a bounded time.

``python -m tests.soak [--pipes 10000] [--seconds 60] [--seed 1]``

Each pipe has a writer greenlet and a reader greenlet, all alive at
once. Writers write slices of a random buffer of sizes from 1 byte to
64 KiB; readers read with sizes from 1 byte to 64 KiB, alternating
``read1`` and ``readinto1``. About 1% of the calls run under a short
:class:`gevent.Timeout`: an interrupted write contributes exactly the
``consumed`` prefix it reports, an interrupted read consumes nothing.
Every chunk read is checked as it arrives against the write it must
come from (nothing lost, duplicated, reordered or invented); at the
end every writer closes its pipe and every reader must reach EOF with
every write accounted for. Prints pipes, bytes and operations done;
exits non-zero on any violation or if the run does not finish in time.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time
from typing import Any

import gevent

import gpipe

SIZES = [1, 7, 16, 100, 1000, 4096, 16384, 65536]
FAULT_RATE = 0.01
FAULT_SECONDS = 0.001
# Every call must end within this (a deadlock detector, not a speed claim).
BOUND = 30.0


class Violation(AssertionError):
    pass


class Soak:
    def __init__(self, pipes: int, seconds: float, seed: int) -> None:
        self.pipes = pipes
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.buf = (
            self.rng.randbytes(1 << 20) if hasattr(self.rng, "randbytes") else os.urandom(1 << 20)
        )
        self.stop = False
        self.writes = 0
        self.reads = 0
        self.faults = 0
        self.bytes = 0
        self.longest = 0.0

    def timed(self, fn: Any, *args: Any) -> Any:
        start = time.monotonic()
        try:
            if self.rng.random() < FAULT_RATE:
                with gevent.Timeout(FAULT_SECONDS):
                    return fn(*args)
            return fn(*args)
        finally:
            self.longest = max(self.longest, time.monotonic() - start)

    def writer(self, w: gpipe.PipeWriter, log: collections.deque[list[int]]) -> None:
        rng = self.rng
        while not self.stop:
            size = rng.choice(SIZES)
            start = rng.randrange(len(self.buf) - size)
            entry = [start, size, -1]  # -1: in progress
            log.append(entry)
            try:
                n = self.timed(w.write, memoryview(self.buf)[start : start + size])
            except gevent.Timeout as exc:
                self.faults += 1
                n = exc.consumed  # type: ignore[attr-defined]
            entry[2] = n
            self.writes += 1
        w.close()

    def reader(self, r: gpipe.PipeReader, log: collections.deque[list[int]]) -> None:
        rng = self.rng
        off = 0  # into the write at log[0]
        while True:
            size = rng.choice(SIZES)
            try:
                if rng.random() < 0.5:
                    chunk: Any = self.timed(r.read1, size)
                else:
                    # A buffer per call: a reader blocked in readinto1 owns it.
                    buf = bytearray(size)
                    n = self.timed(r.readinto1, buf)
                    chunk = memoryview(buf)[:n]
            except gevent.Timeout:
                self.faults += 1
                continue
            self.reads += 1
            if not chunk:
                break  # EOF
            self.bytes += len(chunk)
            # The chunk must be the next bytes of the oldest write not yet
            # used up: skip writes that ended (fully read, or withdrawn past
            # the prefix they reported as consumed).
            while log and log[0][2] != -1 and off == log[0][2]:
                log.popleft()
                off = 0
            if not log:
                raise Violation("bytes read that no write wrote")
            start, wsize, contributed = log[0]
            end = wsize if contributed == -1 else contributed
            if off + len(chunk) > end:
                raise Violation(f"read of {len(chunk)} bytes runs past its write ({off}/{end})")
            if chunk != self.buf[start + off : start + off + len(chunk)]:
                raise Violation("bytes out of order, duplicated or invented")
            off += len(chunk)
        r.close()
        # EOF: every write was used up.
        while log and log[0][2] != -1 and off == log[0][2]:
            log.popleft()
            off = 0
        if log:
            raise Violation(f"EOF with {len(log)} write(s) not fully read: {list(log)[:3]}")

    def run(self) -> None:
        workers = []
        for _ in range(self.pipes):
            r, w = gpipe.pipe(backend="gevent")
            log: collections.deque[list[int]] = collections.deque()
            workers.append(gevent.spawn(self.writer, w, log))
            workers.append(gevent.spawn(self.reader, r, log))
        started = time.monotonic()
        gevent.sleep(self.seconds)
        self.stop = True
        done = gevent.joinall(workers, timeout=BOUND, raise_error=True)
        self.elapsed = time.monotonic() - started
        if len(done) != len(workers):
            raise Violation(f"{len(workers) - len(done)} workers still running after the stop")
        if self.longest >= BOUND:
            raise Violation(f"a call took {self.longest:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--pipes", type=int, default=10_000, help="concurrent pipes (default 10000)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="how long to run, at most 180 (default 60)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 180:
        parser.error("--seconds must be in (0, 180]")
    soak = Soak(args.pipes, args.seconds, args.seed)
    soak.run()
    print(
        f"soak: {soak.pipes} concurrent pipes for {soak.elapsed:.1f}s: "
        f"{soak.bytes} bytes, {soak.writes} writes, {soak.reads} reads, "
        f"{soak.faults} gevent.Timeouts landed, longest call {soak.longest:.2f}s; "
        "no byte lost, duplicated, reordered or invented"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
