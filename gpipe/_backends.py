"""The two backends: the blocking primitive the pipe core is written against.

The core blocks in exactly one way: a call that must wait takes a
*semaphore* at 0 (``backend.semaphore()``) and waits on it with
``backend.acquire(semaphore, timeout)``; whoever completes the call
(the other side, a close, the call before it at a gate) releases it,
once. Semaphores are made for, and only ever waited on in, one native
thread: a gevent semaphore belongs to the hub that first waits on it,
and calls from several native threads may use one pipe. The core keeps
a few per thread for its next waits (see ``_core._Thread``).

Compiled (``gpipe._gpipe_c_backends``, this same file typed by
``_gpipe_c_backends.pxd``), :class:`Backend` is an extension type, and
the core's calls to ``semaphore()`` and ``acquire()`` are C calls
(only a :class:`Backend` can be a compiled pipe's backend). This
module's namespace is then a copy of the compiled module's, whose
functions look their globals up in the compiled module: rebinding a
name here changes nothing (``get_backend.__globals__`` is where to, for
the names that are not C variables of the ``.pxd``).

The gevent backend hands out :class:`gevent.lock.Semaphore`, so a
blocked call yields to its thread's hub like any gevent primitive
(``LoopExit`` on a dead end, fairness, :class:`gevent.Timeout`, kill);
the threading backend hands out unpatched native locks, even in a
monkey-patched program. ``acquire`` is where a backend adapts the
timeout and, for gevent, keeps a loop alive for a wakeup from another
native thread (see :class:`_Keepalive`).

Both are declared as :class:`~gpipe.interfaces.IBackend`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, Optional

from zope.interface import classImplements

from .interfaces import IBackend

__all__ = ["BACKENDS", "detect_backend", "get_backend"]

#: The backend names :func:`gpipe.pipe` accepts.
BACKENDS = ("gevent", "threading")


def _original(module: str, name: str) -> Any:
    """The unpatched ``module.name``, even after gevent monkey-patched it."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        # Only gevent.monkey can have patched anything; without it loaded
        # the module attribute is still the original.
        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


def detect_backend() -> str:
    """Return the backend :func:`gpipe.pipe` picks in the calling context now.

    ``"gevent"`` when the program has imported gevent (which includes
    every program that called :func:`gevent.monkey.patch_all`), else
    ``"threading"``. gpipe never imports gevent itself unless asked for
    its backend, so ``"gevent" in sys.modules`` means the program did.

    The answer can change during a program's life (a module may import
    gevent later), which is why :func:`gpipe.pipe` asks on every call.

    :return: ``"gevent"`` or ``"threading"``.
    """
    if "gevent" not in sys.modules:
        return "threading"
    # Imported by the program: it either patched threading or uses greenlets
    # directly; both need waits that yield to the hub.
    return "gevent"


# The number of native threads besides the main one that are alive now
# (threads that the threading and _thread modules started, gevent's
# threadpool workers among them). A C builtin: cheap enough for every wait.
_other_threads: Callable[[], int] = _original("_thread", "_count")

# The longest wait a native lock accepts; longer timeouts wait this long.
TIMEOUT_MAX: float = _original("_thread", "TIMEOUT_MAX")

# How often a keepalive (below) checks that another native thread is still
# alive, in seconds: the delay of LoopExit once the last one has exited.
_RECHECK = 0.05


def _recheck(keepalive: _Keepalive) -> None:
    if not _other_threads():
        # No thread is left that could wake the calls waiting here: let the
        # loop end, so that they raise LoopExit like any gevent wait.
        keepalive.timer.ref = False


class _Keepalive:
    """Holds one hub's loop open for the calls that another thread may wake.

    gevent ends a loop that has nothing referenced to wait for, raising
    ``LoopExit`` in the hub's parent greenlet: that is how a dead end in
    a single-threaded program is reported, and gpipe wants it. But a
    release from another native thread reaches the loop through
    ``run_callback_threadsafe``, whose watcher is not referenced, so a
    loop with nothing but a pipe call to wait for would end (raising
    ``LoopExit``) although a live thread is about to wake that call.

    So while calls wait in this hub and another native thread is alive,
    one referenced, repeating timer (gevent's own watcher, as gevent's
    threadpool holds a loop open with its own) keeps the loop running.
    Each tick checks that another thread is still alive; once none is,
    the timer lets go of the loop, and a dead end raises ``LoopExit``
    after all. The wakeups themselves never go through it: they are the
    semaphores' own.
    """

    __slots__ = ("hub", "timer", "waiting")

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.waiting = 0  # calls of this hub in a kept-alive wait
        self.timer = hub.loop.timer(_RECHECK, _RECHECK)

    # Entering and leaving are inline in _kept_alive(), with no Python call
    # between the counter and the wait: an asynchronous exception
    # (KeyboardInterrupt) lands at a function's entry, and must not leave
    # the counter off by one.


_get_hub: Any = None  # gevent.get_hub, bound by GeventBackend()
# Per native thread, even under monkey-patching (the pipe core keeps its
# thread tokens here too): the unpatched _thread._local.
per_thread: Any = _original("_thread", "_local")()


