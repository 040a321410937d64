"""README.md as written: every Python block runs, every shell recipe works.

The blocks are taken from the README by pytest-codeblocks' extractor.
Each Python block runs on its own, in a fresh interpreter in development
mode with warnings as errors, so a block that leaves an end open
(``ResourceWarning``) or forgets an import fails.

The shell recipes -- ``python -m gpipe serve`` and curl, and "One
application, three servers" -- run in the ``integration`` env only: each
from a fresh virtual environment that has what the README says to install
and nothing else, against servers started here on 127.0.0.1 with a free
port (the README's ports are replaced).
"""

from __future__ import annotations

import builtins
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import symtable
import sys
import threading
from pathlib import Path

import pytest

pytest_codeblocks = pytest.importorskip("pytest_codeblocks", reason="pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = pytest_codeblocks.extract_from_file(README)
PYTHON = [b for b in BLOCKS if b.syntax == "python"]
SHELL = [b for b in BLOCKS if b.syntax == "sh"]

TIMEOUT = 60


def block_id(block: pytest_codeblocks.CodeBlock) -> str:
    return f"line{block.lineno}"


def shell_block(marker: str) -> pytest_codeblocks.CodeBlock:
    """The one shell block of the README that contains *marker*."""
    found = [b for b in SHELL if marker in b.code]
    assert len(found) == 1, f"{len(found)} shell blocks contain {marker!r}"
    return found[0]


def unbound_globals(code: str) -> set[str]:
    """Names the block's functions and module body use but never bind.

    A function that is defined and never called would hide a missing
    import from a run; this finds it anyway.
    """
    top = symtable.symtable(code, "README.md", "exec")
    bound = {
        s.get_name()
        for s in top.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    }
    used: set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for s in table.get_symbols():
            if s.is_referenced() and (table is top or s.is_global()):
                used.add(s.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return used - bound - set(dir(builtins))


def test_blocks_found():
    """The extractor sees the README's blocks (a broken fence would hide them)."""
    assert len(PYTHON) >= 5
    assert len(SHELL) >= 5


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("block", PYTHON, ids=block_id)
def test_python_block(block, tmp_path):
    """The block runs as written, clean under ``python -X dev -W error``."""
    assert not unbound_globals(block.code), "used but never imported or assigned"
    script = tmp_path / "block.py"
    script.write_text(block.code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # An unraisable ResourceWarning is printed, not raised: nothing may be.
    assert proc.stderr == ""


def test_unbound_globals_finds_a_missing_import():
    """The check above would have caught the README's old csv example."""
    code = "def produce(writer, rows):\n    csv.writer(writer).writerows(rows)\n"
    assert unbound_globals(code) == {"csv"}
    assert unbound_globals("import csv\n" + code) == set()


def test_gunicorn_needs_packaging():
    """The README says what gunicorn's gevent worker needs to start."""
    line = next(
        line for line in shell_block("gunicorn -k gevent").code.splitlines() if "gunicorn" in line
    )
    assert re.search(r"# pip install gunicorn packaging$", line), line


def test_changelog_linked():
    assert "(docs/changelog.rst)" in README.read_text()
    assert (ROOT / "docs" / "changelog.rst").exists()


# -- the shell recipes, from fresh virtual environments ------------------------

INSTALL_TIMEOUT = 600
# Far above what a passing request needs; only a hang reaches it.
IO_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checkout_copy(dest: Path) -> Path:
    """A copy of this checkout without build products or version control.

    ``pip install .`` builds in the source tree; a copy keeps this one clean.
    """
    shutil.copytree(
        ROOT,
        dest,
        ignore=shutil.ignore_patterns(
            ".git", ".tox", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*cache"
        ),
    )
    return dest


class Venv:
    """A fresh virtual environment; commands run with its ``bin`` first on PATH."""

    def __init__(self, path: Path, checkout: Path) -> None:
        self.path = path
        self.checkout = checkout
        subprocess.run(
            [sys.executable, "-m", "venv", str(path)], check=True, timeout=INSTALL_TIMEOUT
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDEVMODE")
            and not k.startswith("TOX_")
        }
        env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(path)
        self.env = env

    def sh(
        self, script: str, cwd: Path, timeout: float = IO_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run *script* with bash; its output (stdout and stderr apart)."""
        return subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def install(self, command: str) -> None:
        proc = self.sh(command, self.checkout, timeout=INSTALL_TIMEOUT)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-4000:])


class ShellServer:
    """A server started from a README line; its address is 127.0.0.1:*port*.

    Ready once it says so: ``serving on http://...`` (gpipe's servers) or
    gunicorn's ``Listening at: http://...`` on stderr. Its later output is
    collected by a thread, so that a full pipe never blocks it.
    """

    READY = re.compile(r"serving on http://|Listening at: http://")

    def __init__(self, venv: Venv, line: str, cwd: Path, port: int) -> None:
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=cwd,
            env=venv.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], IO_TIMEOUT)
            text = self.proc.stdout.readline() if ready else ""
            self.output.append(text)
            if not text:
                self.stop()
                pytest.fail(f"{line!r} did not start:\n{''.join(self.output)}")
            if self.READY.search(text):
                assert f"127.0.0.1:{port}" in text, text
                break
        self._drain = threading.Thread(target=self._collect, daemon=True)
        self._drain.start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self.output.append(text)

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def quick_start_install() -> str:
    """The Quick start's install command, without the demo that follows it."""
    code = next(b.code for b in SHELL if "pip install -e ." in b.code)
    install, _, _ = code.strip().partition(" && ")
    assert install == "python3 -m pip install -e .", code
    return install


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout_copy(tmp_path_factory.mktemp("readme") / "gpipe")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, checkout: Path) -> Venv:
    """gpipe installed as the Quick start says, and nothing else."""
    env = Venv(tmp_path_factory.mktemp("venv") / "venv", checkout)
    env.install(quick_start_install())
    return env


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT)
def test_quick_start(venv):
    """The Quick start's first command, whole: install, then the demo."""
    code = next(b.code for b in SHELL if "pip install -e ." in b.code).strip()
    proc = venv.sh(code, venv.checkout, timeout=INSTALL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "two greenlets, gevent backend:" in proc.stdout
    assert "two OS threads, threading backend:" in proc.stdout
    # And it ran the compiled build that the install built (this machine
    # has a compiler): run in the checkout, as the Quick start runs it.
    version = venv.sh("python3 -m gpipe --version", venv.checkout, timeout=INSTALL_TIMEOUT)
    assert "(compiled)" in version.stdout, version.stdout + version.stderr


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT)
def test_serve_recipe(venv, tmp_path):
    """The "Try it" block, line by line as written, on a free port."""
    code = shell_block("python -m gpipe serve --port 8080 &").code
    port = free_port()
    lines = [line.replace(":8080", f":{port}") for line in code.splitlines()]
    server_line = lines[0]
    assert server_line == "python -m gpipe serve --port 8080 &", server_line
    server = ShellServer(venv, server_line.replace("8080", str(port)).rstrip(" &"), tmp_path, port)
    try:
        proc = venv.sh("\n".join(lines[1:]), tmp_path, timeout=INSTALL_TIMEOUT)
    finally:
        server.stop()
    assert proc.stderr == "", proc.stderr
    out = proc.stdout.splitlines()
    digest = next(line.split()[0] for line in out if line.endswith("  big.bin"))
    uploads = [json.loads(line) for line in out if line.startswith('{"size"')]
    assert uploads == [{"size": 100 * 2**20, "sha256": digest}] * 2
    assert "all parts OK" in out
    assert "18" in out  # the failing archive: curl's exit status
    assert '{"waited": 2.0}' in out
    assert 3 <= out.count("") <= 5  # the heartbeats, every 0.5 s for 2 s
    stats = json.loads(next(line for line in out if line.startswith('{"producers"')))
    assert stats["producers"] == stats["consumers"] == 0
    assert "ResourceWarning" not in server.log()


def three_servers() -> list[tuple[str, str]]:
    """The lines of "One application, three servers": (command, comment)."""
    lines = []
    for line in shell_block("gunicorn -k gevent").code.splitlines():
        command, _, comment = line.partition("#")
        lines.append((command.strip(), comment.strip()))
    return lines


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT)
@pytest.mark.parametrize("index", [0, 1, 2], ids=["pywsgi", "gunicorn", "threaded"])
def test_three_servers(venv, checkout, tmp_path_factory, index):
    """Each server line as written, on a free port, from a checkout.

    A line whose comment says ``pip install ...`` runs in a fresh venv
    that has gpipe and just that (gunicorn's gevent worker fails to boot
    without ``packaging``).
    """
    command, comment = three_servers()[index]
    env = venv
    if comment.startswith("pip install "):
        env = Venv(tmp_path_factory.mktemp("venv") / "venv", checkout)
        env.install(quick_start_install())
        env.install(comment)
    port = free_port()
    assert re.search(r"\b8000\b", command), command
    server = ShellServer(env, re.sub(r"\b8000\b", str(port), command), checkout, port)
    work = tmp_path_factory.mktemp("client")
    threaded = "threaded_server" in command
    url = f"http://127.0.0.1:{port}"
    script = f"""
        head -c 3000001 /dev/urandom > up.bin && sha256sum up.bin
        curl -s --max-time 60 --data-binary @up.bin {url}/upload
        curl -s --max-time 60 -o /dev/null -w '%{{http_code}}\\n' \\
            -H 'Transfer-Encoding: chunked' --data-binary @up.bin {url}/upload
        curl -s --max-time 60 '{url}/download?size=5000000&level=1' | tar xz
        (cd gpipe-download && sha256sum -c --quiet SHA256SUMS && echo all parts OK)
        curl -s --max-time 60 -o /dev/null '{url}/download?size=8388608&fail_at=2097152'
        echo "failing download: $?"
    """
    try:
        proc = env.sh(script, work)
    finally:
        server.stop()
    out = proc.stdout.splitlines()
    digest = out[0].split()[0]
    assert json.loads(out[1]) == {"size": 3000001, "sha256": digest}, server.log()
    # wsgiref takes no chunked request bodies, and says so.
    assert out[2] == ("411" if threaded else "200")
    assert out[3] == "all parts OK", proc.stderr
    # gevent.pywsgi and gunicorn cut the chunked body: curl exits 18. The
    # threaded server's HTTP/1.0 body ends by a clean close: curl exits 0.
    assert out[4] == f"failing download: {0 if threaded else 18}"
    assert "ResourceWarning" not in server.log()
    if comment.startswith("pip install "):
        assert "Booting worker" in server.log()
