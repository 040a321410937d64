"""The comparisons, the text and reST reports, and the goals of ``--check``.

A comparison is gpipe's throughput divided by a peer's, at one chunk
size. Both ran once in every round, so each round gives a ratio of its
own: the report shows the median of those ratios and their range, which
says how much a noisy machine moved it.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from typing import Any

from .cases import ALL_KINDS, BUFSIZE, LINE, LINE_WRITE, SIZES, SMALL_WRITE, KiB, MiB


def fmt_size(size: int) -> str:
    """``64 B``, ``4 KiB``, ``1 MiB``."""
    if size >= MiB:
        return f"{size // MiB} MiB"
    if size >= KiB:
        return f"{size // KiB} KiB"
    return f"{size} B"


def find(results: dict[str, Any], kind: str, size: int) -> dict[str, Any] | None:
    """The record of the case *kind* at *size*, if it ran."""
    for record in results["cases"]:
        if record["kind"] == kind and record["size"] == size:
            return dict(record)
    return None


def comparisons(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every case that has a reference: reference's throughput / the case's."""
    by_key = {(r["kind"], r["size"]): r for r in cases}
    found = []
    for record in cases:
        ref = by_key.get((record["reference"], record["size"]))
        if ref is None:
            continue
        per_round = [a / b for a, b in zip(ref["rates"], record["rates"], strict=False)]
        found.append(
            {
                "kind": record["kind"],
                "reference": ref["kind"],
                "size": record["size"],
                "ratios": per_round,
                "ratio": statistics.median(per_round),
                "ratio_min": min(per_round),
                "ratio_max": max(per_round),
            }
        )
    return found


def ratio(results: dict[str, Any], kind: str, size: int) -> dict[str, Any] | None:
    """The comparison of *kind* with its reference at *size*, if both ran."""
    for comparison in results["comparisons"]:
        if comparison["kind"] == kind and comparison["size"] == size:
            return dict(comparison)
    return None


def cost_ratio(results: dict[str, Any], kind: str, size: int) -> float | None:
    """What *kind* costs at *size*, in multiples of what its reference costs.

    The reference's median throughput over *kind*'s, in the same run
    (a ratio of medians); None if either did not run.
    """
    record = find(results, kind, size)
    if record is None:
        return None
    ref = find(results, record["reference"], size)
    return None if ref is None else float(ref["rate"] / record["rate"])


# -- goals -------------------------------------------------------------------

#: gpipe's other ways to read, each held to at most OTHER_READS_COST
#: times the cost of readinto1 at every size.
OTHER_READS = ("gevent-readinto", "gevent-read")
OTHER_READS_COST = 1.1

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's performance goals, with what this run measured.

    A goal whose figure was not measured (``--no-memory``, no buffered
    mode...) has ``value`` and ``passed`` None.
    """
    found = []

    def goal(name: str, value: float | None, op: str, target: float, unit: str) -> None:
        found.append(
            {
                "goal": name,
                "value": value,
                "op": op,
                "target": target,
                "unit": unit,
                "passed": None if value is None else _OPS[op](value, target),
            }
        )

    def median_ratio(kind: str, size: int) -> float | None:
        found = ratio(results, kind, size)
        return None if found is None else float(found["ratio"])

    for size in (64, 4 * KiB):
        goal(
            f"gpipe gevent readinto1 / Semaphore floor, {fmt_size(size)}",
            median_ratio("semaphore-floor", size),
            ">=",
            0.8,
            "x",
        )
    goal(
        "gpipe gevent readinto1 / os.pipe, 64 KiB",
        median_ratio("os-pipe", 64 * KiB),
        ">=",
        4.0,
        "x",
    )
    goal(
        "gpipe gevent readinto1 / memoryview copy, 1 MiB",
        median_ratio("memcpy", MiB),
        ">=",
        0.8,
        "x",
    )
    # readinto and read(n), given the size of a write, return the bytes of
    # one write as readinto1 does: they may cost a little more, not much.
    for kind in OTHER_READS:
        for size in SIZES:
            goal(
                f"{ALL_KINDS[kind].label}, cost / readinto1's, {fmt_size(size)}",
                cost_ratio(results, kind, size),
                "<=",
                OTHER_READS_COST,
                "x",
            )
    goal(
        "lines: raw reader / io.BufferedReader",
        median_ratio("lines-buffered", LINE_WRITE),
        ">=",
        0.5,
        "x",
    )
    fair = results.get("fairness")
    goal(
        "fairness: gpipe stream, sleeper's worst lateness",
        None if fair is None else fair["streams"]["gpipe"]["worst_ms"],
        "<=",
        20.0,
        " ms",
    )
    mem = results.get("memory")
    goal(
        "concurrent greenlet pairs, gpipe's speed / Channel + copy's",
        None if mem is None else mem["pairs_ratio"],
        ">=",
        0.8,
        "x",
    )
    for backend in ("gevent", "threading"):
        goal(
            f"idle pipe, both ends, {backend} backend",
            None if mem is None else mem["idle_pipe_bytes"][backend],
            "<",
            450.0,
            " bytes",
        )
    return found


def _figure(value: float, unit: str) -> str:
    if unit == "x":
        return f"{_x(value)}x"
    return f"{value:,.1f}{unit}" if unit == " ms" else f"{value:,.0f}{unit}"


def format_check(results: dict[str, Any]) -> str:
    """One line per goal: PASS, MISS or n/a, the figure and the goal."""
    lines = ["goals:"]
    for g in results["goals"]:
        verdict = {None: "n/a ", True: "PASS", False: "MISS"}[g["passed"]]
        shown = "not measured" if g["value"] is None else _figure(g["value"], g["unit"])
        target = _figure(g["target"], g["unit"])
        lines.append(f"  {verdict} {g['goal']}: {shown} (goal {g['op']} {target})")
    return "\n".join(lines)


# -- the text report ---------------------------------------------------------

_GROUPS = {
    "greenlets": "between two greenlets (gevent)",
    "threads": "between two OS threads",
}


def _x(value: float) -> str:
    """A ratio, with two significant digits at least."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def ratio_range(c: dict[str, Any]) -> str:
    """``1.23x (1.20-1.31)``: the median ratio and its range over the rounds."""
    return f"{_x(c['ratio'])}x ({_x(c['ratio_min'])}-{_x(c['ratio_max'])})"


