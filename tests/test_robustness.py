"""What goes on around a pipe call: warnings as errors, garbage collection
in the middle of a call, reference cycles, extreme timeouts, and a
KeyboardInterrupt landing at any function entry of a transfer.

(``tests/test_ki_sweep.py`` injects a KeyboardInterrupt after every call
the pure-Python core makes; the entry sweep here also reaches the points
just before a call, such as the call in a ``finally`` clause, and runs on
the compiled build too, where the only Python code a transfer enters is
the backend's and the ends'.)"""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import threading
import warnings
import weakref

import greenlet
import pytest

import gpipe
from gpipe._backends import Backend, get_backend
from gpipe._core import COMPILED, Pipe
from gpipe._pipe import PipeReader, PipeWriter

from .conftest import WAIT, child_env


def test_an_end_collected_with_resource_warnings_as_errors_still_fails_its_peer(bk):
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            r, w = gpipe.pipe(backend=bk.name)
            del r
            gc.collect()
    finally:
        sys.unraisablehook = old_hook
    # The warning was raised as an error inside the finaliser...
    assert any(isinstance(u.exc_value, ResourceWarning) for u in unraisable)
    # ...after the pipe was closed: the writer fails at once, it does not wait.
    w.settimeout(WAIT)
    with pytest.raises(gpipe.ClosedPipeError, match="read end collected"):
        w.write(b"x")
    w.close()


class _ClosesOnCollection:
    """Garbage in a reference cycle whose finaliser closes a pipe end."""

    def __init__(self, end):
        self.end = end
        self.cycle = self

    def __del__(self):
        self.end.close()


@pytest.mark.parametrize("blocked", ["read", "write"])
def test_a_collection_inside_a_call_that_closes_the_other_end_is_not_missed(bk, blocked):
    """The finaliser runs between the call's closed check and the moment it
    publishes its wait: the wakeup must not be lost."""
    old = gc.get_threshold()
    try:
        for _ in range(100):
            r, w = gpipe.pipe(backend=bk.name)
            r.settimeout(WAIT)
            w.settimeout(WAIT)
            _ClosesOnCollection(w if blocked == "read" else r)
            gc.set_threshold(1)  # collect at the next allocations, inside the call
            try:
                if blocked == "read":
                    assert r.read1(1) == b""  # EOF, not a timeout
                else:
                    with pytest.raises(gpipe.ClosedPipeError):
                        w.write(b"x")
            finally:
                gc.set_threshold(*old)
            r.close()
            w.close()
    finally:
        gc.set_threshold(*old)


class _CollectsOnPark(Backend):
    """A backend whose semaphores are made by an allocation that runs a
    garbage collection, as any allocation may."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dead_end = inner.dead_end

    def semaphore(self):
        gc.collect()
        return self.inner.semaphore()

    def acquire(self, sem, timeout):
        return self.inner.acquire(sem, timeout)


@pytest.mark.parametrize("blocked", ["read", "write"])
def test_a_collection_while_a_call_parks_that_closes_the_other_end_is_not_missed(bk, blocked):
    """The finaliser runs while the call makes its semaphore, after its
    closed checks and before it publishes itself: the close must still
    end the call (EOF, ClosedPipeError), not leave it waiting."""
    core = Pipe(_CollectsOnPark(get_backend(bk.name)))
    r, w = PipeReader(core), PipeWriter(core)
    r.settimeout(WAIT / 4)
    w.settimeout(WAIT / 4)
    _ClosesOnCollection(w if blocked == "read" else r)
    try:
        if blocked == "read":
            assert r.read1(1) == b""  # EOF, not a timeout
        else:
            with pytest.raises(gpipe.ClosedPipeError, match="reader was closed"):
                w.write(b"x")
    finally:
        r.close()
        w.close()


@pytest.mark.skipif(COMPILED, reason="a trace function sees no compiled frames")
def test_a_close_run_as_a_read_enters_its_wait_leaves_the_mutex_free(bk):
    """A signal handler (here: a trace function) closes the writer between
    the read publishing itself and its wait: the read returns EOF, and the
    pipe's mutex is free for other threads afterwards."""
    r, w = bk.pipe()
    r.settimeout(WAIT / 4)
    fired = []

    def tracer(frame, event, arg):
        code = frame.f_code
        ours = code.co_filename.startswith(GPIPE_DIR)
        if event == "call" and code.co_name == "wait" and ours and not fired:
            fired.append(True)
            w.close()

    sys.settrace(tracer)
    try:
        assert r.read1(1) == b""
    finally:
        sys.settrace(None)
    assert fired
    seen = []
    t = threading.Thread(target=lambda: seen.append(repr(r)), daemon=True)
    t.start()
    t.join(WAIT)
    assert seen, "another thread is stuck on the pipe's mutex"


