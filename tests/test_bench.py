"""The benchmark command runs and reports every case; no timing is asserted.

The smoke run is a subprocess: the benchmark must run in a process of its
own (it refuses a monkey-patched one), and its timings must not share an
interpreter with the test suite's greenlets and threads.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gevent import monkey

from gpipe._bench import cases, report

# The smoke run takes a few seconds; far above that means it hangs.
SMOKE_TIMEOUT = 120


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpipe", "bench", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )


HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    paths = {
        "json": tmp / "out" / "results.json",  # a missing folder is created
        "plot": tmp / "results.png",
        "rst": tmp / "table.rst",
    }
    if not HAS_MATPLOTLIB:
        del paths["plot"]  # --plot refuses to run without it (see test_cli)
    proc = bench(
        "--quick",
        "--seed",
        "7",
        *[arg for name, path in paths.items() for arg in (f"--{name}", str(path))],
    )
    assert proc.returncode == 0, proc.stderr
    return {
        "proc": proc,
        "paths": paths,
        "results": json.loads(paths["json"].read_text()),
    }


def expected_cases() -> set[tuple[str, int]]:
    expected = {(kind, size) for kind in cases.KINDS for size in cases.SIZES}
    if cases.has_bufsize():
        expected |= {(kind, cases.SMALL_WRITE) for kind in cases.BUFFERED_KINDS}
    expected |= {(kind, cases.LINE_WRITE) for kind in cases.LINE_KINDS}
    return expected


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_smoke_has_every_case(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    expected = expected_cases()
    assert {(r["kind"], r["size"]) for r in results["cases"]} == expected
    rounds = results["meta"]["rounds"]
    for record in results["cases"]:
        assert record["count"] > 0
        assert record["bytes"] == record["count"] * record["size"]
        assert len(record["times_s"]) == len(record["rates"]) == rounds
        assert record["rate_min"] <= record["rate"] <= record["rate_max"]
    # Every round ran every case once.
    assert len(results["orders"]) == rounds
    for order in results["orders"]:
        assert sorted(order) == sorted(f"{kind}/{size}" for kind, size in expected)


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_smoke_says_its_figures_mean_nothing(smoke: dict[str, Any]) -> None:
    out = smoke["proc"].stdout
    assert out.splitlines()[0] == (
        "SMOKE RUN (--quick): tiny byte totals, few rounds; these figures mean nothing."
    )
    # No verdicts without --check.
    assert "PASS" not in out
    assert "MISS" not in out
    assert "goal" not in out


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_smoke_compares_gpipe_with_each_peer(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    out = smoke["proc"].stdout
    found = {(c["kind"], c["size"]): c for c in results["comparisons"]}
    for kind, size in expected_cases():
        spec = cases.ALL_KINDS[kind]
        if spec.reference is None:
            assert (kind, size) not in found
            continue
        comparison = found[kind, size]
        assert comparison["reference"] == spec.reference
        assert comparison["ratio_min"] <= comparison["ratio"] <= comparison["ratio_max"]
        assert len(comparison["ratios"]) == results["meta"]["rounds"]
        assert report.ratio_range(comparison) in out
    for label in (spec.label for spec in cases.ALL_KINDS.values()):
        assert label in out


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_smoke_fairness_and_memory(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    out = smoke["proc"].stdout
    streams = results["fairness"]["streams"]
    assert set(streams) == {"gpipe", "channel-copy"}
    for stream in streams.values():
        assert stream["worst_ms"] >= stream["worst_ms_min"]
        assert stream["label"] in out
    memory = results["memory"]
    assert set(memory["idle_pipe_bytes"]) == {"gevent", "threading"}
    assert all(size > 0 for size in memory["idle_pipe_bytes"].values())
    assert memory["pairs_ratio"] > 0
    assert set(memory["pairs_median_s"]) == {"gpipe", "channel-copy", "floor"}
    med = memory["pairs_median_s"]
    assert memory["pairs_floor_ratio"] == med["channel-copy"] / med["floor"]
    assert memory["pairs_gpipe_floor_ratio"] == med["floor"] / med["gpipe"]
    assert "idle pipe, both ends, bytes: gevent " in out
    assert "floor: 2 Semaphores + copy" in out


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_smoke_writes_rst_and_plot(smoke: dict[str, Any]) -> None:
    paths = smoke["paths"]
    rst = paths["rst"].read_text()
    assert "A smoke run (``--quick``): these figures mean nothing." in rst
    assert rst.count(".. list-table::") == 6
    for spec in cases.KINDS.values():
        assert f"   * - {spec.label}\n" in rst
    if HAS_MATPLOTLIB:
        assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fake(rates: dict[tuple[str, int], float | list[float]]) -> dict[str, Any]:
    """Results with the given rates: one per round, or one round's."""
    records = []
    for (kind, size), given in rates.items():
        per_round = given if isinstance(given, list) else [given]
        records.append(
            {
                "kind": kind,
                "size": size,
                "reference": cases.ALL_KINDS[kind].reference,
                "rates": per_round,
                "rate": statistics.median(per_round),
            }
        )
    return {"cases": records, "comparisons": report.comparisons(records)}


