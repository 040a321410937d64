"""``python -m gpipe``: help for users, one-line errors, the demo's progress.

Every command runs in a subprocess, as a user would run it.
"""

from __future__ import annotations

import itertools
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time

import pytest

TIMEOUT = 60
MiB = 1 << 20


def gpipe(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    # Development mode: a ResourceWarning (a socket left open on the way
    # out of an error, say) would show as more lines on stderr.
    return subprocess.run(
        [sys.executable, "-X", "dev", "-m", "gpipe", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    # One wording for every error of every command.
    assert re.fullmatch(r"python -m gpipe( \w+)?: error: .+ \(see --help\)\n", proc.stderr)


@pytest.mark.timeout(TIMEOUT)
def test_help_is_for_users():
    proc = gpipe("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m gpipe [-h] [--version] COMMAND ...\n")
    assert "Go's io.Pipe for gevent" in proc.stdout
    for command in ("demo", "serve", "bench"):
        assert re.search(rf"^    {command} +\S", proc.stdout, re.M), command
    # Not the module's docstring for developers.
    assert "add_arguments" not in proc.stdout
    assert "``" not in proc.stdout


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize(
    "command, words",
    [
        ("demo", ["--size", "--seconds", "--chunk"]),
        ("serve", ["--host", "--port", "/upload", "/download", "/wait", "/stats"]),
        ("bench", ["--quick", "--check", "--json", "--plot", "--rst", "os.pipe", "Channel"]),
    ],
)
def test_command_help(command, words):
    proc = gpipe(command, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: python -m gpipe {command} ")
    for word in words:
        assert word in proc.stdout
    assert "``" not in proc.stdout


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], r"^python -m gpipe: error: argument COMMAND: invalid choice: 'nope'"),
        (["--size", "abc"], r"^python -m gpipe demo: error: argument --size: not a number"),
        (["--size", "0"], r"argument --size: must be between 1 and"),
        (["--chunk", "-1"], r"argument --chunk: must be between 1 and"),
        (["--seconds", "0"], r"argument --seconds: must be between 0.01 and 3600"),
        (
            ["--size", "1", "--chunk", "2048"],
            r"^python -m gpipe demo: error: --size \(1 MiB\) is smaller than one chunk",
        ),
        (["serve", "--port", "abc"], r"^python -m gpipe serve: error: argument --port: not a port"),
        (["serve", "--port", "99999"], r"argument --port: must be between 0 and 65535, not 99999"),
        (["serve", "--bogus"], r"^python -m gpipe serve: error: unrecognized arguments: --bogus"),
        (["bench", "--rounds", "0"], r"^python -m gpipe bench: error: --rounds must be at least 1"),
        (["bench", "--target", "99"], r"^python -m gpipe bench: error: --target must be between"),
        (["bench", "--json", "/proc/x/r.json"], r"^python -m gpipe bench: error: cannot create"),
        (["bench", "--rst", "/"], r"^python -m gpipe bench: error: cannot write /"),
        (["bench", "--nope"], r"^python -m gpipe bench: error: unrecognized arguments: --nope"),
        (["demo", "--version"], r"^python -m gpipe demo: error: unrecognized arguments: --version"),
    ],
)
def test_bad_arguments(args, message):
    assert_one_line_error(gpipe(*args), message)


@pytest.mark.timeout(TIMEOUT)
def test_version():
    """The versions and the build, without running a command."""
    proc = gpipe("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    code = (
        "import gevent, gpipe, platform;"
        "build = 'compiled' if getattr(gpipe, 'COMPILED', False) else 'pure Python';"
        "print(f'gpipe {gpipe.__version__} ({build}), gevent {gevent.__version__},"
        " {platform.python_implementation()} {platform.python_version()}')"
    )
    expected = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=TIMEOUT
    ).stdout
    assert proc.stdout == expected
    assert re.fullmatch(r"gpipe \S+ \((compiled|pure Python)\), gevent \S+, \w+ \S+\n", expected)


