"""The command line of ``python -m gpipe bench``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from typing import Any

from . import cases, fairness, memory, report, rounds

DESCRIPTION = """\
Measure gpipe's fastest read, readinto1, against its other reads (readinto
and read(n)) and against what you would use instead -- os.pipe under gevent,
gevent's Channel with a copy, queue.Queue between threads, a bare memory
copy, and the floor of a handoff on gevent's Semaphore -- in one process,
in interleaved rounds, and print the throughputs and gpipe's ratio to each,
with the spread between rounds. Also: line iteration on the raw reader
against io.BufferedReader, how late a sleeping greenlet wakes while a
stream runs flat out (gpipe and Channel), and the memory of an idle pipe.
The full run takes a few minutes; run it on a quiet machine.
"""

SMOKE_LINE = "SMOKE RUN (--quick): tiny byte totals, few rounds; these figures mean nothing."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on *parser*."""
    parser.description = DESCRIPTION
    parser.add_argument(
        "--rounds", type=int, default=None, metavar="N", help="interleaved rounds (9; --quick: 2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds that checks the benchmark still runs;"
        " its figures mean nothing",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long one run of a case takes, by calibration (0.2; --quick: 0.003)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="N", help="seed of the shuffled round orders"
    )
    parser.add_argument(
        "--json",
        action="append",
        default=[],
        metavar="PATH",
        help="write every timing and ratio as JSON (may be repeated)",
    )
    parser.add_argument(
        "--plot",
        action="append",
        default=[],
        metavar="PATH",
        help="draw the comparison as a PNG; needs matplotlib (may be repeated)",
    )
    parser.add_argument("--rst", metavar="PATH", help="write the results as reST tables")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the idle pipe size and the pairs"
    )
    parser.add_argument("--no-fairness", action="store_true", help="skip the fairness probe")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also print the project's performance goals, PASS or MISS, and exit"
        " with status 1 if one is missed",
    )


def _meta(args: argparse.Namespace, n_rounds: int, target: float, seed: int) -> dict[str, Any]:
    import gevent

    import gpipe

    argv = ["python -m gpipe bench"]
    if args.quick:
        argv.append("--quick")
    if args.rounds is not None:
        argv.append(f"--rounds {n_rounds}")
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
        "rounds": n_rounds,
        "target_s": target,
        "seed": seed,
        "quick": bool(args.quick),
        # Development mode's debug allocator hooks slow every case down.
        "dev_mode": sys.flags.dev_mode,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0, or 1 when ``--check`` finds a goal missed."""
    import gevent.monkey

    if gevent.monkey.is_module_patched("threading"):
        args.fail("threading is monkey-patched; run the benchmark in a fresh process")
    n_rounds = args.rounds if args.rounds is not None else (2 if args.quick else 9)
    target = args.target if args.target is not None else (0.003 if args.quick else 0.2)
    if n_rounds < 1:
        args.fail(f"--rounds must be at least 1, not {n_rounds}")
    if not 0 < target <= 60:
        args.fail(f"--target must be between 0 and 60 seconds, not {target}")
    outputs = [*args.json, *args.plot, *([args.rst] if args.rst else [])]
    for path in outputs:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            args.fail(f"cannot create the folder of {path}: {exc.strerror or exc}")
        if os.path.isdir(path) or not os.access(folder, os.W_OK):
            args.fail(f"cannot write {path}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401 -- only whether it is there
        except ImportError:
            args.fail("--plot needs matplotlib, which is not installed: pip install matplotlib")

    out = sys.stdout
    if args.quick:
        out.write(SMOKE_LINE + "\n")
    if sys.flags.dev_mode:
        out.write("Python development mode is on: the timings are not representative.\n")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    buffered = cases.has_bufsize()
    todo = cases.make_cases(buffered)
    out.write(f"calibrating {len(todo)} cases to about {target} s a run\n")
    out.flush()
    for case in todo:
        rounds.calibrate(case, target)
    if not args.quick:
        out.write("warm-up round\n")
        rounds.run_rounds(todo, 1, seed)
    out.write(f"{n_rounds} interleaved rounds, shuffled (seed {seed})\n")
    out.flush()
    orders = rounds.run_rounds(todo, n_rounds, seed + 1, out)
    records = [rounds.summarize(case) for case in todo]
    results: dict[str, Any] = {
        "meta": _meta(args, n_rounds, target, seed),
        "cases": records,
        "comparisons": report.comparisons(records),
        "orders": orders,
        "buffered": {
            "available": buffered,
            "reason": "measured" if buffered else "gpipe.pipe() takes no bufsize argument",
        },
    }
    if not args.no_fairness:
        out.write("fairness\n")
        out.flush()
        if args.quick:
            results["fairness"] = fairness.fairness(duration=0.1, rounds=1)
        else:
            results["fairness"] = fairness.fairness(duration=1.0, rounds=3)
    if not args.no_memory:
        out.write("memory\n")
        out.flush()
        if args.quick:
            results["memory"] = memory.memory(pipes=1000, pairs=100, rounds=1)
        else:
            results["memory"] = memory.memory(pipes=100_000, pairs=10_000, rounds=5)
    results["goals"] = report.goals(results)
    out.write("\n" + report.format_table(results) + "\n")
    status = 0
    if args.check:
        out.write("\n" + report.format_check(results) + "\n")
        if args.quick:
            out.write("  (a smoke run: these verdicts mean nothing either)\n")
        if any(g["passed"] is False for g in results["goals"]):
            status = 1
    for path in args.json:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        out.write(f"wrote {path}\n")
    if args.rst:
        with open(args.rst, "w", encoding="utf-8") as f:
            f.write(report.format_rst(results))
        out.write(f"wrote {args.rst}\n")
    for path in args.plot:
        from .plot import plot_results

        plot_results(results, path)
        out.write(f"wrote {path}\n")
    return status
