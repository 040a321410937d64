"""The two backends: the blocking primitives the pipe core is written against.

The core (:mod:`gpipe._core`) needs exactly two things from a backend:

* a *mutex* that guards the pipe's state for a few bytecodes at a time.
  It is never held while blocking, so it is always a real OS lock, even
  under gevent: then it costs no hub switch, and it stays correct when
  the two ends of one pipe are used from different native threads.
* a *signal*: a wakeup that one blocked call waits on until another
  call sets it. Each blocking call makes its own, in its own thread.
  Waiting on it is the only place a pipe call ever blocks, so this is
  where a backend decides how to wait: by yielding to the gevent hub, or
  by blocking the OS thread.

Both are declared as interfaces in :mod:`gpipe.interfaces`
(:class:`~gpipe.interfaces.IBackend`, :class:`~gpipe.interfaces.ISignal`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Optional

from zope.interface import implementer

from .interfaces import IBackend, ISignal

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


def _nothing() -> None:
    pass


class _GeventAPI:
    """What the gevent backend uses of gevent, imported on first use."""

    def __init__(self) -> None:
        from gevent import get_hub
        from gevent.exceptions import LoopExit
        from gevent.lock import Semaphore

        self.get_hub = get_hub
        self.LoopExit = LoopExit
        self.Semaphore = Semaphore


_gevent_api: Optional[_GeventAPI] = None


def _gevent() -> _GeventAPI:
    global _gevent_api
    if _gevent_api is None:
        _gevent_api = _GeventAPI()
    return _gevent_api


@implementer(ISignal)
class ThreadSignal:
    """A binary semaphore on an OS lock: the lock is held while unset."""

    __slots__ = ("_lock",)

    def __init__(self, allocate_lock: Callable[[], Any]) -> None:
        self._lock = allocate_lock()
        self._lock.acquire()

    def wait(self, timeout: Optional[float]) -> bool:
        return bool(self._lock.acquire(True, -1 if timeout is None else timeout))

    def set(self) -> None:
        # Callers hold the pipe mutex, so no other set() races this check;
        # a concurrent wait() can only make the lock more locked.
        if self._lock.locked():
            self._lock.release()

    def __repr__(self) -> str:
        return f"<ThreadSignal {'unset' if self._lock.locked() else 'set'}>"


@implementer(ISignal)
class GeventSignal:
    """A binary semaphore on :class:`gevent.lock.Semaphore`.

    gevent's Semaphore (unlike its Event) may be released in another
    native thread than the one waiting on it, which is what lets the two
    ends of a gevent-backed pipe live in different threads. It belongs to
    the hub of the thread that first waits on it, which is why each
    blocking call makes a signal of its own.
    """

    __slots__ = ("_sem",)

    def __init__(self, semaphore: Callable[[int], Any]) -> None:
        self._sem = semaphore(0)

    def wait(self, timeout: Optional[float]) -> bool:
        if timeout == 0:
            return bool(self._sem.acquire(False))  # poll without yielding
        try:
            return bool(self._sem.acquire(True, timeout))
        except _gevent().LoopExit:
            # This thread's loop has nothing left to run, so only another
            # native thread can set this signal (the other end lives
            # there). Its wakeup arrives through the loop, which must not
            # exit meanwhile: hold it open with a referenced watcher.
            keepalive = _gevent().get_hub().loop.async_()
            keepalive.start(_nothing)
            try:
                return bool(self._sem.acquire(True, timeout))
            finally:
                keepalive.stop()
                keepalive.close()

    def set(self) -> None:
        # As for ThreadSignal: setters are serialised by the pipe mutex.
        if self._sem.locked():
            self._sem.release()

    def __repr__(self) -> str:
        return f"<GeventSignal {'unset' if self._sem.locked() else 'set'}>"


@implementer(IBackend)
class ThreadingBackend:
    """OS-thread blocking: every wait blocks the calling thread."""

    name = "threading"

    def __init__(self) -> None:
        self._allocate_lock = _original("_thread", "allocate_lock")
        self._rlock = _original("_thread", "RLock")

    def mutex(self) -> Any:
        return self._rlock()

    def signal(self) -> ISignal:
        return ThreadSignal(self._allocate_lock)


@implementer(IBackend)
class GeventBackend:
    """gevent blocking: every wait yields to the calling thread's hub."""

    name = "gevent"

    def __init__(self) -> None:
        self._semaphore = _gevent().Semaphore
        self._rlock = _original("_thread", "RLock")

    def mutex(self) -> Any:
        return self._rlock()

    def signal(self) -> ISignal:
        return GeventSignal(self._semaphore)


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
        raise TypeError(
            f"backend must be None, 'gevent' or 'threading', not {type(name).__name__}"
        )
    backend = _instances.get(name)
    if backend is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            raise ValueError(
                f"backend must be None, 'gevent' or 'threading', not {name!r}"
            )
        # Created on first use only: constructing the gevent backend imports
        # gevent, which a threading-only program must never pay for.
        backend = _instances.setdefault(name, factory())
    return backend
