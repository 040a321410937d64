"""Every @implementer is verified, on the class and on a live object."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyClass, verifyObject

import gpipe
from gpipe import _backends
from gpipe.interfaces import IBackend, ICloser, IPipeReader, IPipeWriter, ISignal, ITimeouts


@pytest.mark.parametrize(
    "iface,cls",
    [
        (IPipeReader, gpipe.PipeReader),
        (IPipeWriter, gpipe.PipeWriter),
        (IBackend, _backends.GeventBackend),
        (IBackend, _backends.ThreadingBackend),
        (ISignal, _backends.GeventSignal),
        (ISignal, _backends.ThreadSignal),
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
        assert verifyObject(ISignal, core_backend.signal())


def test_signal_semantics():
    for backend in (_backends.get_backend("gevent"), _backends.get_backend("threading")):
        sig = backend.signal()
        assert sig.wait(0) is False  # starts unset
        sig.set()
        sig.set()  # idempotent: still one wakeup
        assert sig.wait(0) is True
        assert sig.wait(0) is False
        assert sig.wait(0.01) is False