def test_readinto1_is_the_headline() -> None:
    """Every case between greenlets or threads is compared with readinto1."""
    headline = {"greenlets": "gevent-readinto1", "threads": "threading-readinto1"}
    for kind, spec in cases.KINDS.items():
        if kind == headline[spec.group]:
            assert spec.reference is None
        else:
            assert spec.reference == headline[spec.group], kind
    assert cases.BUFFERED_KINDS["gevent-buffered"].label == "gpipe pipe(65536) readinto1"


def test_consumer_modes() -> None:
    # The thread cases start threading.Thread, a greenlet once patched
    # (tests/patched.py): there the benchmark never runs, but in a process
    # of its own.
    threads = not monkey.is_module_patched("threading")
    for mode in cases.MODES:
        assert cases.gpipe_greenlets(64, 10, mode=mode) > 0
        if threads:
            assert cases.gpipe_threads(64, 10, mode=mode) > 0
    assert cases.gpipe_greenlets(64, 10, mode="readinto1", bufsize=256) > 0
    with pytest.raises(ValueError, match=r"mode must be one of .*, not 'readline'"):
        cases.consumer(None, "readline", 64)


def test_goals() -> None:
    rates: dict[tuple[str, int], float | list[float]] = {
        (kind, size): 100.0 for kind in cases.KINDS for size in cases.SIZES
    }
    rates["semaphore-floor", 64] = 200.0  # gpipe at 0.5x the floor
    rates["semaphore-floor", 4096] = 125.0  # gpipe at 0.8x the floor
    rates["os-pipe", 64 * 1024] = 20.0  # gpipe at 5x os.pipe
    rates["gevent-readinto", 64] = 95.0  # at 1.05x the cost of readinto1
    rates["gevent-read", 1 << 20] = 80.0  # at 1.25x the cost of readinto1
    rates["lines-raw", cases.LINE_WRITE] = 10.0
    rates["lines-buffered", cases.LINE_WRITE] = 40.0  # raw at 0.25x
    results = _fake(rates)
    results["fairness"] = {"streams": {"gpipe": {"worst_ms": 25.0}}}
    results["memory"] = {
        "idle_pipe_bytes": {"gevent": 449.0, "threading": 450.0},
        "pairs_ratio": 0.75,
    }
    goals = {g["goal"]: g for g in report.goals(results)}
    assert len(goals) == 17

    def check(name: str, value: float, passed: bool) -> None:
        assert goals[name]["value"] == pytest.approx(value)
        assert goals[name]["passed"] is passed

    check("gpipe gevent readinto1 / Semaphore floor, 64 B", 0.5, False)
    check("gpipe gevent readinto1 / Semaphore floor, 4 KiB", 0.8, True)
    check("gpipe gevent readinto1 / os.pipe, 64 KiB", 5.0, True)
    check("gpipe gevent readinto1 / memoryview copy, 1 MiB", 1.0, True)
    for size in ("64 B", "4 KiB", "64 KiB", "1 MiB"):
        for label in ("gpipe gevent readinto", "gpipe gevent read(n)"):
            name = f"{label}, cost / readinto1's, {size}"
            assert goals[name]["op"] == "<="
            assert goals[name]["target"] == 1.1
    check("gpipe gevent readinto, cost / readinto1's, 64 B", 100 / 95, True)
    check("gpipe gevent readinto, cost / readinto1's, 1 MiB", 1.0, True)
    check("gpipe gevent read(n), cost / readinto1's, 64 B", 1.0, True)
    check("gpipe gevent read(n), cost / readinto1's, 1 MiB", 1.25, False)
    check("lines: raw reader / io.BufferedReader", 0.25, False)
    check("fairness: gpipe stream, sleeper's worst lateness", 25.0, False)
    check("concurrent greenlet pairs, gpipe's speed / Channel + copy's", 0.75, False)
    check("idle pipe, both ends, gevent backend", 449.0, True)
    check("idle pipe, both ends, threading backend", 450.0, False)
    text = report.format_check({"goals": list(goals.values())})
    assert "  MISS gpipe gevent readinto1 / Semaphore floor, 64 B: 0.50x (goal >= 0.80x)" in text
    assert "  MISS gpipe gevent read(n), cost / readinto1's, 1 MiB: 1.25x (goal <= 1.10x)" in text
    assert "  PASS idle pipe, both ends, gevent backend: 449 bytes (goal < 450 bytes)" in text


