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
        from gevent import get_hub, getcurrent

        self.get_hub = get_hub
        self.getcurrent = getcurrent
        self.get_ident = _original("_thread", "get_ident")
        # Per native thread, not per greenlet (even when threading is patched).
        self.local = _original("_thread", "_local")()


_gevent_api: Optional[_GeventAPI] = None


def _gevent() -> _GeventAPI:
    global _gevent_api
    if _gevent_api is None:
        _gevent_api = _GeventAPI()
    return _gevent_api


class _Keepalive:
    """Holds one hub's loop open while pipe calls wait in it.

    A blocked pipe call may be woken from another native thread, through
    the loop. A loop with nothing referenced to wait for would exit
    first, raising ``LoopExit`` in whatever greenlet of this thread is
    waiting (a ``join()``, say). One referenced watcher per hub, shared
    by all calls waiting there, prevents that at the cost of a counter.
    """

    __slots__ = ("hub", "loop", "watcher", "waiting")

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.watcher = self.loop.async_(ref=False)
        self.watcher.start(_nothing)
        self.waiting = 0  # calls blocked in this hub; the watcher is referenced while > 0


def _keepalive(api: _GeventAPI) -> _Keepalive:
    """This thread's keepalive, for its current hub."""
    hub = api.get_hub()
    keepalive: Optional[_Keepalive] = getattr(api.local, "keepalive", None)
    if keepalive is None or keepalive.hub is not hub:
        keepalive = api.local.keepalive = _Keepalive(hub)
    return keepalive


_TIMED_OUT = object()


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
    """A wakeup for one greenlet, delivered through its own thread's hub.

    The waiter parks in ``hub.switch()``; :meth:`set` schedules the
    switch back as a loop callback (``run_callback_threadsafe`` when it
    runs in another native thread). This is the whole cost of a blocked
    handoff, so it avoids :class:`gevent.lock.Semaphore`, whose link
    lists and hub ownership serve many waiters, where this has one.
    """

    __slots__ = ("_set", "_greenlet", "_keepalive", "_thread", "_api")

    def __init__(self, api: _GeventAPI) -> None:
        self._api = api
        self._set = False
        self._greenlet: Any = None  # the greenlet parked in wait(), if any
        # Made by the call that will wait on it, so these are the waiter's.
        self._keepalive = _keepalive(api)
        self._thread = api.get_ident()

    def wait(self, timeout: Optional[float]) -> bool:
        if self._set:
            self._set = False
            return True
        if timeout == 0:
            return False
        keepalive = self._keepalive
        current = self._api.getcurrent()
        self._greenlet = current
        timer = None
        keepalive.waiting += 1
        if keepalive.waiting == 1:
            keepalive.watcher.ref = True
        try:
            if timeout is not None:
                timer = keepalive.loop.timer(timeout)
                timer.start(current.switch, _TIMED_OUT)
            while not self._set:
                if keepalive.hub.switch() is _TIMED_OUT:
                    break
                # Otherwise set() woke us, or a wakeup meant for an earlier
                # wait on this signal arrived late: the loop re-checks.
            if self._set:
                self._set = False
                return True
            return False
        finally:
            self._greenlet = None
            keepalive.waiting -= 1
            if not keepalive.waiting:
                keepalive.watcher.ref = False
            if timer is not None:
                timer.stop()
                timer.close()

    def _wake(self) -> None:
        # Runs in the waiter's hub. The waiter may have stopped waiting
        # since set() (timed out, killed): then there is no one to wake.
        greenlet = self._greenlet
        if greenlet is not None:
            greenlet.switch()

    def set(self) -> None:
        if self._set:
            return
        # Set the flag before looking for a waiter; wait() publishes the
        # waiter before its last look at the flag. A set() in another
        # thread then either finds the waiter or is found by it.
        self._set = True
        if self._greenlet is not None:
            if self._api.get_ident() == self._thread:
                self._keepalive.loop.run_callback(self._wake)
            else:
                self._keepalive.loop.run_callback_threadsafe(self._wake)

    def __repr__(self) -> str:
        return f"<GeventSignal {'set' if self._set else 'unset'}>"


@implementer(IBackend)
class ThreadingBackend:
    """OS-thread blocking: every wait blocks the calling thread."""

    name = "threading"

    def __init__(self) -> None:
        self._allocate_lock = _original("_thread", "allocate_lock")
        self._rlock = _original("_thread", "RLock")

    def mutex(self) -> Any:
        return self._rlock()

    def signal(self, reuse: Optional[ISignal] = None) -> ISignal:
        if isinstance(reuse, ThreadSignal):
            reuse._lock.acquire(False)  # unset it: its last waiter has left
            return reuse
        return ThreadSignal(self._allocate_lock)


@implementer(IBackend)
class GeventBackend:
    """gevent blocking: every wait yields to the calling thread's hub."""

    name = "gevent"

    def __init__(self) -> None:
        self._api = _gevent()
        self._rlock = _original("_thread", "RLock")

    def mutex(self) -> Any:
        return self._rlock()

    def signal(self, reuse: Optional[ISignal] = None) -> ISignal:
        # A signal can be waited on again only in the thread and hub it
        # was made for: its wakeups are delivered through that hub's loop.
        api = self._api
        if (
            isinstance(reuse, GeventSignal)
            and reuse._thread == api.get_ident()
            and reuse._keepalive.hub is api.get_hub()
        ):
            reuse._set = False  # its last waiter has left
            return reuse
        return GeventSignal(api)


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
