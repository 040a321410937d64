"""A real SIGINT barrage while a pipe streams: nothing lost, duplicated or stuck.

Each case runs ``tests/_sigint_stream.py`` in a process of its own (a
hang there cannot wedge this run: the process is killed after
``LIMIT`` seconds and the case fails). There, a helper thread sends
SIGINT to the main thread every 0.5-5 ms while the writer streams for
``SECONDS``; both sides retry the calls that :exc:`KeyboardInterrupt`
interrupted, and the bytes read must be exactly what the writes reported
delivered (their return values, and ``consumed`` of the interrupted
ones). Signals are handled in the main thread only: each case puts one
side there, the other in a greenlet (gevent) or an OS thread
(threading).

Compiled, a signal handler can run inside a pipe call only where the
call waits (the gevent hub, a native lock's interrupted acquire): the
core, its mutex and the backends run no Python code of their own. Most
signals of the barrage are handled between calls, which the stream
must survive too; and since the harness cannot tell a compiled wait
from its own code, it drops those that land in a native lock's wait.
So ``test_sigint_while_blocked_in_a_call`` sends one SIGINT while the
main thread is known to be blocked in a read, a write or a gate's
queue (``tests/_sigint_wait.py``), on both backends.

The compiled build promises this; the pure-Python one does not (a
signal can land between any two of its bytecodes, and gevent's own
pure-Python primitives have the same limit), so these cases run on the
compiled build only. ``tests/test_ki_sweep.py`` checks what the pure
build does promise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import gpipe

from .conftest import child_env

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sigint_stream.py")
WAIT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sigint_wait.py")
SECONDS = 2.0  # of streaming under the barrage, per case
LIMIT = 60  # seconds before the process is killed and the case fails

pytestmark = [
    pytest.mark.timeout(LIMIT + 30),
    pytest.mark.skipif(sys.platform == "win32", reason="needs signal.pthread_kill"),
    pytest.mark.skipif(not gpipe.COMPILED, reason="promised by the compiled build only"),
]


@pytest.mark.parametrize("main", ["writer", "reader"])
@pytest.mark.parametrize("backend", ["gevent", "threading"])
def test_sigint_barrage_while_streaming(backend, main):
    seed = os.environ.get("GPIPE_SIGINT_SEED", f"{backend}-{main}")
    # (No development mode: its allocator hooks slow the stream down.)
    env = child_env(PYTHONDEVMODE=None)
    try:
        done = subprocess.run(
            [sys.executable, SCRIPT, backend, main, str(SECONDS), seed],
            capture_output=True,
            text=True,
            timeout=LIMIT,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung: killed after {LIMIT}s\n{exc.stdout}\n{exc.stderr}")
    lines = done.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"no summary (exit status {done.returncode}):\n{done.stdout}\n{done.stderr}")
    print(summary)
    assert not summary["errors"], "\n".join(summary["errors"]) + f"\n{summary}"
    assert done.returncode == 0, done.stderr
    # The barrage ran: the process handled its signals. Compiled, the
    # pipe's calls run no Python code of their own (the core, its mutex
    # and the backends are all C), so a handler runs inside a call only
    # where it waits (gevent's hub, an interrupted native lock); most
    # land between calls. The stream must be exact either way.
    assert summary["signals handled"] >= 20, summary
    assert summary["bytes"] > 0


@pytest.mark.parametrize("case", ["read", "write", "gate"])
@pytest.mark.parametrize("backend", ["gevent", "threading"])
def test_sigint_while_blocked_in_a_call(backend, case):
    """SIGINT sent while the main thread is blocked in a pipe call (see
    ``tests/_sigint_wait.py``): the call raises KeyboardInterrupt, a read
    consumed nothing, a write's ``consumed`` is what the reader took,
    and the pipe goes on working."""
    done = subprocess.run(
        [sys.executable, WAIT_SCRIPT, backend, case],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        env=child_env(),
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["compiled"] is True
    assert got["interrupted"] is True, got
    assert got["eof"] is True, got
    if case == "read":
        assert got["after"] == "abc", got  # nothing consumed, nothing lost
    elif case == "write":
        assert (got["first"], got["consumed"], got["after"]) == ("0123", 4, "XY"), got
    else:
        assert (got["other"], got["after"]) == ("abc", "de"), got
