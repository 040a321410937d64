"""A stateful property test of one pipe against a reference model.

hypothesis drives random sequences of writes (of 0 to 40 bytes), reads
(``read1(n)`` with n = 0 or positive, ``readinto1``, ``read(-1)``), closes with and
without an error from either end, per-end timeouts, ``gevent.Timeout``,
kills and garbage collection of an end. Every call that may block runs
as a concurrent task (a greenlet, or an OS thread on the threading
backend); at most one read and one write are in the pipe at a time, so
the model can predict each call exactly: what it returns, what it
raises (the very instance, or the type and message), and the
``consumed`` count of a write that raised. After each step the machine
waits until every call the model says has finished has finished, and
every call it says is blocked is blocked in the pipe.

The model follows the contract in ``gpipe/_pipe.py``: one write serves
one or more reads; an interrupted write withdraws what no reader took, and a close that
ends a write raises too (no short writes), with ``consumed`` set;
an interrupted read consumes nothing (a reader interrupted after a
writer filled its request keeps the bytes for the next read, and a
``readall`` that raises gives back what it gathered); closing the
reader drops such kept bytes.

Independently of the model, :class:`~tests._tasks.Ledger` checks after
every step that the bytes taken from the pipe are exactly the
concatenation, in order, of each write's contribution (all of it, or
the ``consumed`` prefix it reported when it raised).
"""

from __future__ import annotations

import gc
import sys
import warnings
from typing import Any

import gevent
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import gpipe

from ._tasks import (
    Call,
    Ledger,
    hypothesis_settings,
    reader_blocked,
    wait_until,
    writer_blocked,
)

MAXSIZE = sys.maxsize
SHORT = 0.004  # a timeout that expires while the machine waits

# How the model names an error: the very instance, or a type and message.
Err = tuple[Any, ...]
CLOSED_READER = ("msg", ValueError, "read from a closed PipeReader")
CLOSED_WRITER = ("msg", gpipe.ClosedPipeError, "write to a closed PipeWriter")
READER_GONE = ("msg", gpipe.ClosedPipeError, "write to a pipe whose reader was closed")
READER_COLLECTED = ("msg", gpipe.ClosedPipeError, "read end collected without close")
WRITER_COLLECTED = (
    "msg",
    gpipe.WriterAbortedError,
    "the writer was garbage-collected without being closed",
)
READ_TIMEOUT = ("msg", TimeoutError, "read timed out")
WRITE_TIMEOUT = ("msg", TimeoutError, "write timed out")

# Counted over the whole module, printed at its end (pytest -s).
STATS = {"examples": 0, "steps": 0, "calls": 0, "faults": 0}


class Killed(Exception):
    """Thrown into a blocked call by a kill."""


class CloseError(Exception):
    """Given to close_with_error()."""


def same_error(exc: BaseException, err: Err) -> bool:
    if err[0] == "is":
        return exc is err[1]
    return type(exc) is err[1] and str(exc) == err[2]


class PendingRead:
    def __init__(self, call: Call, kind: str, n: int, buf: bytearray | None) -> None:
        self.call = call
        self.kind = kind  # "read", "readinto" or "readall"
        self.n = n
        self.buf = buf
        self.acc: list[bytes] = []  # what a readall gathered so far

    @property
    def want(self) -> int:
        return MAXSIZE if self.kind == "readall" else self.n


class PendingWrite:
    def __init__(self, call: Call, index: int, data: bytes, off: int) -> None:
        self.call = call
        self.index = index  # in the ledger
        self.data = data
        self.off = off  # bytes readers took