@pytest.mark.parametrize("data", [b"", b"0123456789"])
def test_a_failed_write_leaves_no_reference_cycle(bk, data):
    gc.collect()
    gc.disable()
    try:
        r, w = gpipe.pipe(backend=bk.name)
        r.close()
        buf = bytearray(data)
        ends = weakref.ref(w)
        try:
            w.write(buf)
        except gpipe.ClosedPipeError:
            pass
        w.settimeout(0)
        try:
            w.write(b"y")
        except gpipe.ClosedPipeError:
            pass
        w.close()  # no ResourceWarning, whose record would keep the end
        del w, r
        # Freed by reference counting alone: nothing kept it in a cycle.
        assert ends() is None
        buf.extend(b"resizable")  # and no export of the buffer is left
    finally:
        gc.enable()


def test_a_timed_out_write_leaves_no_reference_cycle(bk):
    gc.collect()
    gc.disable()
    try:
        r, w = gpipe.pipe(backend=bk.name)
        w.settimeout(0.01)
        buf = bytearray(b"abc")
        ends = weakref.ref(w)
        with pytest.raises(TimeoutError) as info:
            w.write(buf)
        assert info.value.consumed == 0
        r.close()
        w.close()
        del w, r, info
        assert ends() is None
        buf.extend(b"resizable")
    finally:
        gc.enable()


def test_timeout_too_large_for_a_float_is_a_value_error(bk):
    r, w = bk.pipe()
    with pytest.raises(ValueError, match="finite number of seconds"):
        r.settimeout(2**2000)
    assert r.gettimeout() is None


@pytest.mark.parametrize("timeout", [1e13, sys.float_info.max])
def test_huge_finite_timeouts_wait_like_long_ones(bk, timeout):
    r, w = bk.pipe()
    r.settimeout(timeout)
    w.settimeout(timeout)
    task = bk.go(w.write, b"later")
    assert r.read1(10) == b"later"
    assert task.get() == 5
    task = bk.go(r.read1, 10)
    bk.wait_blocked(r)
    assert w.write(b"first") == 5
    assert task.get() == b"first"


LIBUV_WAIT = """
import sys, gevent, gpipe
assert "libuv" in type(gevent.get_hub().loop).__module__
timeout = float(sys.argv[1])
r, w = gpipe.pipe(backend="gevent")
r.settimeout(timeout)
w.settimeout(timeout)
task = gevent.spawn(w.write, b"later")
print(r.read1(10), task.get())
"""


@pytest.mark.parametrize("timeout", [1e17, sys.float_info.max])
def test_huge_finite_timeouts_on_gevents_libuv_loop(timeout):
    """libuv's timers (gevent's loop on Windows) take no more than about
    2**63 ms: a longer timeout waits as long as a native lock's longest."""
    done = subprocess.run(
        [sys.executable, "-c", LIBUV_WAIT, repr(timeout)],
        env=child_env(GEVENT_LOOP="libuv"),
        capture_output=True,
        text=True,
        timeout=WAIT * 6,
    )
    assert (done.returncode, done.stdout) == (0, "b'later' 5\n"), done.stderr


# -- KeyboardInterrupt at any function entry --------------------------------------------------

GPIPE_DIR = os.path.dirname(gpipe.__file__)
CHUNKS = [b"a" * 5, b"b" * 20, b"c\nc", b"d" * 12 + b"\ne\n"]
# Each call's timeout in a transfer: far above a handoff, and well below
# WAIT, so that a lost wakeup shows as the TimeoutError of the call that
# missed it rather than as a task still running.
CALL_TIMEOUT = WAIT / 4


def _in_a_hub() -> bool:
    """True if a gevent hub runs now (a callback of its loop, not a call's own code)."""
    hub_type = getattr(sys.modules.get("gevent.hub"), "Hub", None)
    return hub_type is not None and isinstance(greenlet.getcurrent(), hub_type)


def _in_finaliser(frame) -> bool:
    """True if *frame* runs in a ``__del__`` (a collection's finaliser)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class Injector:
    """A trace function that raises KeyboardInterrupt at the *at*-th entry
    of a gpipe function (0: never), counting entries in every task."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.counter = itertools.count(1)
        self.entries = 0
        self.fired = False
        self.names: list[str] = []  # of the functions entered, for messages

    def __call__(self, frame, event, arg):
        if (
            event == "call"
            and frame.f_code.co_filename.startswith(GPIPE_DIR)
            # repr() is not on the data path (gevent's report of a failed
            # greenlet calls it), and what a finaliser raises never leaves
            # it (it is reported as unraisable).
            and frame.f_code.co_name != "__repr__"
            and not _in_finaliser(frame)
            # Nor is a callback that the hub runs (the keepalive's timer,
            # while a call waits with another thread alive): gevent raises
            # what a callback raised in the main greenlet, wherever it is,
            # for any callback; that is gevent's doing, not a pipe call's.
            and not _in_a_hub()
        ):
            self.entries = next(self.counter)
            self.names.append(f"{frame.f_code.co_name} from {frame.f_back.f_code.co_name}")
            if self.entries == self.at and not self.fired:
                self.fired = True
                raise KeyboardInterrupt(f"injected at {frame.f_code.co_name}")
        return None