def format_table(results: dict[str, Any]) -> str:
    """The text report: throughputs, ratios with their range, fairness, memory."""
    rounds = results["meta"]["rounds"]
    out = [
        f"Medians over {rounds} rounds; spread = (fastest - slowest) / median;",
        "ratio = the throughput of the gpipe case its head names (readinto1, for",
        "the greenlet and thread cases) / this one's: the median of the rounds'",
        "ratios, and their range. Above 1: that gpipe case is faster.",
    ]

    def row(record: dict[str, Any]) -> str:
        c = ratio(results, record["kind"], record["size"])
        shown = "" if c is None else ratio_range(c)
        return f"    {record['label']:38} {record['rate']:12,.1f} {record['spread']:6.0%}  {shown}"

    def head(title: str, unit: str, reference: str) -> str:
        return f"  {title:40} {unit:>12} {'spread':>6}  ratio: {reference} / this"

    for size in SIZES:
        out += ["", f"{fmt_size(size)} per write and read"]
        for group, title in _GROUPS.items():
            records = [r for r in results["cases"] if r["size"] == size and r["group"] == group]
            if not records:
                continue
            ref = next(r["label"] for r in records if r["reference"] is None)
            out.append(head(title, "MB/s", ref))
            out += [row(r) for r in records]

    buffered = [r for r in results["cases"] if r["group"] == "buffered"]
    out.append("")
    if buffered:
        out.append(
            head(f"64 B writes, reads of up to {fmt_size(BUFSIZE)}", "MB/s", buffered[0]["label"])
        )
        out += [row(r) for r in buffered]
    else:
        out.append(f"  buffered mode not measured: {results['buffered']['reason']}")

    line_records = [r for r in results["cases"] if r["group"] == "lines"]
    if line_records:
        out += [
            "",
            f"lines: {LINE}-byte lines in {fmt_size(LINE_WRITE)} writes, between two greenlets",
            head("", "lines/s", "raw reader"),
        ]
        out += [row(r) for r in line_records]

    fair = results.get("fairness")
    if fair:
        out += [
            "",
            f"fairness: a greenlet sleeping {fair['period_ms']:.0f} ms in a loop while a stream"
            f" of {fmt_size(fair['chunk'])} writes",
            f"runs flat out for {fair['duration_s']:g} s ({fair['rounds']} runs each):"
            " how late its wake-ups were",
        ]
        for stream in fair["streams"].values():
            runs = stream["runs"]
            out.append(
                f"    {stream['label']:38} worst {stream['worst_ms']:8.1f} ms"
                f" (runs: {stream['worst_ms_min']:.1f}-{stream['worst_ms']:.1f} ms;"
                f" {statistics.median(r['wakeups'] for r in runs):.0f} wake-ups a run)"
            )

    mem = results.get("memory")
    if mem:
        idle = ", ".join(f"{b} {n:.0f}" for b, n in mem["idle_pipe_bytes"].items())
        med = mem["pairs_median_s"]
        out += [
            "",
            "memory",
            f"    idle pipe, both ends, bytes: {idle}"
            f" (tracemalloc over {mem['idle_pipes']:,} pipes)",
            f"    {mem['pairs']:,} concurrent greenlet pairs, {fmt_size(mem['pair_bytes'])}"
            f" each in {fmt_size(mem['pair_chunk'])} chunks:",
            f"      gpipe {med['gpipe']:.3f} s, Channel + copy {med['channel-copy']:.3f} s;"
            f" Channel's time / gpipe's {mem['pairs_ratio']:.2f}x"
            f" ({mem['pairs_ratio_min']:.2f}-{mem['pairs_ratio_max']:.2f})",
            f"      floor: 2 Semaphores + copy {med['floor']:.3f} s;"
            f" Channel's time / the floor's {mem['pairs_floor_ratio']:.2f}x,"
            f" the floor's / gpipe's {mem['pairs_gpipe_floor_ratio']:.2f}x",
        ]
    return "\n".join(out)


