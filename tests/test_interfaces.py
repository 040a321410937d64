"""Every @implementer is verified, on the class and on a live object."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyClass, verifyObject

import gpipe
from gpipe import _backends
from gpipe.interfaces import (
    IBackend,
    ICloser,
    IPipeReader,
    IPipeWriter,
    ISemaphore,
    ITimeouts,
)


@pytest.mark.parametrize(
    "iface,cls",
    [
        (IPipeReader, gpipe.PipeReader),
        (IPipeWriter, gpipe.PipeWriter),
        (IBackend, _backends.GeventBackend),
        (IBackend, _backends.ThreadingBackend),
    ],
)
def test_verify_class(iface, cls):
    assert verifyClass(iface, cls)


@pytest.mark.parametrize("backend", ["gevent", "threading"])
def test_verify_objects(backend):
    r, w = gpipe.pipe(backend=backend)
    with r, w:
        assert verifyObject(IPipeReader, r)
        assert verifyObject(IPipeWriter, w)
        for iface in (ICloser, ITimeouts):
            assert iface.providedBy(r) and iface.providedBy(w)
        core_backend = r._pipe.backend
        assert verifyObject(IBackend, core_backend)
        # gevent's and the OS's primitives do not declare gpipe's
        # interfaces: check that they have what the interfaces name.
        assert verifyObject(ISemaphore, core_backend.semaphore(), tentative=True)


def test_the_gevent_backend_hands_out_gevents_own_semaphore():
    import gevent.lock

    backend = _backends.get_backend("gevent")
    assert type(backend.semaphore()) is gevent.lock.Semaphore


@pytest.mark.parametrize("name", ["gevent", "threading"])
def test_semaphore_semantics(name):
    backend = _backends.get_backend(name)
    sem = backend.semaphore()
    assert backend.acquire(sem, 0) is False  # starts at 0
    sem.release()
    assert backend.acquire(sem, 0) is True
    assert sem.acquire(False) is False
    assert backend.acquire(sem, 0.01) is False


def test_threading_backend_accepts_huge_timeouts():
    backend = _backends.get_backend("threading")
    sem = backend.semaphore()
    sem.release()
    # Longer than a native lock accepts: waits at most TIMEOUT_MAX instead.
    assert backend.acquire(sem, 1e300) is True
