"""The two backends: the blocking primitives the pipe core is written against.

The core (:mod:`gpipe._core`) needs exactly two things from a backend:

* a *mutex* that guards the pipe's state for a few bytecodes at a time.
  It is never held while blocking, so it is always a real OS lock, even
  under gevent: then it costs no hub switch, and it stays correct when
  the two ends of one pipe are used from different native threads.
* a *signal*: a wakeup that one blocked call waits on until another
  call sets it. A pipe keeps one per side for the calls that wait for
  the other side, and makes one for each call queued at a gate. Waiting
  on it is the only place a pipe call ever blocks, so this is where a
  backend decides how to wait: by yielding to the gevent hub (in the
  waiting thread's own hub, whichever thread that is), or by blocking
  the OS thread.

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


# What the gevent backend uses of gevent, bound on first use by _bind_gevent()
# (so that importing gpipe never imports gevent). Module globals: they are
# read on every blocking call.
_get_hub: Any = None
_getcurrent: Any = None
_get_ident: Any = None
_thread_local: Any = None


def _bind_gevent() -> None:
    global _get_hub, _getcurrent, _get_ident, _thread_local
    if _get_hub is None:
        from gevent import get_hub, getcurrent

        _getcurrent = getcurrent
        _get_ident = _original("_thread", "get_ident")
        # Per native thread, not per greenlet (even when threading is patched).
        _thread_local = _original("_thread", "_local")()
        _get_hub = get_hub


# How many handoffs in a row may switch straight from greenlet to greenlet
# before one goes through the hub, which runs everything else (I/O, timers,
# other greenlets) in between. A streaming pair then takes a turn of a few
# tens of microseconds; larger values speed a lone pair up a little and
# make everyone else's turn come later (10,000 streaming pairs: the longest
# call of the soak test grew from 5 s at 8 to 15 s at 32).
_DIRECT_SWITCHES = 8


class _HubState:
    """What gpipe keeps per hub (per native thread).

    *watcher* holds the loop open while pipe calls wait in it. A blocked
    call may be woken from another native thread, through the loop; a
    loop with nothing referenced to wait for would exit first, raising
    ``LoopExit`` in whatever greenlet of this thread is waiting (a
    ``join()``, say). One referenced watcher per hub, shared by all calls
    waiting there, prevents that at the cost of a counter.

    *ready* is the signal this thread set last, for the next greenlet
    that parks here to switch to directly (see :meth:`GeventSignal.wait`).
    """

    __slots__ = ("hub", "loop", "ready", "streak", "thread", "waiting", "watcher")

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.thread = _get_ident()
        self.watcher = self.loop.async_(ref=False)
        self.watcher.start(_nothing)
        self.waiting = 0  # calls blocked in this hub; the watcher is referenced while > 0
        self.ready: Optional[GeventSignal] = None
        self.streak = 0  # direct switches since the hub last ran


def _hub_state(hub: Any) -> _HubState:
    """gpipe's state for the calling thread's current *hub*."""
    state: Optional[_HubState] = getattr(_thread_local, "state", None)
    if state is None or state.hub is not hub:
        state = _thread_local.state = _HubState(hub)
    return state


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

    When a greenlet is about to park and the greenlet its thread woke
    last has not run yet, it cancels that wakeup and switches to it
    directly, skipping a pass through the hub: in a steady stream
    between two greenlets each handoff is then one greenlet switch.
    """

    __slots__ = ("_callback", "_greenlet", "_hub", "_loop", "_set", "_state", "_thread")

    def __init__(self) -> None:
        self._set = False
        self._greenlet: Any = None  # the greenlet parked in wait(), if any
        self._callback: Any = None  # the wakeup set() scheduled last
        # Where wait() parks and set() delivers: bound by the first wait,
        # and again by the first in another thread (or hub).
        self._hub: Any = None
        self._state: Any = None
        self._loop: Any = None
        self._thread: Any = None

    def wait(self, timeout: Optional[float]) -> bool:
        if self._set:
            self._set = False
            return True
        if timeout is not None and timeout <= 0:
            return False
        hub = _get_hub()
        if hub is not self._hub:
            self._bind(hub)
        state = self._state
        current = self._greenlet = _getcurrent()
        state.waiting += 1
        if state.waiting == 1:
            state.watcher.ref = True
        timer = None
        try:
            if timeout is not None:
                timer = self._loop.timer(timeout)
                timer.start(current.switch, _TIMED_OUT)
            while not self._set:
                ready = state.ready
                if ready is not None:
                    state.ready = None
                    greenlet = ready._greenlet
                    # Still parked, and its wakeup has not run: run it now.
                    if greenlet is not None and ready._set and state.streak < _DIRECT_SWITCHES:
                        state.streak += 1
                        ready._callback.stop()
                        if greenlet.switch() is _TIMED_OUT:
                            return False
                        continue
                state.streak = 0
                if hub.switch() is _TIMED_OUT:
                    return False
                # Otherwise set() woke us, or a wakeup meant for an earlier
                # wait on this signal arrived late: re-check.
            self._set = False
            return True
        finally:
            self._greenlet = None
            state.waiting -= 1
            if not state.waiting:
                state.watcher.ref = False
            if timer is not None:
                timer.stop()
                timer.close()

    def _bind(self, hub: Any) -> None:
        """Park in *hub* from now on, and have set() deliver there.

        Called by the first wait, and by the first in another thread (or
        hub); before the greenlet is published, so that a set() in another
        thread that sees the greenlet also sees these.
        """
        state = self._state = _hub_state(hub)
        self._loop = hub.loop
        self._thread = state.thread
        self._hub = hub

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
            if _get_ident() == self._thread:
                self._callback = self._loop.run_callback(self._wake)
                self._state.ready = self
            else:
                self._loop.run_callback_threadsafe(self._wake)

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

    def signal(self) -> ISignal:
        return ThreadSignal(self._allocate_lock)


@implementer(IBackend)
class GeventBackend:
    """gevent blocking: every wait yields to the calling thread's hub."""

    name = "gevent"

    def __init__(self) -> None:
        _bind_gevent()
        self._rlock = _original("_thread", "RLock")

    def mutex(self) -> Any:
        return self._rlock()

    def signal(self) -> ISignal:
        return GeventSignal()


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
