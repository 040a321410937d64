"""Instructions per 64-byte handoff between two greenlets, by callgrind.

Timings on a shared machine move by tens of percent; instruction counts
do not. This runs valgrind's callgrind over a fixed number of 64-byte
handoffs between two greenlets, for four cases side by side:

* ``floor``: two greenlets take turns on two :class:`gevent.lock.Semaphore`
  objects, copying the 64 bytes on each turn (the least a pipe built on
  gevent's Semaphore can do per handoff);
* ``channel``: :class:`gevent.queue.Channel` passing the bytes, which the
  consumer copies into a buffer;
* ``gpipe``: ``pipe(backend="gevent")``, the writer greenlet calling
  ``w.write(block)``, the reader greenlet ``r.readinto1(buf)``
  (``readinto`` where there is no ``readinto1``);
* ``gpipe-pure``: the same on gpipe's pure-Python build (its extensions
  are not imported; gevent stays compiled).

Each case runs twice under callgrind, with N handoffs and with none (the
same start-up: imports, greenlets spawned and joined); the difference
divided by N is the figure, instructions per handoff::

    python benchmarks/callgrind.py [--handoffs N] [--python PATH] [--json FILE] [--cache]

With ``--cache``, callgrind also simulates the processor's caches, and
the table gives the first-level cache misses (instruction and data) per
handoff beside the instructions: the instructions a handoff runs do not
say how much of its time goes to waiting for memory.

It needs ``valgrind`` on PATH and gevent in the Python that runs the
cases (``--python``, this one by default); gpipe is taken from this
checkout. Under callgrind Python runs about 50 times slower: the
default 20,000 handoffs take a few minutes in all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ("floor", "channel", "gpipe", "gpipe-pure")
SIZE = 64


# -- the workloads, run under callgrind by this same file -------------------------------------


def floor(n: int) -> None:
    import gevent
    from gevent.lock import Semaphore

    data = bytes(range(SIZE))

    def side(mine: Any, other: Any, turns: int) -> None:
        view = memoryview(bytearray(SIZE))
        for _ in range(turns):
            mine.acquire()
            view[:SIZE] = data
            other.release()

    a, b = Semaphore(1), Semaphore(0)  # a has the first turn
    gevent.joinall(
        [gevent.spawn(side, a, b, (n + 1) // 2), gevent.spawn(side, b, a, n // 2)],
        raise_error=True,
    )


def channel(n: int) -> None:
    import gevent
    from gevent.queue import Channel

    data = bytes(range(SIZE))
    chan: Any = Channel()

    def produce() -> None:
        for _ in range(n):
            chan.put(data)
        chan.put(None)

    def consume() -> None:
        view = memoryview(bytearray(SIZE))
        while True:
            chunk = chan.get()
            if chunk is None:
                return
            view[: len(chunk)] = chunk

    gevent.joinall([gevent.spawn(produce), gevent.spawn(consume)], raise_error=True)


def gpipe_case(n: int) -> None:
    import gevent

    import gpipe

    data = bytes(range(SIZE))
    r, w = gpipe.pipe(backend="gevent")

    def produce() -> None:
        for _ in range(n):
            w.write(data)
        w.close()

    def consume() -> None:
        buf = bytearray(SIZE)
        readinto = getattr(r, "readinto1", r.readinto)
        while readinto(buf):
            pass
        r.close()

    gevent.joinall([gevent.spawn(produce), gevent.spawn(consume)], raise_error=True)


def gpipe_pure(n: int) -> None:
    """``gpipe`` on gpipe's pure-Python build, with gevent still compiled
    (``PURE_PYTHON=1`` would make gevent pure Python too)."""
    for name in ("gpipe._gpipe_c_core", "gpipe._gpipe_c_backends", "gpipe._gpipe_c_mutex"):
        sys.modules[name] = None  # type: ignore[assignment]  # importing it fails
    gpipe_case(n)
    import gpipe

    assert not gpipe.COMPILED


WORKLOADS = {"floor": floor, "channel": channel, "gpipe": gpipe_case, "gpipe-pure": gpipe_pure}


# -- measuring ----------------------------------------------------------------------------------


def counts(python: str, case: str, n: int, workdir: str, cache: bool) -> dict[str, int]:
    """What callgrind counts for one run of *case* with *n* handoffs: the
    instructions (``Ir``) and, with *cache*, the simulated caches' misses
    (``I1mr``, ``D1mr``, ``D1mw``: first level; ``ILmr``, ``DLmr``,
    ``DLmw``: last level)."""
    out = os.path.join(workdir, f"callgrind.{case}.{n}.out")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.pop("PYTHONDEVMODE", None)
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--cache-sim={'yes' if cache else 'no'}",
            f"--callgrind-out-file={out}",
            python,
            os.path.abspath(__file__),
            "--workload",
            case,
            str(n),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    events: list[str] = []
    with open(out) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                return dict(zip(events, map(int, line.split()[1:]), strict=True))
    raise RuntimeError(f"no totals in {out}")


def measure(python: str, handoffs: int, cases: list[str], cache: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpipe-callgrind-") as workdir:
        for case in cases:
            started = time.monotonic()
            base = counts(python, case, 0, workdir, cache)
            total = counts(python, case, handoffs, workdir, cache)
            per = {event: (total[event] - base[event]) / handoffs for event in total}
            results[case] = {
                "startup": base["Ir"],
                "total": total["Ir"],
                "per_handoff": per["Ir"],
                "seconds": round(time.monotonic() - started, 1),
            }
            if cache:
                results[case]["misses_per_handoff"] = {
                    "L1": per["I1mr"] + per["D1mr"] + per["D1mw"],
                    "LL": per["ILmr"] + per["DLmr"] + per["DLmw"],
                    **{event: value for event, value in per.items() if event != "Ir"},
                }
            print(
                f"  {case}: {results[case]['per_handoff']:,.0f} instructions per handoff "
                f"({results[case]['seconds']} s)",
                file=sys.stderr,
            )
    return results


def _ratio(value: float, floor: float | None) -> str:
    return f"{value / floor:.2f}" if floor else "-"


def table(results: dict[str, Any], handoffs: int) -> str:
    floor = results.get("floor", {})
    cache = any("misses_per_handoff" in result for result in results.values())
    rows = [
        f"{handoffs:,} handoffs of {SIZE} bytes between two greenlets",
        f"{'case':<10}{'instructions/handoff':>22}{'x floor':>10}"
        + (f"{'L1 misses/handoff':>20}{'x floor':>10}" if cache else ""),
    ]
    for case, result in results.items():
        row = f"{case:<10}{result['per_handoff']:>22,.0f}"
        row += f"{_ratio(result['per_handoff'], floor.get('per_handoff')):>10}"
        if cache:
            misses = result["misses_per_handoff"]["L1"]
            floor_misses = floor.get("misses_per_handoff", {}).get("L1")
            row += f"{misses:>20,.0f}{_ratio(misses, floor_misses):>10}"
        rows.append(row)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handoffs", type=int, default=20_000, help="handoffs per case")
    parser.add_argument("--python", default=sys.executable, help="the Python to measure")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}"
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="also simulate the caches and count their misses per handoff (slower)",
    )
    parser.add_argument("--workload", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload:
        case, n = args.workload
        WORKLOADS[case](int(n))
        return 0
    cases = args.cases.split(",")
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    if args.handoffs <= 0:
        parser.error("--handoffs must be positive")
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH", file=sys.stderr)
        return 2
    results = measure(args.python, args.handoffs, cases, args.cache)
    print(table(results, args.handoffs))
    if args.json:
        version = subprocess.run(
            [
                args.python,
                "-c",
                "import sys, gevent; print(sys.version.split()[0], gevent.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        with open(args.json, "w") as f:
            json.dump(
                {
                    "handoffs": args.handoffs,
                    "size": SIZE,
                    "python": version[0],
                    "gevent": version[1],
                    "cases": results,
                },
                f,
                indent=2,
            )
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
