"""The instruction-count benchmark still runs (a tiny run, where valgrind exists)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "callgrind.py"
)


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_callgrind_benchmark_runs(tmp_path):
    out = tmp_path / "callgrind.json"
    done = subprocess.run(
        [sys.executable, SCRIPT, "--handoffs", "100", "--cases", "floor,gpipe", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "instructions/handoff" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["handoffs"] == 100
    for case in ("floor", "gpipe"):
        # Start-up subtracted: what is left is a handoff's worth, not millions.
        assert 1_000 < figures["cases"][case]["per_handoff"] < 1_000_000, figures


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_callgrind_benchmark_counts_cache_misses(tmp_path):
    out = tmp_path / "callgrind.json"
    command = [sys.executable, SCRIPT, "--handoffs", "100", "--cases", "floor"]
    done = subprocess.run(
        [*command, "--cache", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "L1 misses/handoff" in done.stdout
    misses = json.loads(out.read_text())["cases"]["floor"]["misses_per_handoff"]
    assert misses["L1"] == misses["I1mr"] + misses["D1mr"] + misses["D1mw"]
    assert 0 < misses["L1"] < 100_000, misses
