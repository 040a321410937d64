"""What goes on around a pipe call: warnings as errors, garbage collection
in the middle of a call, reference cycles, extreme timeouts, and a
KeyboardInterrupt landing at any point of a transfer."""

from __future__ import annotations

import gc
import itertools
import os
import sys
import warnings
import weakref

import pytest

import gpipe

from .conftest import WAIT


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


# -- KeyboardInterrupt at any function entry --------------------------------------------------

GPIPE_DIR = os.path.dirname(gpipe.__file__)
CHUNKS = [b"a" * 5, b"b" * 20, b"c\nc", b"d" * 12 + b"\ne\n"]


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
        if event == "call" and frame.f_code.co_filename.startswith(GPIPE_DIR):
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
    r.settimeout(WAIT)
    w.settimeout(WAIT)
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
    except BaseException:
        print(f"interrupted at entry {injector.at}: {injector.names[-5:]}")
        raise
    r.close()
    return b"".join(delivered), got


@pytest.mark.parametrize("reading", ["read", "readinto", "readline"])
def test_keyboard_interrupt_at_every_function_entry_loses_nothing(bk, reading):
    # Count the entries a transfer reaches, then interrupt each in turn.
    dry = Injector(0)
    delivered, got = transfer(bk, dry, reading)
    assert got == delivered == b"".join(CHUNKS)
    points = dry.entries
    assert points > 20
    fired = 0
    for at in range(1, points + 1):
        injector = Injector(at)
        delivered, got = transfer(bk, injector, reading)
        # Never lost, never duplicated, never stuck (every call is bounded
        # by its timeout, and a lost wakeup would raise TimeoutError).
        assert got == delivered, f"interrupt at entry {at}"
        fired += injector.fired
    # Thread scheduling may shift the count a little; most points were hit.
    assert fired >= points * 0.8
    print(f"{bk.name}/{reading}: {fired} injection points checked")


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


@pytest.mark.parametrize("how", ["lines", "read", "readline", "readinto"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_a_reader_closed_by_a_finaliser_in_the_middle_of_a_copy(bk, how, n):
    """Whatever the point the close lands at: the writer is released once
    (its semaphore's count back at 0), and the lines read, the write's
    count and the close agree."""
    r, w = gpipe.pipe(backend=bk.name)
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
        # ClosedPipeError, or the ValueError of iterating a closed file.
        with pytest.raises(ValueError):
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
    except gpipe.ClosedPipeError:
        written = 0
    assert b"".join(got) == b"a\nb\nc\n"[:written]
    assert w._pipe._wsem.acquire(False) is False  # released once, taken once
    w.close()
