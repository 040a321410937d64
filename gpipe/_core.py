"""The pipe core: all state of one pipe, shared by its two ends.

One private object holds the gates, the pending write, the waiting
reader, the two close errors and the semaphores the blocked calls wait
on; ``PipeReader`` and ``PipeWriter`` only hold a reference to it and
delegate. This is Go's ``io.pipe`` (``src/io/pipe.go``) with its
channels spelled out:

* the read and write gates serialise the calls of each side, so that
  each write stays contiguous (Go's ``wrMu``);
* a waiting reader publishes its request (``_want``), a waiting writer
  its data (``_wview``); each waits on its side's semaphore, which is
  released exactly once per wait: by the call that completes the
  handoff, or by a close (Go's ``done``);
* the state is guarded by ``_mutex``, a native lock held for a few
  bytecodes at a time and never while waiting.

A handoff is done by whichever side arrives second: a writer that finds
a reader waiting copies into the reader's buffer and returns without
blocking; a reader that finds a write pending copies from it and wakes
the writer only when the write is used up. So a handoff blocks one side
once, not both.

A pipe made with ``bufsize > 0`` also keeps up to that many bytes in
``_buf``, so writers can run ahead of readers; unbuffered pipes use
``_buf`` only for the bytes of an interrupted read (``_keep_unread``).
"""

from __future__ import annotations

import io
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Optional, Union

from ._backends import _original
from ._backends import per_thread as _per_thread
from ._errors import ClosedPipeError

_monotonic = time.monotonic

# What a reader asks for: a writable byte memoryview to fill (``readinto``),
# a maximum number of bytes to be returned as bytes (``read``), or, as a
# negative int -n, at most n bytes that end after the first newline if
# there is one in them (a part of ``readline``).
Want = Union[memoryview, int]
# What a reader gets: a byte count for a memoryview, bytes for an int.
Got = Union[int, bytes]
# How one end was closed: the error given to close_with_error() and the
# traceback it had then (every raise starts again from that traceback, so
# raising one stored error over and over never grows its traceback chain),
# or _PLAIN for a close without an error.
_Close = tuple[Optional[BaseException], Any]
_PLAIN: _Close = (None, None)
# A gate (one per side) serialises the calls of that side: None when free,
# _BUSY when a call owns it, and a deque of the calls queued behind the
# owner, in arrival order, once one had to queue. Each queued call waits on
# an event of its own; the owner hands the gate straight to the first live
# one when it leaves. (Not one shared semaphore: a gevent semaphore belongs
# to one hub, and calls from several native threads may queue at a gate.)
Gate = Union[None, tuple[()], deque[Any]]
_BUSY: tuple[()] = ()
# readline()'s limit when it has none: larger than any line.
_NO_LIMIT = 1 << 62

# Where a wait runs: a token that lives exactly as long as its native
# thread, kept in a thread-local of the unpatched _thread module. A waiting
# call records a weak reference to it; once that thread has exited, a call
# still "waiting" there can never run again (a greenlet of a hub whose
# thread is gone), and the others stop waiting for it. _per_thread is the
# unpatched thread-local the backends keep (see _backends.per_thread).


class _Thread:
    __slots__ = ("__weakref__",)


def _thread_ref() -> Callable[[], Any]:
    """A weak reference to the calling native thread's token."""
    try:
        return _per_thread.ref  # type: ignore[no-any-return]
    except AttributeError:
        token = _per_thread.token = _Thread()
        ref = _per_thread.ref = weakref.ref(token)
        return ref


_newline = re.compile(b"\n").search


def _line_end(data: Any, start: int, limit: int) -> int:
    """Where a part of a line taken from *data* at *start* ends: after the
    first newline before ``start + limit``, else there (or at the end).

    Searches the writer's memoryview or the buffer in place, with no copy.
    """
    stop = start + limit
    found = _newline(data, start, stop)
    if found is not None:
        return found.end()
    return min(stop, len(data))


def _consumed(exc: BaseException, count: int) -> None:
    """Tell the caller of an interrupted write how much of it was read."""
    try:
        exc.consumed = count  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass


