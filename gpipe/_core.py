"""The pipe core: all state of one pipe, shared by its two ends.

One private object holds the write gate, the pending write, the waiting
reader, the two close errors and the signals; ``PipeReader`` and
``PipeWriter`` only hold a reference to it and delegate. Everything here
runs with ``_mutex`` held, except the waits on a signal, which release it.

A handoff is done by whichever side arrives second: a writer that finds
a reader waiting copies into the reader's buffer and returns without
blocking; a reader that finds a write pending copies from it and wakes
the writer only when the write is used up. So most handoffs block one
side once, not both.

A pipe made with ``bufsize > 0`` also keeps up to that many bytes in
``_buf``, so writers can run ahead of readers; unbuffered pipes use
``_buf`` only for the bytes of an interrupted read (see
``_wait_for_writer``).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Optional, Union

from ._errors import ClosedPipeError

_monotonic = time.monotonic

# What a reader asks for: a writable byte memoryview to fill (``readinto``)
# or a maximum number of bytes to be returned as bytes (``read``).
Want = Union[memoryview, int]
# What a reader gets: a byte count for a memoryview, bytes for an int.
Got = Union[int, bytes]
# A close error and the traceback it had when the pipe was closed with it:
# every raise starts again from that traceback, so raising one stored error
# over and over never grows its traceback chain.
_Error = tuple[BaseException, Any]


def _consumed(exc: BaseException, count: int) -> None:
    """Tell the caller of an interrupted write how much of it was read."""
    try:
        exc.consumed = count  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass


class _Gate:
    """Serialises the calls of one side, so each write stays contiguous.

    Calls that find the gate busy queue up in arrival order; the owner
    hands the gate straight to the first of them when it leaves.
    """

    __slots__ = ("busy", "queue")

    def __init__(self) -> None:
        self.busy = False  # a call owns the gate
        self.queue: Optional[deque[Any]] = None  # signals of queued calls


class Pipe:
    """The state of one pipe. Not thread-safe on its own: see ``_mutex``."""

    __slots__ = (
        "backend",
        "_mutex",
        "_rgate",
        "_wgate",
        "_rwaiter",
        "_wwaiter",
        "_rsig",
        "_wsig",
        "_want",
        "_got",
        "_wview",
        "_woff",
        "_buf",
        "_bufsize",
        "_rclosed",
        "_wclosed",
        "_rerr",
        "_werr",
    )

    def __init__(self, backend: Any, bufsize: int = 0) -> None:
        self.backend = backend
        self._mutex = backend.mutex()
        self._rgate = _Gate()
        self._wgate = _Gate()
        # Each blocking call waits on a signal of its own, made by the
        # backend in the caller's thread and registered here under the mutex.
        # (A gevent Semaphore belongs to the hub of the thread that first
        # waits on it; one shared by calls from several threads would depend
        # on another thread's hub to wake up.)
        self._rwaiter: Any = None  # the reader waiting in _want
        self._wwaiter: Any = None  # the writer waiting on _wview
        # The last signal each side waited on, which the backend hands out
        # again (cleared) when the next wait is in the same thread.
        self._rsig: Any = None
        self._wsig: Any = None
        self._want: Optional[Want] = None  # the waiting reader's request
        self._got: Optional[Got] = None  # what a writer put into _want
        self._wview: Optional[memoryview] = None  # the pending write
        self._woff = 0  # how much of _wview readers consumed
        # Bytes accepted from writers and not read yet, read before anything
        # else: up to bufsize of them, plus any a writer handed to a reader
        # that was interrupted before it could return them. An empty bytes
        # until needed, then a bytearray (whose front deletion is cheap).
        self._buf: Union[bytes, bytearray] = b""
        self._bufsize = bufsize
        self._rclosed = False
        self._wclosed = False
        self._rerr: Optional[_Error] = None
        self._werr: Optional[_Error] = None

    # -- closing -----------------------------------------------------------

    def close_read(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._rclosed:
                return  # the first close wins
            self._rclosed = True
            if exc is not None:
                self._rerr = (exc, exc.__traceback__)
            self._buf = b""  # no one will read it
            self._wake_all()

    def close_write(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._wclosed:
                return  # the first close wins
            self._wclosed = True
            if exc is not None:
                self._werr = (exc, exc.__traceback__)
            self._wake_all()

    def _wake_all(self) -> None:
        # Calls queued at a gate need no wakeup here: the call that owns the
        # gate is woken, fails, and hands the gate on, and so on down the queue.
        if self._rwaiter is not None:
            self._rwaiter.set()
        if self._wwaiter is not None:
            self._wwaiter.set()

    # -- errors ------------------------------------------------------------

    def _read_error(self) -> BaseException:
        if self._rclosed:
            return ClosedPipeError("read from a closed PipeReader")
        assert self._werr is not None
        exc, tb = self._werr
        return exc.with_traceback(tb)

    def _write_error(self) -> BaseException:
        if self._wclosed:
            return ClosedPipeError("write to a closed PipeWriter")
        if self._rerr is None:
            return ClosedPipeError("write to a pipe whose reader was closed")
        exc, tb = self._rerr
        return exc.with_traceback(tb)

    def _eof(self, want: Want) -> Got:
        """What a read returns once the writer is closed and nothing is left."""
        if self._werr is not None:
            raise self._read_error()
        return b"" if isinstance(want, int) else 0

    def check_read(self) -> None:
        """The checks of a read, for an empty read that must not block."""
        with self._mutex:
            if self._rclosed or (
                self._wclosed and self._werr is not None and not self._buf
            ):
                raise self._read_error()

    def check_write(self) -> None:
        """The checks of a write, for an empty write that must not block."""
        with self._mutex:
            if self._wclosed or self._rclosed:
                exc = self._write_error()
                _consumed(exc, 0)
                raise exc

    # -- gates -------------------------------------------------------------

    def _enter_gate(self, gate: _Gate, deadline: Optional[float]) -> None:
        """Wait until the busy *gate* is handed to this call."""
        waiter = self.backend.signal(None)
        queue = gate.queue
        if queue is None:
            queue = gate.queue = deque()
        queue.append(waiter)
        try:
            timeout = None if deadline is None else max(0.0, deadline - _monotonic())
            self._mutex.release()
            try:
                handed = waiter.wait(timeout)
            finally:
                self._mutex.acquire()
            if not handed:
                raise TimeoutError("timed out waiting for another call on this end")
        except BaseException:
            try:
                queue.remove(waiter)
            except ValueError:
                # The gate was handed to this call after the interruption
                # landed: pass it on rather than lose it.
                self._leave_gate(gate)
            raise

    @staticmethod
    def _leave_gate(gate: _Gate) -> None:
        if gate.queue:
            gate.queue.popleft().set()  # hand over: the gate stays busy
        else:
            gate.busy = False

    # -- reading -----------------------------------------------------------
    #
    # read() and write() are the hot path: each is one function, with the
    # gate and the deadline inlined, because at small sizes the cost of a
    # handoff is its Python calls, not its copy.

    def read(self, want: Want, timeout: Optional[float]) -> Got:
        """Fill *want* from the next write; ``0``/``b""`` at EOF."""
        deadline = None if timeout is None else _monotonic() + timeout
        mutex = self._mutex
        mutex.acquire()  # explicit: cheaper than "with", on every call
        try:
            gate = self._rgate
            if gate.busy:
                self._enter_gate(gate, deadline)
            else:
                gate.busy = True
            try:
                if self._rclosed:
                    raise self._read_error()
                if self._buf:
                    return self._read_buffered(want)
                if self._wclosed:
                    return self._eof(want)
                view = self._wview
                if view is not None:
                    # A write is pending: copy from it; wake its writer once
                    # it is used up.
                    off = self._woff
                    if isinstance(want, int):
                        data = bytes(view[off : off + want])
                        off += len(data)
                        got: Got = data
                    else:
                        n = min(len(want), len(view) - off)
                        want[:n] = view[off : off + n]
                        off += n
                        got = n
                    if off == len(view):
                        self._wview = None
                        self._wwaiter.set()
                    else:
                        self._woff = off
                    return got
                return self._wait_for_writer(want, deadline)
            finally:
                if gate.queue:
                    gate.queue.popleft().set()  # hand over: the gate stays busy
                else:
                    gate.busy = False
        finally:
            mutex.release()

    def _wait_for_writer(self, want: Want, deadline: Optional[float]) -> Got:
        """Publish *want* for the next writer to fill, and wait for it."""
        waiter = self._rwaiter = self._rsig = self.backend.signal(self._rsig)
        self._want = want
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - _monotonic())
                self._mutex.release()
                try:
                    ok = waiter.wait(timeout)
                finally:
                    self._mutex.acquire()
                # Re-check all state: a writer may have filled the request, or
                # a close may have run while we slept.
                got = self._got
                if got is not None:
                    return got
                if self._rclosed:
                    raise self._read_error()
                if self._wclosed:
                    return self._eof(want)
                if not ok and timeout is not None:
                    raise TimeoutError("read timed out")
        except BaseException:
            got = self._got
            if got is not None and not self._rclosed:
                # A writer filled the request before the interruption landed,
                # and may already have returned: keep the bytes for the next
                # read, so that an interrupted read consumes nothing.
                if isinstance(got, int):
                    assert isinstance(want, memoryview)
                    kept = bytearray(want[:got])
                else:
                    kept = bytearray(got)
                # In front of whatever writers buffered since.
                self._buf = kept + self._buf
            raise
        finally:
            self._want = self._got = self._rwaiter = None

    def _read_buffered(self, want: Want) -> Got:
        buf = self._buf
        if isinstance(want, int):
            data = bytes(buf[:want])
            n = len(data)
            got: Got = data
        else:
            n = min(len(want), len(buf))
            with memoryview(buf) as view:
                want[:n] = view[:n]
            got = n
        if n == len(buf):
            self._buf = b""
        else:
            assert isinstance(buf, bytearray)
            del buf[:n]
        if self._wview is not None:
            self._refill()
        return got

    def _refill(self) -> None:
        """Move what fits of the pending write into the buffer."""
        view = self._wview
        assert view is not None
        off = self._woff
        end = min(len(view), off + self._bufsize - len(self._buf))
        if end <= off:
            return
        buf = self._buf
        if not isinstance(buf, bytearray):
            buf = self._buf = bytearray(buf)
        buf += view[off:end]
        if end == len(view):
            self._wview = None
            self._wwaiter.set()
        else:
            self._woff = end

    # -- writing -----------------------------------------------------------

    def write(self, view: memoryview, timeout: Optional[float]) -> int:
        """Hand all of the non-empty byte memoryview *view* to readers."""
        deadline = None if timeout is None else _monotonic() + timeout
        size = len(view)
        mutex = self._mutex
        mutex.acquire()
        try:
            gate = self._wgate
            if gate.busy:
                try:
                    self._enter_gate(gate, deadline)
                except BaseException as exc:
                    _consumed(exc, 0)
                    raise
            else:
                gate.busy = True
            try:
                if self._wclosed or self._rclosed:
                    error = self._write_error()
                    _consumed(error, 0)
                    raise error
                want = self._want
                if want is not None and self._got is None:
                    # A reader is waiting: fill its request now, so that only
                    # the reader blocked for this handoff.
                    if isinstance(want, int):
                        got = bytes(view[:want])
                        done = len(got)
                        self._got = got
                    else:
                        done = min(len(want), size)
                        want[:done] = view[:done]
                        self._got = done
                    self._rwaiter.set()
                    if done == size:
                        return size
                else:
                    done = 0
                if self._bufsize:
                    done = self._buffer(view, done)
                    if done == size:
                        return size
                return self._wait_for_readers(view, done, deadline)
            finally:
                if gate.queue:
                    gate.queue.popleft().set()  # hand over: the gate stays busy
                else:
                    gate.busy = False
        finally:
            mutex.release()

    def _buffer(self, view: memoryview, done: int) -> int:
        """Buffer what fits of *view* after *done* bytes; return the new *done*."""
        end = min(len(view), done + self._bufsize - len(self._buf))
        if end > done:
            buf = self._buf
            if not isinstance(buf, bytearray):
                buf = self._buf = bytearray(buf)
            buf += view[done:end]
            return end
        return done

    def _wait_for_readers(self, view: memoryview, done: int, deadline: Optional[float]) -> int:
        """Publish the rest of *view* after *done* bytes; wait until it is read."""
        size = len(view)
        waiter = self._wwaiter = self._wsig = self.backend.signal(self._wsig)
        self._wview = view
        self._woff = done
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - _monotonic())
                self._mutex.release()
                try:
                    ok = waiter.wait(timeout)
                finally:
                    self._mutex.acquire()
                # Re-check all state: readers may have used the write up, or a
                # close may have run while we slept.
                if self._wview is None:
                    return size
                if self._wclosed or self._rclosed:
                    raise self._write_error()
                if not ok and timeout is not None:
                    raise TimeoutError("write timed out")
        except BaseException as exc:
            # What no reader took is withdrawn (below); say how much was taken.
            _consumed(exc, size if self._wview is None else self._woff)
            raise
        finally:
            # Never keep the caller's buffer once write() returns.
            self._wview = self._wwaiter = None

    # -- introspection -----------------------------------------------------

    def waiting(self, reading: bool) -> int:
        """How many calls on one side are blocked now (for ``repr``)."""
        with self._mutex:
            if reading:
                return len(self._rgate.queue or ()) + (self._rwaiter is not None)
            return len(self._wgate.queue or ()) + (self._wwaiter is not None)

    def status(self) -> str:
        """Which ends are closed (for ``repr``)."""
        with self._mutex:
            return (
                f"reader={'closed' if self._rclosed else 'open'}"
                f" writer={'closed' if self._wclosed else 'open'}"
            )
