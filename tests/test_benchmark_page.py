"""The performance page's figures: the table and the plot of one run.

``tox -e bench`` writes ``docs/_static/benchmark.json``, the table
``docs/benchmark_table.rst`` and the plot ``docs/_static/benchmark.png``
from the same run; ``benchmarks/plot.py`` may draw the plot again from
the JSON. These tests hold the three together, and the plot to the page.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from gpipe._bench import cases, report

DOCS = Path(__file__).resolve().parent.parent / "docs"
RESULTS = DOCS / "_static" / "benchmark.json"
TABLE = DOCS / "benchmark_table.rst"
PLOT = DOCS / "_static" / "benchmark.png"


def png_info(path: Path) -> tuple[tuple[int, int], dict[str, str]]:
    """A PNG's size in pixels and its text chunks."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, size, text = 8, (0, 0), {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, value = body.partition(b"\0")
            text[key.decode("latin-1")] = zlib.decompress(value[1:]).decode("latin-1")
        pos += 12 + length
    return size, text


def results() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RESULTS.read_text())
    return loaded


def test_table_is_the_json_run() -> None:
    """The table is what --rst writes from the page's JSON, to the figure."""
    measured = {record["kind"] for record in results()["cases"]}
    missing = sorted(set(cases.KINDS) - measured)
    if missing:
        # Tables are written as the command formats them when it runs; a
        # run from before these cases existed has a table of its own time.
        pytest.skip(f"the page's run predates the cases {missing}: tox -e bench writes it again")
    assert report.format_rst(results()) == TABLE.read_text()


def test_a_saved_run_is_told_as_it_ran() -> None:
    """Labels and references come from the records, not from today's cases."""
    saved = _every_case()
    for record in saved["cases"]:
        record["label"] = f"then: {record['label']}"
    rst = report.format_rst(saved)
    for kind in cases.KINDS:
        assert f"   * - then: {cases.KINDS[kind].label}\n" in rst
    assert "   * - then: gpipe gevent readinto1 / then: gpipe gevent readinto\n" in rst
    assert "   * - then: gpipe threading readinto1 / then: threads Queue(1) + copy\n" in rst


def test_plot_is_the_json_run() -> None:
    """The plot names the run it was drawn from: its command, date and seed."""
    meta = results()["meta"]
    _, text = png_info(PLOT)
    assert text.get("Source") == f"{meta['command']}, {meta['date']}, seed {meta['seed']}"


def test_plot_fits_the_page() -> None:
    """Drawn for the page's text column (about 660 px) at twice its density."""
    from gpipe._bench.plot import DPI, WIDTH

    (width, height), _ = png_info(PLOT)
    assert width == round(WIDTH * DPI) == 1320
    assert height > width


def _every_case() -> dict[str, Any]:
    """Results of a made-up run of every case, at made-up rates."""
    records = []
    for i, (kind, spec) in enumerate(cases.KINDS.items()):
        for size in cases.SIZES:
            rates = [float(size * (i + 1) + r) for r in range(3)]
            records.append(
                {
                    "kind": kind,
                    "label": spec.label,
                    "group": spec.group,
                    "reference": spec.reference,
                    "unit": spec.unit,
                    "size": size,
                    "rates": rates,
                    "rate": rates[1],
                    "rate_min": rates[0],
                    "rate_max": rates[2],
                }
            )
    meta = {
        "command": "python -m gpipe bench",
        "machine": "a machine",
        "python": "3",
        "gevent": "1",
        "gpipe": "1",
        "rounds": 3,
        "date": "today",
        "seed": 1,
    }
    return {
        "meta": meta,
        "cases": records,
        "comparisons": report.comparisons(records),
        "goals": [],
    }


@pytest.mark.timeout(120)
def test_gpipe_lines_differ(tmp_path: Path) -> None:
    """gpipe's readinto1, readinto and read(n) lines differ in line style and marker."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from gpipe._bench import plot

    drawn: list[Any] = []
    saved = Figure.savefig

    def keep(fig: Any, *args: Any, **kwargs: Any) -> None:
        drawn.append(fig)
        saved(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", keep)
        plot.plot_results(_every_case(), str(tmp_path / "p.png"))
    (fig,) = drawn
    top = fig.axes[0]
    lines = {line.get_label(): line for line in top.get_lines()}
    for backend in ("gevent", "threading"):
        gpipe_lines = [
            lines[f"gpipe {backend} {how}"] for how in ("readinto1", "readinto", "read(n)")
        ]
        assert len({line.get_linestyle() for line in gpipe_lines}) == 3
        assert len({line.get_marker() for line in gpipe_lines}) == 3
    # One legend for the figure, every kind in it.
    (legend,) = fig.legends
    assert len(legend.get_texts()) == len(lines) == len(cases.KINDS) == 11
    assert png_info(tmp_path / "p.png")[0][0] == 1320


@pytest.mark.timeout(120)
def test_page_run_draws_again(tmp_path: Path) -> None:
    """The page's saved run, whatever cases it has, can be drawn again."""
    pytest.importorskip("matplotlib")
    from gpipe._bench import plot

    plot.plot_results(results(), str(tmp_path / "p.png"))
    assert png_info(tmp_path / "p.png")[0][0] == 1320
