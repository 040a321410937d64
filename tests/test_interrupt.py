"""Interruption races: an exception landing after the other side acted.

A writer that finds a reader waiting copies into the reader's buffer and
returns at once. If the reader is interrupted (gevent.Timeout, a kill)
after that copy but before it resumes, it must not lose those bytes: the
next read returns them. These tests make that interleaving certain with
a backend whose signal raises right after it was set.
"""

from __future__ import annotations

import gevent
import gevent.event
import pytest

import gpipe
from gpipe._backends import Backend, get_backend
from gpipe._core import Pipe
from gpipe._pipe import PipeReader, PipeWriter

from .conftest import os_thread


class Interrupt(Exception):
    pass


class InterruptAfterWake(Backend):
    """Wraps a backend: the next reader wait returns, then raises.

    (A Backend: the compiled core takes no other kind.)"""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dead_end = inner.dead_end
        self.armed = False
        self.reader_sem = None

    def semaphore(self):
        sem = self.inner.semaphore()
        # The core creates the reader's semaphore first in these tests.
        if self.reader_sem is None:
            self.reader_sem = sem
        return sem

    def acquire(self, sem, timeout):
        ok = self.inner.acquire(sem, timeout)
        if sem is self.reader_sem and self.armed:
            self.armed = False
            raise Interrupt
        return ok


def make(backend_name):
    backend = InterruptAfterWake(get_backend(backend_name))
    core = Pipe(backend)
    return backend, PipeReader(core), PipeWriter(core)


def spawn(backend_name, fn, *args):
    if backend_name == "gevent":
        g = gevent.spawn(fn, *args)
        return lambda: g.get(timeout=10)
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    # An OS thread even in a monkey-patched process.
    t = os_thread(run)

    def get():
        t.join(10)
        assert not t.is_alive()
        if "error" in result:
            raise result["error"]
        return result["value"]

    return get


def wait_reader_blocked(backend_name, r):
    deadline = 10
    step = 0.001
    while r._pipe.waiting(True) < 1:
        deadline -= step
        assert deadline > 0, "reader never blocked"
        (gevent.sleep if backend_name == "gevent" else __import__("time").sleep)(step)


@pytest.mark.parametrize("backend_name", ["gevent", "threading"])
@pytest.mark.parametrize("how", ["read", "readinto"])
def test_reader_interrupted_after_fill_keeps_bytes(backend_name, how):
    backend, r, w = make(backend_name)
    buf = bytearray(100)
    call = (lambda: r.read1(100)) if how == "read" else (lambda: r.readinto1(buf))
    backend.armed = True
    get = spawn(backend_name, call)
    wait_reader_blocked(backend_name, r)
    # The reader is waiting: the writer fills its request and returns at once.
    assert w.write(b"handed over") == 11
    with pytest.raises(Interrupt):
        get()
    # Nothing lost: the next read returns exactly those bytes, then the next write.
    assert r.read1(5) == b"hande"
    assert r.read1(100) == b"d over"
    get2 = spawn(backend_name, w.write, b"next")
    assert r.read1(100) == b"next"
    assert get2() == 4
    w.close()
    assert r.read1(1) == b""
    r.close()


@pytest.mark.parametrize("backend_name", ["gevent", "threading"])
def test_pushback_survives_writer_close_but_not_reader_close(backend_name):
    backend, r, w = make(backend_name)
    backend.armed = True
    get = spawn(backend_name, r.read1, 100)
    wait_reader_blocked(backend_name, r)
    w.write(b"kept")
    with pytest.raises(Interrupt):
        get()
    w.close_with_error(RuntimeError("after"))
    assert r.read(0) == b""  # data is still pending: no error yet
    assert r.readinto1(bytearray(10)) == 4
    with pytest.raises(RuntimeError, match="after"):
        r.read1(1)
    r.close()


def test_killed_reader_consumes_nothing():
    r, w = gpipe.pipe(backend="gevent")
    g = gevent.spawn(r.read1, 10)
    gevent.idle()
    assert r._pipe.waiting(True) == 1
    g.kill(block=True, timeout=10)
    assert g.dead
    assert r._pipe.waiting(True) == 0
    writer = gevent.spawn(w.write, b"payload")
    assert r.read1(10) == b"payload"
    assert writer.get(timeout=10) == 7
    r.close()
    w.close()


def test_killed_writer_reports_consumed():
    r, w = gpipe.pipe(backend="gevent")
    g = gevent.spawn(w.write, b"0123456789")
    gevent.idle()
    assert r.read1(4) == b"0123"
    g.kill(block=True, timeout=10)
    assert isinstance(g.value, gevent.GreenletExit)
    assert g.value.consumed == 4
    # The withdrawn rest is never read; the pipe stays usable.
    writer = gevent.spawn(w.write, b"fresh")
    assert r.read1(100) == b"fresh"
    writer.get(timeout=10)
    r.close()
    w.close()


def test_gevent_timeout_on_write():
    r, w = gpipe.pipe(backend="gevent")
    reader = gevent.spawn(r.read1, 3)
    with pytest.raises(gevent.Timeout) as info:
        with gevent.Timeout(0.05):
            w.write(b"abcdef")
    assert info.value.consumed == 3
    assert reader.get(timeout=10) == b"abc"
    writer = gevent.spawn(w.write, b"ghi")
    assert r.read1(10) == b"ghi"
    writer.get(timeout=10)
    r.close()
    w.close()


def test_gevent_timeout_on_read_then_reuse():
    r, w = gpipe.pipe(backend="gevent")
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.02):
            r.read1(10)
    writer = gevent.spawn(w.write, b"still works")
    assert r.read1(100) == b"still works"
    writer.get(timeout=10)
    r.close()
    w.close()


def test_streaming_pair_does_not_starve_other_greenlets():
    """Every handoff goes through the hub, which runs everything else."""
    r, w = gpipe.pipe(backend="gevent")
    handoffs = 500
    ticks = [0]

    def ticker():
        while True:
            ticks[0] += 1
            gevent.sleep(0)

    t = gevent.spawn(ticker)
    gevent.sleep(0)  # not idle(): the ticker keeps the loop busy for ever
    start = ticks[0]

    def produce():
        for _ in range(handoffs):
            w.write(b"x")
        w.close()

    p = gevent.spawn(produce)
    n = 0
    buf = bytearray(1)
    while r.readinto1(buf):
        n += 1
    p.get(timeout=10)
    t.kill()
    assert n == handoffs
    # The ticker ran about once per handoff: the pair never ran alone.
    assert ticks[0] - start >= handoffs // 2
    r.close()


def test_timer_fires_during_a_stream():
    r, w = gpipe.pipe(backend="gevent")
    fired = gevent.event.Event()
    gevent.spawn_later(0.01, fired.set)

    def produce():
        # Streams until the timer fired: it must get its turn.
        while not fired.is_set():
            w.write(b"y")
        w.close()

    p = gevent.spawn(produce)
    while r.read1(1):
        pass
    p.get(timeout=10)
    assert fired.is_set()
    r.close()