def transfer(bk, injector: Injector, reading: str):
    """Stream CHUNKS through a pipe with *injector* tracing both tasks.

    Returns what the writer says was delivered (each write's return value,
    or the ``consumed`` count of one that raised) and what the reader got.
    """
    r, w = gpipe.pipe(backend=bk.name)
    r.settimeout(CALL_TIMEOUT)
    w.settimeout(CALL_TIMEOUT)
    delivered = []

    def writer():
        sys.settrace(injector)
        try:
            for chunk in CHUNKS:
                try:
                    n = w.write(chunk)
                except KeyboardInterrupt as exc:
                    n = getattr(exc, "consumed", 0)
                delivered.append(chunk[:n])
            while True:
                try:
                    w.close()
                    return
                except KeyboardInterrupt:
                    continue  # the close did not happen: do it again
        finally:
            sys.settrace(None)

    def reader():
        sys.settrace(injector)
        got = bytearray()
        buf = bytearray(7)
        try:
            while True:
                try:
                    if reading == "read":
                        data = r.read1(7)
                    elif reading == "readline":
                        data = r.readline()
                    else:
                        data = bytes(buf[: r.readinto1(buf)])
                except KeyboardInterrupt:
                    continue  # an interrupted read consumed nothing
                if not data:
                    return bytes(got)
                got += data
        finally:
            sys.settrace(None)

    wt = bk.go(writer)
    try:
        got = bk.go(reader).get()
        wt.get()
    except KeyboardInterrupt as exc:
        # Not re-raised as it is: it would end the whole test session.
        raise AssertionError(
            f"the interrupt injected at entry {injector.at} left the transfer: "
            f"{injector.names[-5:]}"
        ) from exc
    except BaseException:
        print(f"interrupted at entry {injector.at}: {injector.names[-5:]}")
        raise
    r.close()
    return b"".join(delivered), got


@pytest.mark.parametrize("reading", ["read", "readinto", "readline"])
def test_keyboard_interrupt_at_every_function_entry_loses_nothing(bk, reading):
    """Never an error but the interrupt itself (a lock released twice
    raises RuntimeError, which fails the transfer). The compiled build is
    also never stuck (every call is bounded by its timeout: a lost wakeup
    raises TimeoutError) and never loses or duplicates a byte. The
    pure-Python build may, where the interrupt lands inside a handoff or
    a close, between recording it and waking the waiting call (as the
    guide's "Interruptions" says): those points are counted, not failed.
    """
    # Count the entries a transfer reaches, then interrupt each in turn.
    dry = Injector(0)
    delivered, got = transfer(bk, dry, reading)
    assert got == delivered == b"".join(CHUNKS)
    points = dry.entries
    entered = {name.split()[0] for name in dry.names}
    # Compiled, the only Python code a transfer enters is the ends' close
    # (the core, its mutex and the backends are C); pure, the whole core
    # and the backends' waits besides.
    assert {"close", "_shut"} <= entered, entered
    if not COMPILED:
        assert {"wait", "_take", "leave", "wake", "acquire"} <= entered, entered
    fired = 0
    mismatched = []
    stuck = []
    for at in range(1, points + 1):
        injector = Injector(at)
        try:
            delivered, got = transfer(bk, injector, reading)
        except TimeoutError:
            if COMPILED:
                raise
            stuck.append(at)
            fired += injector.fired
            continue
        if got != delivered:
            assert not COMPILED, f"interrupt at entry {at}: {injector.names[at - 1 : at]}"
            mismatched.append(at)
        fired += injector.fired
    # Thread scheduling may shift the count a little; most points were hit.
    assert fired >= points * 0.8
    print(
        f"{bk.name}/{reading}: {fired} injection points checked, "
        f"bytes lost or duplicated at {len(mismatched)}, a call woken by its timeout at "
        f"{len(stuck)}"
    )


class _ClosesReaderOnNthCollection:
    """Garbage that, on the *n*-th collection, closes a reader."""

    def __init__(self, state, n):
        self.state, self.n, self.cycle = state, n, self

    def __del__(self):
        state = self.state
        state["collections"] += 1
        if state["collections"] < self.n:
            _ClosesReaderOnNthCollection(state, self.n)
        elif not state["closed"]:
            state["closed"] = True
            state["reader"].close()


