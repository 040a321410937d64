"""The picture of the report's comparison (needs matplotlib)."""

from __future__ import annotations

from typing import Any

from .cases import KINDS, SIZES
from .report import fmt_size, ratio


def plot_results(results: dict[str, Any], path: str) -> None:
    """Draw throughput by chunk size, and gpipe's ratio to each peer, to *path*.

    :raises ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (kind, spec) in enumerate(KINDS.items()):
        color = f"C{i}"  # one colour per kind, in both panels
        records = [r for r in results["cases"] if r["kind"] == kind]
        if not records:
            continue
        style = "-" if kind.startswith(("gevent", "threading")) else "--"
        sizes = [r["size"] for r in records]
        left.plot(
            sizes, [r["rate"] for r in records], style, marker="o", color=color, label=spec.label
        )
        left.fill_between(
            sizes,
            [r["rate_min"] for r in records],
            [r["rate_max"] for r in records],
            alpha=0.15,
            color=color,
        )
        if spec.reference is None:
            continue
        found = [(s, ratio(results, kind, s)) for s in sizes]
        points = [(s, c) for s, c in found if c is not None]
        right.errorbar(
            [s for s, _ in points],
            [c["ratio"] for _, c in points],
            yerr=[
                [c["ratio"] - c["ratio_min"] for _, c in points],
                [c["ratio_max"] - c["ratio"] for _, c in points],
            ],
            fmt=style,
            marker="o",
            capsize=3,
            color=color,
            label=f"{KINDS[spec.reference].label} / {spec.label}",
        )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(SIZES), [fmt_size(s) for s in SIZES])
        ax.set_xlabel("bytes per write and read")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small")
    left.set_ylabel("MB/s (median; band: slowest to fastest round)")
    left.set_title("Throughput")
    right.axhline(1.0, color="black", linewidth=1)
    right.set_ylabel("gpipe's throughput / the peer's (median, range of the rounds)")
    right.set_title("gpipe against each peer (above 1: gpipe is faster)")
    meta = results["meta"]
    title = (
        f"gpipe {meta['gpipe']}, Python {meta['python']}, gevent {meta['gevent']},"
        f" {meta['rounds']} rounds, medians"
    )
    if meta.get("quick"):
        title += " -- smoke run (--quick): the figures mean nothing"
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
