"""A SIGINT that arrives while the main thread is blocked in a pipe call.

Run by ``tests/test_sigint.py`` in a process of its own::

    python tests/_sigint_wait.py BACKEND CASE

(with the gpipe under test importable: the test puts it on ``PYTHONPATH``).

The main thread blocks in one pipe call (*CASE*: ``read``, a read with
no writer; ``write``, a write that a reader took part of; ``gate``, a
read queued behind another read). A native helper thread waits until
the pipe shows the call blocked, then sends SIGINT to the main thread.
On the compiled build no Python code of gpipe's runs inside the call,
so the handler runs where the call waits: inside the native lock's
acquire (threading) or in the gevent hub, which throws the
:exc:`KeyboardInterrupt` into the blocked greenlet. The call must raise
it, having consumed nothing (a read) or with ``consumed`` exact (a
write), and the pipe must go on working. The other side runs in an OS
thread (threading) or a greenlet (gevent). The output is one JSON line.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gpipe  # the test's own (tests/test_sigint.py's child_env)

TIMEOUT = 10.0  # the ends' settimeout, and how long the helper waits: a backstop


def interrupt_when(blocked: Callable[[], bool]) -> threading.Thread:
    """A native thread that sends SIGINT to the main thread once *blocked()*."""
    main = threading.main_thread().ident

    def run() -> None:
        deadline = time.monotonic() + TIMEOUT
        while not blocked():
            if time.monotonic() > deadline:
                return  # the main thread's call times out and reports it
            time.sleep(0.001)
        signal.pthread_kill(main, signal.SIGINT)  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def interrupted(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run *call*: (True, the KeyboardInterrupt) or (False, its result)."""
    try:
        return False, call()
    except KeyboardInterrupt as exc:
        return True, exc


def main(backend: str, case: str) -> dict[str, Any]:
    if backend == "gevent":
        import gevent

        def go(fn: Callable[[], Any]) -> Callable[[], Any]:
            return gevent.spawn(fn).get
    else:

        def go(fn: Callable[[], Any]) -> Callable[[], Any]:
            box: list[Any] = []
            thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
            thread.start()

            def get() -> Any:
                thread.join(TIMEOUT)
                return box[0]

            return get

    r, w = gpipe.pipe(backend=backend)
    r.settimeout(TIMEOUT)
    w.settimeout(TIMEOUT)
    pipe = r._pipe
    out: dict[str, Any] = {"backend": backend, "case": case, "compiled": gpipe.COMPILED}

    if case == "read":
        interrupt_when(lambda: pipe.waiting(True) >= 1)
        out["interrupted"], _ = interrupted(lambda: r.read1(10))
        done = go(lambda: w.write(b"abc"))
        out["after"] = r.read1(10).decode()
        done()
    elif case == "write":
        took = threading.Event()
        first = go(lambda: (r.read1(4), took.set())[0])
        interrupt_when(lambda: took.is_set() and pipe.waiting(False) >= 1)
        out["interrupted"], exc = interrupted(lambda: w.write(b"0123456789"))
        out["consumed"] = getattr(exc, "consumed", None)
        out["first"] = first().decode()
        second = go(lambda: r.read1(10))
        w.write(b"XY")
        out["after"] = second().decode()
    elif case == "gate":
        other = go(lambda: r.read1(10))  # owns the read gate, waiting for a write
        deadline = time.monotonic() + TIMEOUT
        while pipe.waiting(True) < 1 and time.monotonic() < deadline:
            # Let it run until it blocks (gevent: until it yields to the hub).
            if backend == "gevent":
                gevent.sleep(0)
            else:
                time.sleep(0.001)
        interrupt_when(lambda: pipe.waiting(True) >= 2)
        out["interrupted"], _ = interrupted(lambda: r.read1(10))
        done = go(lambda: (w.write(b"abc"), w.write(b"de")))
        out["other"] = other().decode()
        out["after"] = r.read1(10).decode()
        done()
    else:
        raise SystemExit(f"unknown case {case!r}")
    w.close()
    out["eof"] = r.read1(10) == b""
    return out


if __name__ == "__main__":
    # Python installs no SIGINT handler in a process started with SIGINT
    # ignored (as a shell starts background jobs): install it here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