@pytest.mark.timeout(TIMEOUT)
def test_bench_plot_needs_matplotlib(tmp_path):
    """Without matplotlib, --plot fails at once, before the benchmark runs."""
    # A matplotlib that cannot be imported, first on the path.
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('not here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-m", "gpipe", "bench", "--quick", "--plot", "p.png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert_one_line_error(
        proc, r"^python -m gpipe bench: error: --plot needs matplotlib, which is not installed"
    )
    assert proc.stdout == ""
    assert not (tmp_path / "p.png").exists()


@pytest.mark.timeout(TIMEOUT)
def test_serve_busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = gpipe("serve", "--port", str(port))
    assert_one_line_error(
        proc,
        rf"^python -m gpipe serve: error: cannot listen on 127.0.0.1 port {port}:"
        r" Address already in use \(see --help\)$",
    )


@pytest.mark.timeout(TIMEOUT)
def test_serve_unknown_host():
    proc = gpipe("serve", "--host", "999.1.1.1", "--port", "0")
    assert_one_line_error(
        proc, r"^python -m gpipe serve: error: cannot listen on 999.1.1.1 port 0: "
    )


@pytest.mark.timeout(TIMEOUT)
def test_demo_not_a_terminal():
    """Piped into a file: one result line per backend, no carriage returns."""
    proc = gpipe("--seconds", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0] == "gpipe demo: streaming for 0.3 s in 64 KiB writes, read with readinto()"
    assert lines[1] == "two greenlets, gevent backend:"
    assert re.fullmatch(r"  gevent +[\d.]+ MiB +[\d.]+ MB/s  done in 0\.\d\d s", lines[2])
    assert lines[3] == "two OS threads, threading backend:"
    assert re.fullmatch(r"  threading +[\d.]+ MiB +[\d.]+ MB/s  done in 0\.\d\d s", lines[4])
    assert len(lines) == 5


@pytest.mark.timeout(TIMEOUT)
def test_demo_fixed_size():
    proc = gpipe("--size", "3", "--chunk", "1024")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("gpipe demo: streaming 3 MiB in 1024 KiB")
    assert proc.stdout.count("     3.0 MiB") == 2


@pytest.mark.timeout(TIMEOUT)
def test_demo_progress_on_a_terminal():
    """On a terminal the default run lasts about a second per backend, with
    a progress update every 0.1 s (well within 0.2 s)."""
    controller, terminal = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpipe"], stdout=terminal, stderr=subprocess.PIPE
    )
    os.close(terminal)
    # When each update arrives, as the terminal sees it.
    arrivals: list[tuple[float, bytes]] = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], TIMEOUT)
            assert ready, "the demo went silent"
            try:
                data = os.read(controller, 4096)
            except OSError:  # the demo exited: EIO on Linux
                break
            if not data:
                break
            arrivals.append((time.monotonic() - start, data))
        assert proc.wait(TIMEOUT) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(controller)
        if proc.stderr:
            proc.stderr.close()
    text = b"".join(data for _, data in arrivals).decode()
    # The updates reached the terminal as they were written, not at the end:
    # the first one a good while before the second run (about 1 s) ended.
    so_far = itertools.accumulate(data for _, data in arrivals)
    first = next(t for (t, _), seen in zip(arrivals, so_far, strict=True) if b"\r  gevent " in seen)
    assert arrivals[-1][0] - first >= 0.5, arrivals
    for backend in ("gevent", "threading"):
        # When the demo wrote each update, by its own clock: the time it
        # streamed, as its MiB and MB/s figures give it. (Not when this
        # process read them: on a busy machine several updates can wait
        # in the terminal and arrive in one read.)
        figures = re.findall(rf"\r  {backend} +([\d.]+) MiB +([\d.]+) MB/s(?!  done)", text)
        updates = [float(mib) * MiB / (float(rate) * 1e6) for mib, rate in figures if float(rate)]
        # About 1 s of streaming with an update every 0.1 s. The bounds leave
        # room for a busy machine that pauses the demo now and then.
        assert len(updates) >= 4, (backend, text)
        gaps = sorted(b - a for a, b in itertools.pairwise(updates))
        assert gaps[len(gaps) // 2] <= 0.2, (backend, gaps)
        assert gaps[-1] <= 1.0, (backend, gaps)
        assert re.search(rf"\r  {backend} +[\d.]+ MiB +[\d.]+ MB/s  done in [01]\.\d\d s", text)
