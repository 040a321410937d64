"""The builds: ``pip install .`` compiles the core where it can, installs
pure Python where it cannot, and ``PURE_PYTHON=1`` picks pure Python.

Each case installs this checkout (without dependencies: this process
has them) into a directory of its own, and imports it from there in a
fresh interpreter. Slow (a build with Cython in an isolated build
environment), so run by the ``integration`` env.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# The install under test, not this checkout's editable install (whose
# import hook an environment may hold).
PROBE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
import gpipe
assert gpipe.__file__.startswith(sys.argv[1]), gpipe.__file__
print(gpipe.COMPILED, repr(gpipe.pipe()[0]).split()[3])
"""


# No dependencies (this process has them), and no wheel cached by an
# earlier build of the same source.
PIP_OPTIONS = ("--no-deps", "--no-cache-dir")


def install(target: str, **env: str) -> None:
    # A copy without build products, so that nothing built in the
    # checkout (an in-place extension) is taken for this build's.
    source = os.path.join(target, "src")
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".tox", ".git", "build", "*.so", "*.egg-info", ".venv"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *PIP_OPTIONS, "--target", target, source],
        check=True,
        timeout=500,
        env={**os.environ, **env},
    )


def probe(target: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PURE_PYTHON")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, target],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=target,
        env={**clean, "PYTHONPATH": target, **env},
    )
    return done.stdout.strip()


EXTENSIONS = ("_gpipe_c_backends", "_gpipe_c_core", "_gpipe_c_mutex")


def built(target: str) -> list[str]:
    """The extensions installed in *target*, by module name."""
    names = os.listdir(os.path.join(target, "gpipe"))
    return sorted(name.split(".")[0] for name in names if name.endswith(".so"))


def test_install_compiles_the_core(tmp_path):
    install(str(tmp_path))
    assert built(str(tmp_path)) == list(EXTENSIONS)
    assert probe(str(tmp_path)) == "True compiled"
    # PURE_PYTHON=1 at import time: the same install runs pure Python.
    assert probe(str(tmp_path), PURE_PYTHON="1") == "False pure"


def test_install_without_a_compiler_is_pure(tmp_path):
    # No C compiler: the build of the extension fails, the install does not.
    install(str(tmp_path), CC="false", LDSHARED="false")
    assert not [name for name in os.listdir(tmp_path / "gpipe") if name.endswith(".so")]
    assert probe(str(tmp_path)) == "False pure"


def test_the_sdist_builds_the_compiled_build(tmp_path):
    """An sdist holds what the build needs (the .pxd and .pyx files
    beside the .py): installed from it, gpipe runs compiled."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".tox", ".git", "build", "*.so", "*.egg-info", ".venv"),
    )
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=source,
        env={**os.environ, "PURE_PYTHON": "1"},  # (no need to cythonize to list the files)
    )
    (sdist,) = (tmp_path / "dist").iterdir()
    target = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            *PIP_OPTIONS,
            "--target",
            str(target),
            str(sdist),
        ],
        check=True,
        timeout=500,
    )
    assert built(str(target)) == list(EXTENSIONS)
    assert probe(str(target)) == "True compiled"