class _Recording(Backend):
    """A backend that keeps every semaphore the core makes."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dead_end = inner.dead_end
        self.made = []

    def semaphore(self):
        sem = self.inner.semaphore()
        self.made.append(sem)
        return sem

    def acquire(self, sem, timeout):
        return self.inner.acquire(sem, timeout)


def _taken(sem) -> bool:
    """A call's semaphore was released as often as it was acquired."""
    if hasattr(sem, "counter"):  # gevent's Semaphore(0)
        return sem.counter == 0
    return sem.locked()  # the threading backend's lock, made locked


def _assert_settled(core, backend):
    """Each waiting call was released once (its semaphore's count back at
    0), and nothing is left pending or owning a gate."""
    assert all(_taken(sem) for sem in backend.made)  # released once, taken once
    assert core._write is None and core._read is None
    assert core._wgate.owner is None and not core._wgate.queue
    assert core._rgate.owner is None and not core._rgate.queue


@pytest.mark.parametrize("how", ["read1", "readline", "readinto1"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_a_reader_closed_by_a_finaliser_while_a_writer_fills_it(bk, how, n):
    """The writer copies into the waiting read; a collection in the copy
    runs a finaliser that closes the reader, which wakes the read: the
    writer must not wake it again (a semaphore released twice, kept as a
    spare, ended a later wait on another pipe at once)."""
    backend = _Recording(get_backend(bk.name))
    core = Pipe(backend)
    r, w = PipeReader(core), PipeWriter(core)
    r.settimeout(WAIT)
    w.settimeout(WAIT)

    def read():
        if how == "readinto1":
            buf = bytearray(10)
            return bytes(buf[: r.readinto1(buf)])
        return r.readline() if how == "readline" else r.read1(10)

    task = bk.go(read)
    bk.wait_blocked(r)
    state = {"collections": 0, "closed": False, "reader": r}
    gc.collect()
    _ClosesReaderOnNthCollection(state, n)
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        try:
            written = w.write(bytearray(b"abcd\n"))  # one line: every read takes it all
        except gpipe.ClosedPipeError as exc:
            written = exc.consumed
    finally:
        gc.set_threshold(*old)
    try:
        got = task.get()
    except ValueError:  # closed before it returned: it returns nothing
        got = b""
    assert got in (b"", b"abcd\n") and len(got) <= written
    assert backend.made, "the read never waited"
    _assert_settled(core, backend)
    r.close()
    w.close()


@pytest.mark.parametrize("how", ["lines", "read", "readline", "readinto"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_a_reader_closed_by_a_finaliser_in_the_middle_of_a_copy(bk, how, n):
    """Whatever the point the close lands at: each waiting call is released
    once (its semaphore's count back at 0), nothing is left pending, and
    the lines read, the write's ``consumed`` and the close agree."""
    backend = _Recording(get_backend(bk.name))
    core = Pipe(backend)
    r, w = PipeReader(core), PipeWriter(core)
    r.settimeout(WAIT)
    w.settimeout(WAIT)
    task = bk.go(w.write, b"a\nb\nc\n")
    bk.wait_blocked(w)
    state = {"collections": 0, "closed": False, "reader": r}
    gc.collect()
    _ClosesReaderOnNthCollection(state, n)
    got = []

    def all_read_before_the_close():
        # Then close here: a blocked read allocates nothing, so no more
        # collections would come to run the finaliser.
        if sum(map(len, got)) == 6 and not state["closed"]:
            state["closed"] = True
            r.close()

    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        # The ValueError of reading a reader closed here, or of iterating one.
        with pytest.raises(ValueError, match=r"read from a closed PipeReader|on closed file"):
            if how == "lines":
                for line in r:
                    got.append(line)
                    all_read_before_the_close()
            while True:
                all_read_before_the_close()
                if how == "readinto":
                    buf = bytearray(2)
                    got.append(bytes(buf[: r.readinto1(buf)]))
                else:
                    got.append(r.readline() if how == "readline" else r.read1(2))
    finally:
        gc.set_threshold(*old)
    try:
        written = task.get()
    except gpipe.ClosedPipeError as exc:
        written = exc.consumed  # no short writes: what readers took
    assert b"".join(got) == b"a\nb\nc\n"[:written]
    assert backend.made, "the write never waited"
    _assert_settled(core, backend)
    w.close()


@pytest.mark.parametrize("backend", [None, object(), "gevent"])
def test_a_pipe_core_takes_only_a_backend(backend):
    """Anything else is refused at once, on both builds (compiled, a call
    on it would be a C call on an object of the wrong type)."""
    with pytest.raises(TypeError, match="backend is a Backend"):
        Pipe(backend)