# -- reST --------------------------------------------------------------------


def format_rst(results: dict[str, Any]) -> str:
    """The results as reST tables: throughput, ratios, lines, fairness, memory."""
    meta = results["meta"]
    out = [
        ".. This file is generated by ``python -m gpipe bench --rst``; do not edit.",
        "",
        f"Measured with ``{meta['command']}`` on {meta['machine']},",
        f"Python {meta['python']}, gevent {meta['gevent']}, gpipe {meta['gpipe']},",
        f"{meta['rounds']} interleaved rounds, medians.",
        "",
    ]
    if meta.get("quick"):
        out += ["A smoke run (``--quick``): these figures mean nothing.", ""]
    # Labels and references come from the records, so that a saved run is
    # told as it was measured.
    labels = {r["kind"]: r["label"] for r in results["cases"]}
    references = {r["kind"]: r["reference"] for r in results["cases"]}
    kinds = list({r["kind"]: None for r in results["cases"] if r["group"] in _GROUPS})

    def table(title: str, header: list[str], rows: list[list[str]]) -> None:
        out.extend([f".. list-table:: {title}", "   :header-rows: 1", ""])
        for cells in [header, *rows]:
            out.append(f"   * - {cells[0]}")
            out.extend(f"     - {cell}" for cell in cells[1:])
        out.append("")

    sizes = [fmt_size(s) for s in SIZES]

    def rate(kind: str, size: int) -> str:
        record = find(results, kind, size)
        return "" if record is None else f"{record['rate']:,.0f}"

    table(
        "Throughput, MB/s, by bytes per write and read",
        ["Case", *sizes],
        [[labels[k]] + [rate(k, s) for s in SIZES] for k in kinds],
    )

    def ratio_cell(kind: str, size: int) -> str:
        c = ratio(results, kind, size)
        return "" if c is None else ratio_range(c)

    table(
        "gpipe readinto1's throughput / each other case's, same backend"
        " (median of the rounds, and range)",
        ["gpipe readinto1 / other", *sizes],
        [
            [f"{labels[str(references[k])]} / {labels[k]}"] + [ratio_cell(k, s) for s in SIZES]
            for k in kinds
            if references[k] is not None
        ],
    )
    others = []
    for kind in ("gevent-buffered", "os-pipe-buffered", "lines-raw", "lines-buffered"):
        size = LINE_WRITE if kind.startswith("lines") else SMALL_WRITE
        record = find(results, kind, size)
        if record is None:
            continue
        c = ratio(results, kind, record["size"])
        others.append(
            [
                record["label"],
                f"{record['rate']:,.0f} {record['unit']}",
                "" if c is None else ratio_range(c),
            ]
        )
    if others:
        table(
            f"Buffered mode (64 B writes) and lines ({LINE} B lines in"
            f" {fmt_size(LINE_WRITE)} writes)",
            ["Case", "Throughput", "Ratio: gpipe (raw reader) / this"],
            others,
        )
    fair = results.get("fairness")
    if fair:
        table(
            f"Fairness: worst lateness of a greenlet sleeping {fair['period_ms']:.0f} ms"
            f" while a stream runs flat out for {fair['duration_s']:g} s",
            ["Stream", "Worst lateness"],
            [[s["label"], f"{s['worst_ms']:,.1f} ms"] for s in fair["streams"].values()],
        )
    mem = results.get("memory")
    if mem:
        table(
            "Memory",
            ["Measured", "Result"],
            [
                [f"idle pipe, both ends, {b} backend", f"{n:.0f} bytes"]
                for b, n in mem["idle_pipe_bytes"].items()
            ]
            + [
                [
                    f"{mem['pairs']:,} greenlet pairs, time of Channel + copy / gpipe",
                    f"{mem['pairs_ratio']:.2f}x",
                ],
                [
                    f"{mem['pairs']:,} greenlet pairs, time of Channel + copy / the floor",
                    f"{mem['pairs_floor_ratio']:.2f}x",
                ],
                [
                    f"{mem['pairs']:,} greenlet pairs, time of the floor / gpipe",
                    f"{mem['pairs_gpipe_floor_ratio']:.2f}x",
                ],
            ],
        )
    table(
        "Goals",
        ["Goal", "Target", "Measured"],
        [
            [
                g["goal"],
                f"{g['op']} {_figure(g['target'], g['unit'])}",
                "not measured" if g["value"] is None else _figure(g["value"], g["unit"]),
            ]
            for g in results["goals"]
        ],
    )
    return "\n".join(out)