def test_cost_goal_is_a_ratio_of_medians() -> None:
    """readinto's cost is readinto1's median throughput over readinto's."""
    results = _fake(
        {
            ("gevent-readinto1", 64): [10.0, 20.0, 30.0],
            ("gevent-readinto", 64): [30.0, 10.0, 16.0],
        }
    )
    # The median of the rounds' ratios (1/3, 2, 1.875) would be 1.875.
    comparison = report.ratio(results, "gevent-readinto", 64)
    assert comparison is not None and comparison["ratio"] == 1.875
    assert report.cost_ratio(results, "gevent-readinto", 64) == 20 / 16
    assert report.cost_ratio(results, "gevent-read", 64) is None
    assert report.cost_ratio(results, "gevent-readinto", 4096) is None


def test_goals_not_measured() -> None:
    goals = report.goals(_fake({}))
    assert goals
    assert all(g["value"] is None and g["passed"] is None for g in goals)
    assert "n/a  idle pipe, both ends, gevent backend: not measured" in report.format_check(
        {"goals": goals}
    )


def test_comparison_is_per_round() -> None:
    records = [
        {"kind": "gevent-readinto1", "size": 64, "reference": None, "rates": [10.0, 20.0, 30.0]},
        {"kind": "channel-copy", "size": 64, "reference": "gevent-readinto1", "rates": [5, 20, 10]},
    ]
    (comparison,) = report.comparisons(records)
    assert comparison["ratios"] == [2.0, 1.0, 3.0]
    assert (comparison["ratio"], comparison["ratio_min"], comparison["ratio_max"]) == (2, 1, 3)
    assert report.ratio_range(comparison) == "2.00x (1.00-3.00)"


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_check_reports_goals(tmp_path: Path) -> None:
    proc = bench(
        "--quick", "--check", "--rounds", "1", "--no-memory", "--json", str(tmp_path / "r.json")
    )
    assert proc.returncode in (0, 1), proc.stderr
    goals = json.loads((tmp_path / "r.json").read_text())["goals"]
    missed = [g for g in goals if g["passed"] is False]
    assert proc.returncode == (1 if missed else 0)
    assert "goals:\n" in proc.stdout
    for g in goals:
        verdict = {None: "n/a ", True: "PASS", False: "MISS"}[g["passed"]]
        assert f"  {verdict} {g['goal']}: " in proc.stdout
    assert "(a smoke run: these verdicts mean nothing either)" in proc.stdout


@pytest.mark.timeout(SMOKE_TIMEOUT)
@pytest.mark.parametrize(
    "args, message",
    [
        (["--rounds", "0"], "--rounds must be at least 1, not 0"),
        (["--target", "0"], "--target must be between 0 and 60 seconds, not 0.0"),
        (["--rounds", "x"], "argument --rounds: invalid int value: 'x'"),
        (["--json", "/proc/nowhere/r.json"], "cannot create the folder of /proc/nowhere/r.json"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    proc = bench(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("python -m gpipe bench: error: ")
    assert message in proc.stderr


@pytest.mark.timeout(SMOKE_TIMEOUT)
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