class PipeMachine(RuleBasedStateMachine):
    backend = "gevent"

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.r: gpipe.PipeReader | None
        self.w: gpipe.PipeWriter | None
        self.r, self.w = gpipe.pipe(backend=self.backend)
        self.core = self.r._pipe
        self.ledger = Ledger()
        self.seq = 0
        # The model.
        self.rclosed = self.wclosed = False
        self.rerr: Err | None = None
        self.werr: Err | None = None
        self.pushback = b""
        self.pr: PendingRead | None = None
        self.pw: PendingWrite | None = None
        self.rtimeout: float | None = None
        self.wtimeout: float | None = None
        # Calls (and dropped bytes) resolved by the model, in stream order,
        # to be checked against what really happened at the end of the step.
        self.resolving: list[tuple[Any, ...]] = []

    # -- the model ---------------------------------------------------------

    def expect_return(
        self,
        call: Call,
        value: Any,
        buf: bytearray | None = None,
        chunk: bytes = b"",
    ) -> None:
        self.resolving.append(("ret", call, value, buf, chunk))

    def expect_raise(self, call: Call, err: Err, consumed: int | None = None) -> None:
        self.resolving.append(("raise", call, err, consumed))

    def expect_write(
        self, call: Call, index: int, data: bytes, err: Err | None, consumed: int
    ) -> None:
        if err is None:
            self.expect_return(call, len(data))
        else:
            self.expect_raise(call, err, consumed)
        self.resolving.append(("write", call, index, len(data)))

    def end_write_by_close(self, pw: Any, err: Err) -> None:
        """A close ends a blocked write: it raises *err*, with ``consumed``
        the part readers took (no short writes)."""
        self.expect_write(pw.call, pw.index, pw.data, err, pw.off)

    def drop(self, chunk: bytes) -> None:
        self.resolving.append(("drop", chunk))

    def finish_read(self, pr: PendingRead, chunk: bytes) -> None:
        """The pending read *pr* returns *chunk* (its last, for a readall)."""
        if pr.kind == "readall":
            self.expect_return(pr.call, b"".join(pr.acc))
        elif pr.kind == "readinto":
            self.expect_return(pr.call, len(chunk), pr.buf, chunk)
        else:
            self.expect_return(pr.call, chunk)

    def fail_read(self, pr: PendingRead, err: Err) -> None:
        """*pr* raises: what it gathered goes back in front of the stream,
        unless the reader is closed (then no one reads it again)."""
        gathered = b"".join(pr.acc)
        if self.rclosed:
            self.drop(gathered)
        else:
            self.pushback = gathered + self.pushback
        self.expect_raise(pr.call, err)

    def take(self, n: int) -> tuple[Any, ...]:
        """One read of up to *n* bytes in the core: ret, raise or block."""
        if self.rclosed:
            return ("raise", CLOSED_READER)
        if self.pushback:
            chunk, self.pushback = self.pushback[:n], self.pushback[n:]
            return ("ret", chunk)
        if self.wclosed:
            return ("raise", self.werr) if self.werr else ("ret", b"")
        pw = self.pw
        if pw is not None:
            chunk = pw.data[pw.off : pw.off + n]
            pw.off += len(chunk)
            if pw.off == len(pw.data):
                self.expect_write(pw.call, pw.index, pw.data, None, len(pw.data))
                self.pw = None
            return ("ret", chunk)
        return ("block",)

    def run_readall(self, pr: PendingRead, timeout: Err | None) -> None:
        """Go on with the loop of a readall until it returns, raises or blocks."""
        while True:
            res = self.take(MAXSIZE)
            if res[0] == "ret":
                if not res[1]:
                    self.finish_read(pr, b"")
                    return
                pr.acc.append(res[1])
                continue
            if res[0] == "raise":
                self.fail_read(pr, res[1])
                return
            if timeout is not None:
                self.fail_read(pr, timeout)
                return
            self.pr = pr
            return

    def model_read(self, pr: PendingRead, gtimeout: BaseException | None) -> None:
        timeout = ("is", gtimeout) if gtimeout is not None else None
        if timeout is None and self.rtimeout is not None:
            timeout = READ_TIMEOUT
        if pr.kind == "readall":
            self.run_readall(pr, timeout)
            return
        if pr.n == 0:
            if self.rclosed:
                self.expect_raise(pr.call, CLOSED_READER)
            elif self.wclosed and self.werr and not self.pushback:
                self.expect_raise(pr.call, self.werr)
            else:
                self.finish_read(pr, b"")
            return
        res = self.take(pr.n)
        if res[0] == "ret":
            self.finish_read(pr, res[1])
        elif res[0] == "raise":
            self.fail_read(pr, res[1])
        elif timeout is not None:
            self.fail_read(pr, timeout)
        else:
            self.pr = pr

    def write_error(self) -> Err | None:
        if self.wclosed:
            return CLOSED_WRITER
        if self.rclosed:
            return self.rerr or READER_GONE
        return None

    def model_write(
        self, call: Call, index: int, data: bytes, gtimeout: BaseException | None
    ) -> None:
        err = self.write_error()
        if err is not None or not data:
            self.expect_write(call, index, data, err, 0)
            return
        done = 0
        pr = self.pr
        if pr is not None:
            # A reader is waiting: the write fills its request at once.
            chunk = data[: pr.want]
            done = len(chunk)
            self.pr = None
            if pr.kind == "readall":
                pr.acc.append(chunk)
                # It waits on, under the deadline it started with: none (a
                # readall with a timeout never blocks in the model).
                self.run_readall(pr, None)
            else:
                self.finish_read(pr, chunk)
            if done == len(data):
                self.expect_write(call, index, data, None, done)
                return
        if gtimeout is not None:
            self.expect_write(call, index, data, ("is", gtimeout), done)
        elif self.wtimeout is not None:
            self.expect_write(call, index, data, WRITE_TIMEOUT, done)
        else:
            self.pw = PendingWrite(call, index, data, done)

    def model_close_read(self, err: Err | None) -> None:
        if self.rclosed:
            return  # the first close wins
        self.rclosed = True
        self.rerr = err
        self.drop(self.pushback)
        self.pushback = b""
        if self.pr is not None:
            self.fail_read(self.pr, CLOSED_READER)
            self.pr = None
        if self.pw is not None:
            pw, self.pw = self.pw, None
            self.end_write_by_close(pw, err or READER_GONE)

    def model_close_write(self, err: Err | None) -> None:
        if self.wclosed:
            return  # the first close wins
        self.wclosed = True
        self.werr = err
        if self.pw is not None:
            pw, self.pw = self.pw, None
            self.end_write_by_close(pw, CLOSED_WRITER)
        if self.pr is not None:
            pr, self.pr = self.pr, None
            if err is not None:
                self.fail_read(pr, err)
            else:
                self.finish_read(pr, b"")

    # -- running calls -----------------------------------------------------

    def go(self, fn: Any, *args: Any) -> Call:
        STATS["calls"] += 1
        return Call(self.backend, fn, *args)

    def next_data(self, size: int) -> bytes:
        self.seq += 1
        return bytes((self.seq * 31 + i * 7) % 251 for i in range(size))

    def settle(self) -> None:
        """Wait until the pipe is where the model says; check every outcome."""
        calls = [item[1] for item in self.resolving if item[0] in ("ret", "raise")]
        pr, pw = self.pr, self.pw

        def there() -> bool:
            for call in (pr and pr.call, pw and pw.call):
                if call is not None and call.done:
                    raise AssertionError(f"a call the model says blocks ended: {call.outcome}")
            return (
                all(call.done for call in calls)
                and (pr is None or reader_blocked(self.core))
                and (pw is None or writer_blocked(self.core))
            )

        wait_until(self.backend, there, "the pipe reaches the model's state")
        resolving, self.resolving = self.resolving, []
        for item in resolving:
            self.check(item)

    def check(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "drop":
            self.ledger.dropped(item[1])
        elif kind == "write":
            _, call, index, size = item
            outcome = call.outcome
            # A write returns its size, or the short count a close left it.
            self.ledger.write_result(index, outcome[1] if outcome[0] == "ret" else outcome[2])
        elif kind == "ret":
            _, call, value, buf, chunk = item
            assert call.outcome[0] == "ret", f"expected {value!r}, got {call.outcome}"
            got = call.outcome[1]
            assert got == value
            if buf is not None:
                assert bytes(buf[:got]) == chunk
                self.ledger.read(chunk)
            elif isinstance(got, bytes):
                self.ledger.read(got)
        else:
            _, call, err, consumed = item
            assert call.outcome[0] == "raise", f"expected {err}, got {call.outcome}"
            exc = call.outcome[1]
            assert same_error(exc, err), f"expected {err}, got {exc!r}"
            if consumed is not None:
                assert call.outcome[2] == consumed, (
                    f"consumed {call.outcome[2]}, expected {consumed}"
                )

    # -- rules -------------------------------------------------------------

    def gtimeout(self, use: bool, timeout: float | None) -> BaseException | None:
        # Only where the end has no timeout of its own: two timeouts of the
        # same length would race.
        if use and self.backend == "gevent" and timeout is None:
            STATS["faults"] += 1
            return gevent.Timeout(SHORT)
        return None

    @precondition(lambda self: self.w is not None and self.pw is None)
    @rule(size=st.integers(0, 40), use_gtimeout=st.booleans())
    def write(self, size: int, use_gtimeout: bool) -> None:
        data = self.next_data(size)
        gto = self.gtimeout(use_gtimeout, self.wtimeout)
        index = self.ledger.wrote(data)
        call = self.go(timed_write, self.w, data, gto)
        self.model_write(call, index, data, gto)
        self.settle()

    @precondition(lambda self: self.w is not None)
    @rule()
    def write_empty(self) -> None:
        """``write(b"")`` never blocks, even beside a blocked write."""
        index = self.ledger.wrote(b"")
        call = self.go(timed_write, self.w, b"", None)
        self.model_write(call, index, b"", None)
        self.settle()

    @precondition(lambda self: self.r is not None and self.pr is None)
    @rule(
        kind=st.sampled_from(["read", "readinto", "readall"]),
        n=st.integers(0, 50),
        use_gtimeout=st.booleans(),
    )
    def read(self, kind: str, n: int, use_gtimeout: bool) -> None:
        buf = bytearray(n) if kind == "readinto" else None
        gto = self.gtimeout(use_gtimeout, self.rtimeout)
        call = self.go(timed_read, self.r, kind, n, buf, gto)
        self.model_read(PendingRead(call, kind, n, buf), gto)
        self.settle()

    @precondition(lambda self: self.r is not None)
    @rule(into=st.booleans())
    def read_empty(self, into: bool) -> None:
        """``read(0)`` never blocks, even beside a blocked read."""
        kind = "readinto" if into else "read"
        buf = bytearray(0) if into else None
        call = self.go(timed_read, self.r, kind, 0, buf, None)
        self.model_read(PendingRead(call, kind, 0, buf), None)
        self.settle()

    @rule(reader=st.booleans(), timeout=st.sampled_from([None, 0, SHORT]))
    def settimeout(self, reader: bool, timeout: float | None) -> None:
        end = self.r if reader else self.w
        if end is None:
            return
        end.settimeout(timeout)
        assert end.gettimeout() == timeout
        if reader:
            self.rtimeout = timeout
        else:
            self.wtimeout = timeout

    @rule(reader=st.booleans(), how=st.sampled_from(["close", "none", "error"]))
    def close(self, reader: bool, how: str) -> None:
        end = self.r if reader else self.w
        if end is None:
            return
        STATS["faults"] += 1
        err: Err | None = None
        if how == "close":
            end.close()
        elif how == "none":
            end.close_with_error(None)
        else:
            exc = CloseError(f"closed by the {'reader' if reader else 'writer'}")
            err = ("is", exc)
            end.close_with_error(exc)
        assert end.closed
        if reader:
            self.model_close_read(err)
        else:
            self.model_close_write(err)
        self.settle()

    @precondition(lambda self: self.backend == "gevent" and (self.pr or self.pw))
    @rule(reader=st.booleans())
    def kill(self, reader: bool) -> None:
        pending = self.pr if reader else self.pw
        if pending is None:
            return
        STATS["faults"] += 1
        exc = Killed()
        pending.call.kill(exc)
        if isinstance(pending, PendingRead):
            self.pr = None
            self.fail_read(pending, ("is", exc))
        else:
            self.pw = None
            self.expect_write(pending.call, pending.index, pending.data, ("is", exc), pending.off)
        self.settle()

    @precondition(
        lambda self: self.backend == "gevent" and self.pr is not None and self.w is not None
    )
    @rule(size=st.integers(1, 40))
    def kill_reader_then_write(self, size: int) -> None:
        """A kill lands on a reader after a writer filled its request.

        The kill is scheduled first, so it runs before the reader wakes:
        the reader raises, and the bytes it was handed are kept for the
        next read (nothing lost, nothing read twice).
        """
        assert self.pr is not None and self.w is not None
        pr = self.pr
        size = min(size, pr.want)
        if self.wclosed:
            return
        STATS["faults"] += 1
        data = self.next_data(size)
        index = self.ledger.wrote(data)
        exc = Killed()
        pr.call.kill(exc)
        assert self.w.write(data) == size  # fills the reader, never blocks
        self.ledger.write_result(index, size)
        self.pr = None
        self.pushback = data
        self.fail_read(pr, ("is", exc))  # a readall gives back all it gathered
        self.settle()

    @precondition(
        lambda self: self.backend == "gevent" and self.pw is not None and self.r is not None
    )
    @rule(n=st.integers(1, 50), into=st.booleans())
    def kill_writer_then_read(self, n: int, into: bool) -> None:
        """A kill lands on a writer after a reader took (some of) its bytes."""
        assert self.pw is not None and self.r is not None
        pw = self.pw
        STATS["faults"] += 1
        exc = Killed()
        pw.call.kill(exc)
        if self.pushback:  # read first: the writer is not touched
            chunk, self.pushback = self.pushback[:n], self.pushback[n:]
            consumed = pw.off
        else:
            chunk = pw.data[pw.off : pw.off + n]
            consumed = pw.off + len(chunk)
        if into:
            buf = bytearray(n)
            assert self.r.readinto1(buf) == len(chunk)  # never blocks
            got = bytes(buf[: len(chunk)])
        else:
            got = self.r.read1(n)
        assert got == chunk
        self.ledger.read(got)
        self.pw = None
        self.expect_write(pw.call, pw.index, pw.data, ("is", exc), consumed)
        self.settle()

    @rule(reader=st.booleans())
    def collect(self, reader: bool) -> None:
        """Drop the last reference to an end with no call in progress."""
        end = self.r if reader else self.w
        if end is None or (self.pr if reader else self.pw) is not None:
            return
        was_open = not end.closed
        end_id = id(end)
        if reader:
            self.r = None
        else:
            self.w = None
        gc.collect()  # other garbage first: only this end's warning counts
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del end
            gc.collect()
        # The warning's source is the end itself, kept alive by the record.
        unclosed = [
            w for w in caught if issubclass(w.category, ResourceWarning) and id(w.source) == end_id
        ]
        caught.clear()
        assert len(unclosed) == was_open, "an unclosed end was not finalised at once"
        if was_open:
            STATS["faults"] += 1
            if reader:
                self.model_close_read(READER_COLLECTED)
            else:
                self.model_close_write(WRITER_COLLECTED)
        self.settle()

    @invariant()
    def stream_is_exact(self) -> None:
        STATS["steps"] += 1
        pending = None if self.pw is None else (self.pw.index, self.pw.off)
        held = self.pushback + (b"".join(self.pr.acc) if self.pr else b"")
        self.ledger.check(pending, held)

    def teardown(self) -> None:
        for reader in (True, False):
            end = self.r if reader else self.w
            if end is not None:
                end.close()
                if reader:
                    self.model_close_read(None)
                else:
                    self.model_close_write(None)
                # Before the next close: a call woken by this one re-checks
                # both ends when it runs, and must see only this close.
                self.settle()
        assert self.pr is None and self.pw is None
        self.ledger.check()


def timed_write(w: gpipe.PipeWriter, data: bytes, gtimeout: Any | None) -> int:
    if gtimeout is None:
        return w.write(data)
    with gtimeout:  # a gevent.Timeout, started here, in the calling greenlet
        return w.write(data)


def timed_read(
    r: gpipe.PipeReader,
    kind: str,
    n: int,
    buf: bytearray | None,
    gtimeout: Any | None,
) -> Any:
    def call() -> Any:
        if kind == "readinto":
            return r.readinto1(buf)
        if kind == "readall":
            return r.read(-1)
        return r.read1(n)

    if gtimeout is None:
        return call()
    with gtimeout:
        return call()


class GeventMachine(PipeMachine):
    backend = "gevent"


class ThreadingMachine(PipeMachine):
    backend = "threading"


SETTINGS = hypothesis_settings(examples=100, soak_examples=1000, stateful_step_count=40)
TestGevent = GeventMachine.TestCase
TestGevent.settings = SETTINGS
TestThreading = ThreadingMachine.TestCase
TestThreading.settings = SETTINGS


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    print(
        f"\nstateful: {STATS['examples']} examples, {STATS['steps']} steps, "
        f"{STATS['calls']} concurrent calls, {STATS['faults']} faults injected"
    )
