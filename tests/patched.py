"""Run the test suite in a process monkey-patched before anything else.

``python tests/patched.py [pytest arguments]``

:func:`gevent.monkey.patch_all` is called first, then :func:`pytest.main`,
so every test also covers a program that patched the standard library:
``threading`` is greenlets there, and the tests that need an OS thread
take one from :func:`gevent.monkey.get_original`. pytest-timeout's
default method is a ``threading.Timer``, which patching turns into a
greenlet that cannot fire while an OS thread is blocked; SIGALRM can.
"""

from gevent import monkey

monkey.patch_all()

if __name__ == "__main__":
    # Imported only now, after patching, like everything else.
    import os
    import sys

    import pytest

    # Run from the checkout like ``python -m pytest``, not from tests/.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, os.path.dirname(here))
    assert monkey.is_module_patched("threading")
    sys.exit(pytest.main(["-o", "timeout_method=signal", *sys.argv[1:]]))
