"""How the compiled build is chosen: gevent's ``PURE_PYTHON`` and
``import_c_accel`` (``gevent._compat``, ``gevent._util``)."""

from __future__ import annotations

import importlib
import os
from typing import Any

#: Set (to anything but an empty string) in the environment, it makes
#: gpipe (and gevent) run their pure-Python code.
PURE_PYTHON = bool(os.environ.get("PURE_PYTHON"))


def import_c_accel(globs: dict[str, Any], cname: str) -> None:
    """Replace the module whose globals are *globs* by its compiled build
    *cname*, if that was built and ``PURE_PYTHON`` is not set."""
    name = globs.get("__name__")
    if not name or name == cname or PURE_PYTHON:
        return  # exec'd as a file, the compiled build itself, or opted out
    try:
        mod = importlib.import_module(cname)
    except ImportError:
        return  # installed without a compiler: the pure build runs
    # Adopting its whole namespace gives the right __file__ and leaks
    # nothing the pure module imported.
    globs.clear()
    globs.update(mod.__dict__)