def _kept_alive(wait: Callable[..., Any], *args: Any) -> bool:
    """``wait(*args)`` with the calling thread's hub held open by its keepalive."""
    hub = _get_hub()
    keepalive: Optional[_Keepalive] = getattr(per_thread, "keepalive", None)
    if keepalive is None or keepalive.hub is not hub:
        # First use in this thread, or its hub was destroyed and replaced.
        keepalive = per_thread.keepalive = _Keepalive(hub)
    timer = keepalive.timer
    keepalive.waiting += 1
    try:
        timer.ref = True  # another thread is alive, as the caller checked
        if not timer.active:
            timer.start(_recheck, keepalive)
        return bool(wait(*args))
    finally:
        keepalive.waiting -= 1
        if not keepalive.waiting:
            timer.stop()


class Backend:
    """What the two backends share: the core's calls to them (compiled,
    typed C calls, by ``_gpipe_c_backends.pxd``)."""

    name = ""
    dead_end: Any  # the exception a wait raises at a dead end (see IBackend)

    def semaphore(self) -> Any:
        """A new semaphore at 0 (see :meth:`IBackend.semaphore`).

        :raises NotImplementedError: always, here; each backend has its own.
        """
        raise NotImplementedError

    def acquire(self, semaphore: Any, timeout: Optional[float]) -> bool:
        """Wait for a unit of *semaphore* (see :meth:`IBackend.acquire`).

        :raises NotImplementedError: always, here; each backend has its own.
        """
        raise NotImplementedError


class GeventBackend(Backend):
    """gevent blocking: every wait yields to the calling thread's hub.

    Semaphores are :class:`gevent.lock.Semaphore`.
    """

    name = "gevent"

    def __init__(self) -> None:
        global _get_hub
        import gevent
        import gevent.exceptions
        import gevent.lock

        _get_hub = gevent.get_hub
        self._semaphore = gevent.lock.Semaphore
        self.dead_end = gevent.exceptions.LoopExit

    def semaphore(self) -> Any:
        return self._semaphore(0)

    def acquire(self, semaphore: Any, timeout: Optional[float]) -> bool:
        if timeout is not None:
            if timeout <= 0:
                # No time left: no wait. (gevent's acquire(True, 0) would
                # let every other ready greenlet run first.)
                return bool(semaphore.acquire(False))
            if timeout > TIMEOUT_MAX:
                timeout = TIMEOUT_MAX  # (libuv's timers take no more)
        if not _other_threads():
            # Only this thread can release it: a plain gevent wait, which
            # raises LoopExit if nothing else in this thread can run.
            if timeout is None:
                return bool(semaphore.acquire())  # (no arguments to parse)
            return bool(semaphore.acquire(True, timeout))
        return _kept_alive(semaphore.acquire, True, timeout)


def _lock_timeout(timeout: Optional[float]) -> float:
    """A timeout for a native lock: -1 for none, at most TIMEOUT_MAX."""
    if timeout is None:
        return -1
    return timeout if timeout < TIMEOUT_MAX else TIMEOUT_MAX


class ThreadingBackend(Backend):
    """OS-thread blocking: every wait blocks the calling thread.

    Semaphores are native locks from :mod:`_thread` created locked: the
    core never releases one twice without an acquire in between, so a
    lock is exactly a semaphore that counts to one, and its acquire and
    release are single C calls that an asynchronous exception
    (:exc:`KeyboardInterrupt`) cannot split.
    """

    name = "threading"

    def __init__(self) -> None:
        self.dead_end = ()  # an OS thread just blocks
        self._allocate_lock = _original("_thread", "allocate_lock")

    def semaphore(self) -> Any:
        lock = self._allocate_lock()
        lock.acquire()
        return lock

    def acquire(self, semaphore: Any, timeout: Optional[float]) -> bool:
        return bool(semaphore.acquire(True, _lock_timeout(timeout)))


# (Not as @implementer: compiled, these are extension types, which take no decorators.)
classImplements(GeventBackend, IBackend)
classImplements(ThreadingBackend, IBackend)

_FACTORIES: dict[str, Callable[[], Any]] = {
    "gevent": GeventBackend,
    "threading": ThreadingBackend,
}
_instances: dict[str, Any] = {}


def get_backend(name: Optional[str] = None) -> Any:
    """Return the backend called *name* (``None``: :func:`detect_backend`).

    :raises ValueError: *name* is not ``None``, ``"gevent"`` or ``"threading"``.
    :raises TypeError: *name* is not a string.
    """
    if name is None:
        name = detect_backend()
    elif not isinstance(name, str):
        raise TypeError(f"backend must be None, 'gevent' or 'threading', not {type(name).__name__}")
    backend = _instances.get(name)
    if backend is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            raise ValueError(f"backend must be None, 'gevent' or 'threading', not {name!r}")
        # Created on first use only: constructing the gevent backend imports
        # gevent, which a threading-only program must never pay for.
        backend = _instances.setdefault(name, factory())
    return backend


# gevent's way, as for the core: the compiled build of this very file
# replaces it, unless PURE_PYTHON is set.
from ._compat import import_c_accel  # noqa: E402

import_c_accel(globals(), "gpipe._gpipe_c_backends")
