"""Calibration, interleaved rounds, and a case's statistics over its rounds.

The number of chunks per case is calibrated once, so that each case
takes about ``--target`` seconds, and then stays fixed. After a warm-up,
the cases run in interleaved rounds: each round runs every case once, in
a freshly shuffled order, so that a slow spell of the machine spreads
over all cases instead of hitting one. Medians over the rounds are
reported, with the spread: (fastest - slowest) / median.
"""

from __future__ import annotations

import gc
import random
import statistics
from typing import Any, TextIO

from .cases import ALL_KINDS, LINE, Case, KiB


def calibrate(case: Case, target: float) -> None:
    """Set ``case.count`` so that one run takes about *target* seconds."""
    count = max(1, min(256, (256 * KiB) // case.size))
    while True:
        elapsed = case.run(count)
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
            case.times.append(case.run(case.count))
        if out is not None:
            out.write(f"  round {i + 1}/{rounds} done\n")
            out.flush()
    return orders


def rates(case: Case) -> list[float]:
    """The case's throughput in each round, in its kind's unit."""
    total = case.size * case.count
    if ALL_KINDS[case.kind].unit == "lines/s":
        return [total / LINE / t for t in case.times]
    return [total / t / 1e6 for t in case.times]


def summarize(case: Case) -> dict[str, Any]:
    """The JSON record of a measured case: every timing, medians, spread."""
    assert case.times
    kind = ALL_KINDS[case.kind]
    per_round = rates(case)
    median = statistics.median(per_round)
    return {
        "kind": case.kind,
        "label": kind.label,
        "group": kind.group,
        "reference": kind.reference,
        "unit": kind.unit,
        "size": case.size,
        "count": case.count,
        "bytes": case.size * case.count,
        "times_s": case.times,
        "rates": per_round,
        "rate": median,
        "rate_min": min(per_round),
        "rate_max": max(per_round),
        "spread": (max(per_round) - min(per_round)) / median,
        "handoffs_per_s": case.count / statistics.median(case.times),
    }
