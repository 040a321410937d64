"""The benchmark command runs and reports every case; no timing is asserted.

The smoke run is a subprocess: the benchmark must run in a process of its
own (it refuses a monkey-patched one), and its timings must not share an
interpreter with the test suite's greenlets and threads.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpipe import _bench

# The smoke run takes a few seconds; far above that means it hangs.
SMOKE_TIMEOUT = 120


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    paths = {
        "json": tmp / "out" / "results.json",  # a missing folder is created
        "plot": tmp / "results.png",
        "rst": tmp / "table.rst",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gpipe", "bench", "--quick", "--seed", "7"]
        + [arg for name, path in paths.items() for arg in (f"--{name}", str(path))],
        check=False,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    return {
        "proc": proc,
        "paths": paths,
        "results": json.loads(paths["json"].read_text()),
    }


def test_smoke_has_every_case(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    expected = {(kind, size) for kind in _bench.KINDS for size in _bench.SIZES}
    if _bench.has_bufsize():
        expected |= {(kind, _bench.SMALL_WRITE) for kind in _bench.BUFFERED_KINDS}
    got = {(r["kind"], r["size"]) for r in results["cases"]}
    assert got == expected
    rounds = results["meta"]["rounds"]
    for record in results["cases"]:
        assert record["count"] > 0
        assert record["bytes"] == record["count"] * record["size"]
        assert len(record["times_s"]) == rounds
        assert record["mb_per_s"] > 0
    # Every round ran every case once.
    assert len(results["orders"]) == rounds
    for order in results["orders"]:
        assert sorted(order) == sorted(f"{kind}/{size}" for kind, size in expected)


def test_smoke_reports_goals_and_memory(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    out = smoke["proc"].stdout
    names = [goal["goal"] for goal in results["goals"]]
    assert len(names) == len(set(names)) == 17
    buffered = results["buffered"]["available"]
    assert buffered == _bench.has_bufsize()
    for goal in results["goals"]:
        if goal["kind"] == "gevent-buffered" and not buffered:
            assert goal["ratio"] is None
            assert goal["pass"] is None
        else:
            assert goal["ratio"] > 0
            assert goal["pass"] == (goal["ratio"] >= goal["target"])
            assert goal["goal"] in out
    if not buffered:
        assert "buffered mode not available: gpipe.pipe() takes no bufsize" in out
    memory = results["memory"]
    assert set(memory["idle_pipe_bytes"]) == {"gevent", "threading"}
    assert all(size > 0 for size in memory["idle_pipe_bytes"].values())
    assert memory["pairs_ratio"] > 0
    assert "idle pipe, both ends" in out


def test_smoke_writes_rst_and_plot(smoke: dict[str, Any]) -> None:
    paths = smoke["paths"]
    rst = paths["rst"].read_text()
    assert rst.count(".. list-table::") == 3
    for label in (label for kind, (label, _) in _bench.KINDS.items()):
        assert f"   * - {label}\n" in rst
    out = smoke["proc"].stdout
    if importlib.util.find_spec("matplotlib") is None:
        assert "plot skipped: matplotlib is not installed" in out
        assert not paths["plot"].exists()
    else:
        assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fake(rates: dict[tuple[str, int], float]) -> dict[str, Any]:
    return {
        "cases": [
            {"kind": kind, "size": size, "mb_per_s": rate} for (kind, size), rate in rates.items()
        ]
    }


def test_goal_ratios() -> None:
    rates = {(kind, size): 100.0 for kind in _bench.KINDS for size in _bench.SIZES}
    rates["gevent-readinto", 64] = 150.0  # 1.5x Channel + copy
    rates["gevent-readinto", 4096] = 50.0  # 0.5x
    rates["threading-read", 65536] = 89.0  # 0.89x readinto
    goals = {g["goal"]: g for g in _bench.goals(_fake(rates))}
    assert goals["gevent readinto / Channel + copy, 64 B"]["ratio"] == pytest.approx(1.5)
    assert goals["gevent readinto / Channel + copy, 64 B"]["pass"] is True
    assert goals["gevent readinto / Channel + copy, 4 KiB"]["pass"] is False
    assert goals["gevent readinto / os.pipe, 64 KiB"]["ratio"] == pytest.approx(1.0)
    assert goals["gevent readinto / os.pipe, 64 KiB"]["pass"] is False  # goal 4x
    assert goals["threading read(n) / readinto, 64 KiB"]["pass"] is False
    assert goals["threading read(n) / readinto, 1 MiB"]["pass"] is True
    buffered = goals["pipe(65536) / os.pipe, 64 B writes"]
    assert buffered["ratio"] is None
    assert buffered["pass"] is None


def test_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gpipe", "bench", "--rounds", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert proc.returncode == 2
    assert "--rounds and --target must be positive" in proc.stderr


def test_replot(smoke: dict[str, Any], tmp_path: Path) -> None:
    """benchmarks/plot.py draws a saved JSON file again."""
    pytest.importorskip("matplotlib")
    script = Path(__file__).parent.parent / "benchmarks" / "plot.py"
    if not script.exists():
        pytest.skip("benchmarks/ is not in this tree")
    out = tmp_path / "again.png"
    subprocess.run(
        [sys.executable, str(script), str(smoke["paths"]["json"]), str(out)],
        check=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