def _dead_end(exc: BaseException, what: str) -> None:
    """Say which pipe call a LoopExit stopped (gevent's message names none)."""
    note = (
        f"gpipe: {what} was blocked, and nothing else could run: no greenlet of "
        "this thread was ready and no other native thread was alive to complete it"
    )
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: no notes; the message carries it
        exc.args = (f"{exc.args[0] if exc.args else ''}\n{note}", *exc.args[1:])


class Pipe:
    """The state of one pipe. Not thread-safe on its own: see ``_mutex``."""

    __slots__ = (
        "_ahead",
        "_buf",
        "_closed",
        "_got",
        "_mutex",
        "_rclosed",
        "_rgate",
        "_rreq",
        "_rsem",
        "_rsem_ref",
        "_rwaiter",
        "_want",
        "_wclosed",
        "_wgate",
        "_woff",
        "_wsem",
        "_wsem_ref",
        "_wview",
        "_wwaiter",
        "backend",
        "bufsize",
    )

    def __init__(self, backend: Any, bufsize: int = 0) -> None:
        self.backend = backend
        # Reentrant: a garbage collection inside a call may run a finaliser
        # that closes an end of this very pipe in the same thread.
        self._mutex = _original("_thread", "RLock")()
        self._rgate: Gate = None
        self._wgate: Gate = None
        # The semaphore each side waits on, made on first use, and again
        # when that side first waits in another place (backend.place(): a
        # gevent semaphore belongs to the hub that waited on it first).
        # Its count is 0 whenever no call of that side waits.
        self._rsem: Any = None
        self._wsem: Any = None
        self._rsem_ref: Any = None  # the place the semaphore was made for
        self._wsem_ref: Any = None
        self._rreq: Optional[Want] = None  # the waiting reader's request, kept
        # While a call waits: its thread (see _thread_ref), else None.
        self._rwaiter: Any = None
        self._wwaiter: Any = None
        # The waiting reader's request, until a writer or a close takes it.
        self._want: Optional[Want] = None
        self._got: Optional[Got] = None  # what a writer put into the request
        # The waiting writer's data, until readers used it up or a close
        # took it, and how much of it readers consumed.
        self._wview: Optional[memoryview] = None
        self._woff = 0
        # Bytes accepted from writers and not read yet, read before anything
        # else: up to bufsize of them, plus any a writer handed to a reader
        # that was interrupted before it could return them. A bytearray
        # (whose front deletion is cheap) in a buffered pipe; in an
        # unbuffered one an empty bytes until needed.
        self._buf: Union[bytes, bytearray] = bytearray() if bufsize else b""
        self.bufsize = bufsize
        # The lines a line iterator took from a write ahead of its caller:
        # (the iterator, its list), until the iterator has handed them all
        # out or another read takes them back (see lines()).
        self._ahead: Optional[tuple[Any, list[bytes]]] = None
        self._closed = False  # either end: one check on the hot path
        self._rclosed: Optional[_Close] = None  # how the reader was closed
        self._wclosed: Optional[_Close] = None  # how the writer was closed

    # -- closing -----------------------------------------------------------

    def close_read(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._rclosed:
                return  # the first close wins
            self._rclosed = _PLAIN if exc is None else (exc, exc.__traceback__)
            self._closed = True
            self._buf = b""  # no one will read it: drop it, even when buffered
            ahead = self._ahead
            if ahead is not None:
                # Nor the lines a line iterator took ahead: it stops at once.
                self._ahead = None
                ahead[0].__setstate__(len(ahead[1]))
            # Take whatever waits and release it, inline (no Python call
            # between the close and the wakeups, where a KeyboardInterrupt
            # could land): each wait is released once, by whoever takes it.
            # Calls queued at a gate need no wakeup: the owner of the gate
            # is woken, fails, and hands the gate on, and so on down the queue.
            if self._want is not None:
                self._want = None
                self._rsem.release()
            if self._wview is not None:
                self._wview = None
                self._wsem.release()

    def close_write(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._wclosed:
                return  # the first close wins
            self._wclosed = _PLAIN if exc is None else (exc, exc.__traceback__)
            self._closed = True
            # Take whatever waits and release it, inline (no Python call
            # between the close and the wakeups, where a KeyboardInterrupt
            # could land): each wait is released once, by whoever takes it.
            # Calls queued at a gate need no wakeup: the owner of the gate
            # is woken, fails, and hands the gate on, and so on down the queue.
            if self._want is not None:
                self._want = None
                self._rsem.release()
            if self._wview is not None:
                self._wview = None
                self._wsem.release()

    # -- errors ------------------------------------------------------------

    def _read_error(self) -> BaseException:
        if self._rclosed:
            return ClosedPipeError("read from a closed PipeReader")
        assert self._wclosed is not None
        exc, tb = self._wclosed
        assert exc is not None
        return exc.with_traceback(tb)

    def _write_error(self) -> BaseException:
        """The error of a write that readers took nothing of."""
        exc: Optional[BaseException]
        if self._wclosed:
            exc = ClosedPipeError("write to a closed PipeWriter")
        else:
            assert self._rclosed is not None
            exc, tb = self._rclosed
            if exc is None:
                exc = ClosedPipeError("write to a pipe whose reader was closed")
            else:
                exc = exc.with_traceback(tb)
        _consumed(exc, 0)
        return exc

    def _eof(self, want: Want) -> Got:
        """What a read returns once the writer is closed and nothing is left."""
        if self._wclosed is not _PLAIN:
            raise self._read_error()
        return b"" if isinstance(want, int) else 0

    def check_read(self) -> None:
        """The checks of a read, for an empty read that must not block."""
        with self._mutex:
            if self._rclosed or (self._wclosed not in (None, _PLAIN) and not self._buf):
                raise self._read_error()

    def check_write(self) -> None:
        """The checks of a write, for an empty write that must not block."""
        with self._mutex:
            if self._closed:
                raise self._write_error()

    # -- gates -------------------------------------------------------------

    def _enter_gate(self, reading: bool, deadline: Optional[float]) -> None:
        """Own the busy gate of one side: reclaim it from a call that can
        never run again, or wait until it is handed to this call."""
        if reading:
            waiter = self._rwaiter
            if waiter is not None and waiter() is None:
                self._abandon_read()
            gate = self._rgate
        else:
            waiter = self._wwaiter
            if waiter is not None and waiter() is None:
                self._abandon_write()
            gate = self._wgate
        if gate is None:
            if reading:
                self._rgate = _BUSY
            else:
                self._wgate = _BUSY
            return
        if not isinstance(gate, deque):
            gate = deque()
            if reading:
                self._rgate = gate
            else:
                self._wgate = gate
        entry = (self.backend.event(), _thread_ref())
        gate.append(entry)
        try:
            timeout = None if deadline is None else max(0.0, deadline - _monotonic())
            self._mutex.release()
            try:
                self.backend.wait(entry[0], timeout)
            finally:
                self._mutex.acquire()
            # Re-check: the handover may have raced the timeout.
            if not entry[0].is_set():
                raise TimeoutError("timed out waiting for another call on this end")
        except BaseException as exc:
            try:
                gate.remove(entry)
            except ValueError:
                # The gate was handed to this call after all: pass it on
                # rather than lose it.
                self._leave_gate(reading)
            if isinstance(exc, self.backend.dead_end):
                _dead_end(
                    exc, f"a {'read from a PipeReader' if reading else 'write to a PipeWriter'}"
                )
            raise

    def _leave_gate(self, reading: bool) -> None:
        """Hand the gate to the first live call queued at it, or free it."""
        gate = self._rgate if reading else self._wgate
        while gate:
            event, thread = gate.popleft()
            if thread() is not None:
                event.set()  # the gate stays busy: it is that call's now
                return
        if reading:
            self._rgate = None
        else:
            self._wgate = None

    def _abandon_read(self) -> None:
        """The read that owns the gate waits in a thread that has exited."""
        want = self._rreq
        self._want = self._rwaiter = self._rreq = None
        self._rsem = self._rsem_ref = None  # it belonged to that thread's hub
        try:
            # Bytes a writer already put into its request were counted as
            # read by that writer: keep them for the next read.
            if want is not None:
                self._keep_unread(want)
        finally:
            self._got = None
            self._leave_gate(True)

    def _abandon_write(self) -> None:
        """The write that owns the gate waits in a thread that has exited:
        withdraw what is left of it, as for a write that was killed."""
        self._wview = self._wwaiter = None
        self._wsem = self._wsem_ref = None
        self._leave_gate(False)

    # -- reading -----------------------------------------------------------
    #
    # read() and write() are the hot path: each is one function, with the
    # uncontended gate, the deadline and the wait inlined, because at small
    # sizes the cost of a handoff is its Python bytecode, not its copy.

    def read(self, want: Want, timeout: Optional[float], gated: bool = False) -> Got:
        """Fill *want* from the next write; ``0``/``b""`` at EOF.

        *gated*: the caller owns the read gate already (see readline).
        """
        deadline = None if timeout is None else _monotonic() + timeout
        mutex = self._mutex
        mutex.acquire()  # explicit: cheaper than "with", on every call
        try:
            if gated:
                pass
            elif self._rgate is None:
                self._rgate = _BUSY
            else:
                self._enter_gate(True, deadline)
            try:
                if self._closed or self._buf or self._ahead is not None:
                    if self._ahead is not None:
                        self._reclaim_lines()  # they come before anything else
                    if self._rclosed:
                        raise self._read_error()
                    if self._buf:
                        return self._read_buffered(want)
                    if self._closed:
                        return self._eof(want)
                view = self._wview
                if view is not None and self._wwaiter() is None:
                    self._abandon_write()  # its thread is gone: never read it
                    view = None
                if view is not None:
                    # A write is pending: copy from it; wake its writer once
                    # it is used up.
                    off = self._woff
                    if isinstance(want, int):
                        end = off + want if want > 0 else _line_end(view, off, -want)
                        data = bytes(view[off:end])
                        off += len(data)
                        got: Got = data
                    else:
                        n = len(view) - off
                        if len(want) < n:
                            n = len(want)
                        want[:n] = view[off : off + n]
                        off += n
                        got = n
                    if self._wview is not view:
                        # A garbage collection in the copy ran a finaliser
                        # that closed an end, which took the write: start
                        # over, to report that close.
                        return self.read(want, timeout, True)
                    self._woff = off
                    if off == len(view):
                        self._wview = None  # taken: this call releases it
                        self._wsem.release()
                    return got

                # Nothing to read yet: publish the request for the next
                # writer to fill, and wait.
                try:
                    thread = _per_thread.ref  # _thread_ref(), inlined
                except AttributeError:
                    thread = _thread_ref()
                sem = self._rsem
                place = self.backend.place()
                if self._rsem_ref is not place:
                    sem = self._rsem = self.backend.semaphore()
                    self._rsem_ref = place
                self._rwaiter = thread
                self._rreq = self._want = want
                try:
                    # Re-check before blocking: a garbage collection since
                    # the check above may have run a finaliser that closed
                    # an end (it saw no request to release).
                    if self._want is not None and not self._closed:
                        if deadline is not None:
                            timeout = max(0.0, deadline - _monotonic())
                        mutex.release()
                        try:
                            ok = self.backend.acquire(sem, timeout)
                        finally:
                            mutex.acquire()
                    else:
                        ok = False
                    if self._want is not None:
                        # Nobody took the request: withdraw it.
                        self._want = None
                        if self._closed:
                            if self._rclosed:
                                raise self._read_error()
                            return self._eof(want)
                        raise TimeoutError("read timed out")
                    # Taken, and released once: by a writer that filled it,
                    # or by a close. If that raced a timeout, the release is
                    # still counted: take it back.
                    if not ok:
                        sem.acquire(False)
                    got = self._got
                    if got is not None:
                        return got
                    if self._rclosed:
                        raise self._read_error()
                    return self._eof(want)
                except BaseException as exc:
                    if self._want is not None:
                        self._want = None  # withdrawn: no writer will fill it
                    else:
                        sem.acquire(False)  # a release may be counted: take it
                        self._keep_unread(want)
                    if isinstance(exc, self.backend.dead_end):
                        _dead_end(exc, "a read from a PipeReader")
                    raise
                finally:
                    self._got = self._rwaiter = self._rreq = None
            finally:
                # Hand the gate on, inline (see _leave_gate): no Python call
                # here, where a KeyboardInterrupt landing at its entry would
                # keep the gate from a queued call, or turn a finished call
                # into a failed one.
                gate = None if gated else self._rgate
                while gate:
                    event, thread = gate.popleft()
                    if thread() is not None:
                        event.set()  # the gate stays busy: it is that call's now
                        break
                else:
                    if not gated:
                        self._rgate = None
        finally:
            mutex.release()
            # No reference cycle through a traceback: the pipe and the
            # caller's buffer are not kept by an exception raised here.
            self = want = None  # type: ignore[assignment]

    def readline(self, limit: int, timeout: Optional[float]) -> bytes:
        """Read up to and including the next newline, at most *limit*
        bytes (``-1``: no limit); what is left at EOF; ``b""`` at EOF.

        The read gate is held for the whole line, so that a line is never
        interleaved with another read. A line spanning writes is taken a
        write at a time, each part found by searching the writer's buffer
        in place.
        """
        mutex = self._mutex
        mutex.acquire()
        try:
            # The common case, inline: no other read in progress, nothing
            # kept, a write pending, and a whole line in it.
            view = self._wview
            if (
                view is not None
                and self._rgate is None
                and not self._closed
                and not self._buf
                and self._ahead is None
            ):
                off = self._woff
                obj = view.obj
                if type(obj) is bytes and len(obj) == len(view):
                    # The writer's own bytes: search and slice them directly.
                    end = obj.find(b"\n", off, off + limit if limit >= 0 else len(obj))
                    if end >= 0 and self._wwaiter() is not None:
                        end += 1
                        line = obj[off:end]
                        self._woff = end
                        if end == len(view):
                            self._wview = None  # taken: this call releases it
                            self._wsem.release()
                        return line
        finally:
            mutex.release()
        deadline = None if timeout is None else _monotonic() + timeout
        with mutex:
            if self._rgate is None:
                self._rgate = _BUSY
            else:
                self._enter_gate(True, deadline)
        parts: list[bytes] = []
        try:
            left = limit if limit >= 0 else _NO_LIMIT
            while left:
                if deadline is not None:
                    timeout = max(0.0, deadline - _monotonic())
                part = self.read(-left, timeout, True)
                assert isinstance(part, bytes)
                if not part:
                    break
                parts.append(part)
                if part[-1] == 10:  # b"\n"
                    break
                left -= len(part)
        except BaseException:
            # An interrupted line consumes nothing: the parts taken so far
            # go back in front of the stream.
            if parts:
                with mutex:
                    if not self._rclosed:
                        # A bytearray, as _keep_unread() leaves it.
                        self._buf = bytearray(b"".join(parts)) + self._buf
            raise
        finally:
            with mutex:
                # Inline, as in read().
                gate = self._rgate
                while gate:
                    event, thread = gate.popleft()
                    if thread() is not None:
                        event.set()
                        break
                else:
                    self._rgate = None
            self = None  # type: ignore[assignment]  # as in read()
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def lines(self, end: Any) -> Iterator[Iterator[bytes]]:
        """The lines of the stream, in batches, for iterating over *end*.

        Each batch is an iterator: over every whole line of the pending
        write when one is there (taken at once, so that the caller's
        iteration runs at C speed), else over the one line readline()
        returns. Lines taken ahead are registered in ``_ahead``: any other
        read takes back those not handed out yet, in front of the stream,
        and so does closing this generator (the caller stopped iterating),
        so that nothing is lost or reordered.
        """
        mutex = self._mutex
        batch: Any = None
        try:
            while True:
                batch = None
                mutex.acquire()
                try:
                    if self._ahead is not None:
                        self._reclaim_lines()  # a batch this generator left
                    view = self._wview
                    if (
                        view is not None
                        and self._rgate is None
                        and not self._closed
                        and not self._buf
                        and self._wwaiter() is not None
                    ):
                        off = self._woff
                        obj = view.obj
                        if off == 0 and type(obj) is bytes and len(obj) == len(view):
                            chunk = obj  # the writer's own bytes: no copy
                        else:
                            chunk = bytes(view[off:])
                        # Split at b"\n" only, as binary files do (unlike
                        # bytes.splitlines()); a last partial line stays.
                        batch_lines = io.BytesIO(chunk).readlines()
                        if batch_lines[-1][-1] != 10:  # b"\n"
                            del batch_lines[-1]
                        if batch_lines and self._wview is view and not self._closed:
                            # (Unless a finaliser run by a collection in the
                            # copy closed an end: then readline() reports it.)
                            stop = off + len(chunk)
                            if chunk[-1] != 10:
                                stop = off + chunk.rfind(b"\n") + 1
                            self._woff = stop
                            if stop == len(view):
                                self._wview = None  # taken: this call releases it
                                self._wsem.release()
                            batch = iter(batch_lines)
                            self._ahead = (batch, batch_lines)
                finally:
                    mutex.release()
                if batch is None:
                    line = self.readline(-1, end._timeout)
                    if not line:
                        return
                    yield iter((line,))
                else:
                    yield batch
        finally:
            if batch is not None:
                with mutex:
                    if self._ahead is not None and self._ahead[0] is batch:
                        self._reclaim_lines()

    def _reclaim_lines(self) -> None:
        """Take back the lines a line iterator took ahead and has not
        handed out, in front of the stream."""
        ahead = self._ahead
        assert ahead is not None
        self._ahead = None
        batch, batch_lines = ahead
        left = batch.__length_hint__()
        if left:
            batch.__setstate__(len(batch_lines))  # hands out no more
            rest = b"".join(batch_lines[len(batch_lines) - left :])
            self._buf = bytearray(rest) + self._buf

    def _keep_unread(self, want: Want) -> None:
        """An interrupted read: keep what a writer had already put into it."""
        got = self._got
        if got is not None and not self._rclosed:
            # The writer may already have returned: keep the bytes for the
            # next read, so that an interrupted read consumes nothing.
            if isinstance(got, int):
                assert isinstance(want, memoryview)
                kept = bytearray(want[:got])
            else:
                kept = bytearray(got)
            # In front of whatever writers buffered since.
            self._buf = kept + self._buf
        self._got = None

    def _read_buffered(self, want: Want) -> Got:
        buf = self._buf
        if isinstance(want, int):
            data = bytes(buf[: want if want > 0 else _line_end(buf, 0, -want)])
            n = len(data)
            got: Got = data
        else:
            n = min(len(want), len(buf))
            with memoryview(buf) as view:
                want[:n] = view[:n]
            got = n
        if isinstance(buf, bytearray):
            del buf[:n]  # a buffered pipe keeps appending to this one
        else:
            self._buf = buf[n:]
        pending = self._wview
        if pending is not None and not self._wclosed:
            # Room freed: take more of the blocked write. (Not once its own
            # end was closed: that write is failing, and withdraws the rest.)
            # Inline, as in read(): the bytes above are already taken.
            off = self._woff
            end = min(len(pending), off + self.bufsize - len(self._buf))
            if end > off:
                buf = self._buf
                if not isinstance(buf, bytearray):
                    buf = self._buf = bytearray(buf)
                buf += pending[off:end]
                self._woff = end
                if end == len(pending):
                    self._wview = None  # taken: this call releases it
                    self._wsem.release()
        return got

    def append(self, view: memoryview) -> bool:
        """Buffer all of the byte memoryview *view* if it fits and nothing
        else is in the way.

        The fast path of a buffered pipe's small writes: True if done;
        False leaves everything to :meth:`write`, which handles waiting
        readers, other writers at the gate, closes and a full buffer.
        """
        mutex = self._mutex
        mutex.acquire()
        try:
            buf = self._buf
            if (
                self._wgate is None
                and not self._closed
                and len(buf) + len(view) <= self.bufsize
                and self._want is None  # no reader waiting to be served
            ):
                buf += view  # a bytearray when buffered
                return True
            return False
        finally:
            mutex.release()

    # -- writing -----------------------------------------------------------

    def write(self, view: memoryview, timeout: Optional[float]) -> int:
        """Hand all of the non-empty byte memoryview *view* to readers.

        Returns ``len(view)``; or, when a close ends the write after
        readers took part of it, that part's length (a short write: the
        next write raises).
        """
        deadline = None if timeout is None else _monotonic() + timeout
        mutex = self._mutex
        mutex.acquire()
        try:
            if self._wgate is None:
                self._wgate = _BUSY
            else:
                try:
                    self._enter_gate(False, deadline)
                except BaseException as exc:
                    _consumed(exc, 0)
                    raise
            try:
                if self._closed:
                    raise self._write_error()
                size = len(view)
                want = self._want
                if want is not None and self._rwaiter() is None:
                    self._abandon_read()  # its thread is gone: never fill it
                    want = None
                done = 0  # how much of view readers (or the buffer) took
                published = False
                try:
                    if want is not None:
                        # A reader is waiting: fill its request now, so that
                        # only the reader blocked for this handoff.
                        if isinstance(want, int):
                            if want < 0:  # a part of a line: find its end first
                                want = _line_end(view, 0, -want)
                            self._want = None  # taken: this call releases it
                            got = bytes(view[:want])
                            done = len(got)
                            self._got = got
                        else:
                            self._want = None
                            done = len(want)
                            if size < done:
                                done = size
                            want[:done] = view[:done]
                            self._got = done
                        self._rsem.release()
                        if done == size:
                            return size
                    if self.bufsize:
                        # Buffer what fits (a buffered pipe's _buf is a bytearray).
                        buf = self._buf
                        room = self.bufsize - len(buf)
                        if room >= size - done:
                            buf += view[done:] if done else view
                            return size
                        if room > 0:
                            buf += view[done : done + room]
                            done += room

                    # Publish the rest and wait until readers used it up.
                    try:
                        thread = _per_thread.ref  # _thread_ref(), inlined
                    except AttributeError:
                        thread = _thread_ref()
                    sem = self._wsem
                    place = self.backend.place()
                    if self._wsem_ref is not place:
                        sem = self._wsem = self.backend.semaphore()
                        self._wsem_ref = place
                    self._wwaiter = thread
                    self._woff = done
                    self._wview = view
                    published = True
                    # Re-check before blocking: a garbage collection since
                    # the check above may have run a finaliser that closed
                    # an end (it saw no write to release).
                    if self._wview is not None and not self._closed:
                        if deadline is not None:
                            timeout = max(0.0, deadline - _monotonic())
                        mutex.release()
                        try:
                            ok = self.backend.acquire(sem, timeout)
                        finally:
                            mutex.acquire()
                    else:
                        ok = False
                    if self._wview is not None:
                        # Nobody took the write: withdraw the rest.
                        self._wview = None
                        if not self._closed:
                            raise TimeoutError("write timed out")
                    elif not ok:
                        # Taken and released once, racing a timeout: the
                        # release is still counted; take it back.
                        sem.acquire(False)
                    done = self._woff
                    if done == size:
                        return size
                    # A close ended it: readers took *done* bytes.
                    if done:
                        return done
                    raise self._write_error()
                except BaseException as exc:
                    if published:
                        if self._wview is not None:
                            self._wview = None  # withdrawn: no reader will see it
                        else:
                            sem.acquire(False)  # a release may be counted: take it
                        done = self._woff
                    # What no reader took was withdrawn; say how much was taken.
                    _consumed(exc, done)
                    if isinstance(exc, self.backend.dead_end):
                        _dead_end(exc, "a write to a PipeWriter")
                    raise
                finally:
                    self._wwaiter = None
            finally:
                # Hand the gate on, inline (see _leave_gate): no Python call
                # here, where a KeyboardInterrupt landing at its entry would
                # keep the gate from a queued call, or turn a finished call
                # into a failed one.
                gate = self._wgate
                while gate:
                    event, thread = gate.popleft()
                    if thread() is not None:
                        event.set()  # the gate stays busy: it is that call's now
                        break
                else:
                    self._wgate = None
        finally:
            mutex.release()
            # No reference cycle through a traceback: the pipe and the
            # caller's buffer are not kept by an exception raised here.
            self = view = None  # type: ignore[assignment]

    # -- introspection -----------------------------------------------------

    def waiting(self, reading: bool) -> int:
        """How many calls on one side are blocked now (for ``repr``)."""
        with self._mutex:
            if reading:
                return len(self._rgate or ()) + (self._want is not None)
            return len(self._wgate or ()) + (self._wview is not None)

    def status(self) -> str:
        """Which ends are closed (for ``repr``)."""
        with self._mutex:
            return (
                f"reader={'closed' if self._rclosed else 'open'}"
                f" writer={'closed' if self._wclosed else 'open'}"
            )
