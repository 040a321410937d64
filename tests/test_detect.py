"""Backend auto-detection, each case in a fresh interpreter.

Monkey-patching cannot be undone and importing gevent cannot be
forgotten, so every program here runs in its own subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import gpipe


def run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_threads_without_gevent():
    out = run(
        """
        import sys, threading
        import gpipe
        assert "gevent" not in sys.modules, "importing gpipe imported gevent"
        assert gpipe.detect_backend() == "threading"
        r, w = gpipe.pipe()
        t = threading.Thread(target=lambda: (w.write(b"x" * 100000), w.close()))
        t.start()
        data = r.read()
        t.join()
        assert len(data) == 100000
        assert "gevent" not in sys.modules, "a threading pipe imported gevent"
        print(r.backend)
        """
    )
    assert out == "threading"


def test_patched_program_with_threads():
    out = run(
        """
        from gevent import monkey
        monkey.patch_all()
        import threading
        import gpipe
        assert monkey.is_module_patched("threading")
        assert gpipe.detect_backend() == "gevent"
        r, w = gpipe.pipe()
        # Patched "threads" are greenlets: a threading backend would block
        # the hub here and deadlock.
        t = threading.Thread(target=lambda: (w.write(b"y" * 100000), w.close()))
        t.start()
        data = r.read()
        t.join()
        assert data == b"y" * 100000
        print(r.backend)
        """
    )
    assert out == "gevent"


def test_unpatched_program_with_greenlets():
    out = run(
        """
        import gevent
        from gevent import monkey
        import gpipe
        assert not monkey.is_module_patched("threading")
        assert gpipe.detect_backend() == "gevent"
        r, w = gpipe.pipe()
        g = gevent.spawn(lambda: (w.write(b"z" * 100000), w.close()))
        data = r.read()
        g.get(timeout=10)
        assert data == b"z" * 100000
        print(r.backend)
        """
    )
    assert out == "gevent"


def test_decided_per_call_not_at_import():
    out = run(
        """
        import gpipe
        first = gpipe.detect_backend()
        r1, w1 = gpipe.pipe()
        import gevent
        r2, w2 = gpipe.pipe()
        print(first, r1.backend, gpipe.detect_backend(), r2.backend)
        for end in (r1, w1, r2, w2):
            end.close()
        """
    )
    assert out == "threading threading gevent gevent"


def test_import_has_no_side_effects():
    out = run(
        """
        import sys
        import gpipe
        assert "gevent" not in sys.modules
        import gevent, gevent.monkey
        from gevent._hub_local import get_hub_if_exists
        assert get_hub_if_exists() is None, "a hub was created"
        assert not gevent.monkey.is_module_patched("threading")
        assert not gevent.monkey.is_module_patched("socket")
        print("ok")
        """
    )
    assert out == "ok"


@pytest.mark.parametrize("backend", ["gevent", "threading"])
def test_forced_backend(backend):
    r, w = gpipe.pipe(backend=backend)
    with r, w:
        assert r.backend == w.backend == backend
