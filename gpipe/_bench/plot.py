"""The picture of the report's comparison (needs matplotlib).

It is drawn for the documentation's performance page, whose text column
is about 660 px wide: one column of two panels, 6.6 inches wide, saved
at 200 dpi so that it stays sharp on high-density screens, with text in
points that read at that width. gpipe's own cases have one colour per
backend and a line of their own for each way to read: solid with filled
circles (readinto1, the headline), dash-dotted with open diamonds
(readinto) and dotted with open squares (read(n)), which lie nearly on
each other. The peers are dashed, each with its own colour and marker,
so that lines that lie on each other can still be told apart.
"""

from __future__ import annotations

from typing import Any

from .cases import KINDS, SIZES
from .report import fmt_size, ratio

#: Inches: the documentation's text column at 100 px an inch.
WIDTH = 6.6
DPI = 200
#: Points: 11 pt at 100 px an inch is about 15 px on the page.
FONT_SIZE = 11

# kind -> (line style, marker, hollow marker)
STYLES = {
    "gevent-readinto1": ("-", "o", False),
    "gevent-readinto": ("-.", "d", True),
    "gevent-read": (":", "s", True),
    "semaphore-floor": ("--", "^", False),
    "channel-copy": ("--", "v", False),
    "os-pipe": ("--", "D", False),
    "memcpy": ("--", "X", False),
    "threading-readinto1": ("-", "o", False),
    "threading-readinto": ("-.", "d", True),
    "threading-read": (":", "s", True),
    "queue-copy": ("--", "P", False),
}
# kind -> colour, the same in both panels: one per backend for gpipe.
COLORS = {
    "gevent-readinto1": "C0",
    "gevent-readinto": "C0",
    "gevent-read": "C0",
    "semaphore-floor": "C1",
    "channel-copy": "C2",
    "os-pipe": "C4",
    "memcpy": "C7",
    "threading-readinto1": "C3",
    "threading-readinto": "C3",
    "threading-read": "C3",
    "queue-copy": "C5",
}


def _style(kind: str, color: str) -> dict[str, Any]:
    linestyle, marker, hollow = STYLES.get(kind, ("--", "o", False))
    return {
        "linestyle": linestyle,
        "marker": marker,
        "markersize": 7 if hollow else 5,
        "markerfacecolor": "none" if hollow else color,
        "markeredgewidth": 1.3,
        "linewidth": 1.6,
        "color": color,
    }


def plot_results(results: dict[str, Any], path: str) -> None:
    """Draw throughput by chunk size, and gpipe's ratio to each peer, to *path*.

    The PNG's ``Source`` text names the run (date and seed), so that a
    picture can be matched with the table of the same run.

    :raises ImportError: matplotlib is not installed.
    """
    from matplotlib import rc_context

    with rc_context({"font.size": FONT_SIZE}):
        _draw(results, path)


def _draw(results: dict[str, Any], path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, 10), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    for i, kind in enumerate(KINDS):
        color = COLORS.get(kind, f"C{i % 10}")
        records = [r for r in results["cases"] if r["kind"] == kind]
        if not records:
            continue
        style = _style(kind, color)
        sizes = [r["size"] for r in records]
        # The records' own label and reference: a saved run is drawn as it ran.
        top.plot(sizes, [r["rate"] for r in records], label=records[0]["label"], **style)
        top.fill_between(
            sizes,
            [r["rate_min"] for r in records],
            [r["rate_max"] for r in records],
            alpha=0.12,
            color=color,
            linewidth=0,
        )
        if records[0]["reference"] is None:
            continue
        found = [(s, ratio(results, kind, s)) for s in sizes]
        points = [(s, c) for s, c in found if c is not None]
        bottom.errorbar(
            [s for s, _ in points],
            [c["ratio"] for _, c in points],
            yerr=[
                [c["ratio"] - c["ratio_min"] for _, c in points],
                [c["ratio_max"] - c["ratio"] for _, c in points],
            ],
            capsize=3,
            **style,
        )
    for ax in (top, bottom):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(SIZES), [fmt_size(s) for s in SIZES])
        ax.set_xlabel("bytes per write and read")
        ax.grid(True, which="both", alpha=0.3)
    # One legend for both panels: a kind has the same line in each.
    fig.legend(
        *top.get_legend_handles_labels(),
        loc="outside lower center",
        ncols=2,
        fontsize="medium",
        frameon=False,
        handlelength=3,
    )
    top.set_ylabel("MB/s (median; band: all rounds)")
    top.set_title("Throughput")
    bottom.axhline(1.0, color="black", linewidth=1)
    bottom.set_ylabel("gpipe readinto1 / other (median, range)")
    bottom.set_title(
        "gpipe readinto1, same backend, over each other case\n(above 1: readinto1 is faster)"
    )
    meta = results["meta"]
    title = (
        f"gpipe {meta['gpipe']}, Python {meta['python']}, gevent {meta['gevent']},"
        f" {meta['rounds']} rounds, medians"
    )
    if meta.get("quick"):
        title += "\nsmoke run (--quick): the figures mean nothing"
    fig.suptitle(title)
    source = f"{meta['command']}, {meta['date']}, seed {meta['seed']}"
    fig.savefig(path, dpi=DPI, metadata={"Source": source})
