"""The pipe core: all state of one pipe, shared by its two ends.

One private object holds the gates, the pending write, the waiting
reader, the two close errors and the signals; ``PipeReader`` and
``PipeWriter`` only hold a reference to it and delegate. Everything here
runs with ``_mutex`` held, except the waits on a signal, which release it.

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
# How one end was closed: the error given to close_with_error() and the
# traceback it had then (every raise starts again from that traceback, so
# raising one stored error over and over never grows its traceback chain),
# or _PLAIN for a close without an error.
_Close = tuple[Optional[BaseException], Any]
_PLAIN: _Close = (None, None)
# A gate (one per side) serialises the calls of that side, so that each
# write stays contiguous: None when free, _BUSY when a call owns it, and a
# deque of the signals of the calls queued behind the owner, in arrival
# order, once one had to queue. The owner hands the gate straight to the
# first of them when it leaves.
Gate = Union[None, tuple[()], deque[Any]]
_BUSY: tuple[()] = ()


def _consumed(exc: BaseException, count: int) -> None:
    """Tell the caller of an interrupted write how much of it was read."""
    try:
        exc.consumed = count  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass


class Pipe:
    """The state of one pipe. Not thread-safe on its own: see ``_mutex``."""

    __slots__ = (
        "_buf",
        "_closed",
        "_got",
        "_mutex",
        "_rclosed",
        "_rgate",
        "_rsig",
        "_want",
        "_wclosed",
        "_wgate",
        "_woff",
        "_wsig",
        "_wview",
        "backend",
        "bufsize",
    )

    def __init__(self, backend: Any, bufsize: int = 0) -> None:
        self.backend = backend
        self._mutex = backend.mutex()
        self._rgate: Gate = None
        self._wgate: Gate = None
        # The signal each side blocks on, made on first use: the reader's
        # is set when a writer fills _want (or on a close), the writer's
        # when readers used _wview up (or on a close).
        self._rsig: Any = None
        self._wsig: Any = None
        self._want: Optional[Want] = None  # the waiting reader's request
        self._got: Optional[Got] = None  # what a writer put into _want
        self._wview: Optional[memoryview] = None  # the waiting writer's data
        self._woff = 0  # how much of _wview readers consumed
        # Bytes accepted from writers and not read yet, read before anything
        # else: up to bufsize of them, plus any a writer handed to a reader
        # that was interrupted before it could return them. A bytearray
        # (whose front deletion is cheap) in a buffered pipe; in an
        # unbuffered one an empty bytes until needed.
        self._buf: Union[bytes, bytearray] = bytearray() if bufsize else b""
        self.bufsize = bufsize
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
            self._wake_all()

    def close_write(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._wclosed:
                return  # the first close wins
            self._wclosed = _PLAIN if exc is None else (exc, exc.__traceback__)
            self._closed = True
            self._wake_all()

    def _wake_all(self) -> None:
        # Calls queued at a gate need no wakeup here: the call that owns the
        # gate is woken, fails, and hands the gate on, and so on down the queue.
        if self._want is not None:
            self._rsig.set()
        if self._wview is not None:
            self._wsig.set()

    # -- errors ------------------------------------------------------------

    def _read_error(self) -> BaseException:
        if self._rclosed:
            return ClosedPipeError("read from a closed PipeReader")
        assert self._wclosed is not None
        exc, tb = self._wclosed
        assert exc is not None
        return exc.with_traceback(tb)

    def _write_error(self) -> BaseException:
        if self._wclosed:
            return ClosedPipeError("write to a closed PipeWriter")
        assert self._rclosed is not None
        exc, tb = self._rclosed
        if exc is None:
            return ClosedPipeError("write to a pipe whose reader was closed")
        return exc.with_traceback(tb)

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
                exc = self._write_error()
                _consumed(exc, 0)
                raise exc

    # -- gates -------------------------------------------------------------

    def _queue_at_gate(self, reading: bool, deadline: Optional[float]) -> None:
        """Wait until the busy gate of one side is handed to this call."""
        queue = self._rgate if reading else self._wgate
        if not isinstance(queue, deque):
            queue = deque()
            if reading:
                self._rgate = queue
            else:
                self._wgate = queue
        # A signal of its own: a late wakeup of a shared one would look like
        # a handover.
        waiter = self.backend.signal()
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
                if queue:
                    queue.popleft().set()
                elif reading:
                    self._rgate = None
                else:
                    self._wgate = None
            raise

    # -- reading -----------------------------------------------------------
    #
    # read() and write() are the hot path: each is one function, with the
    # gate, the deadline and the wait inlined, because at small sizes the
    # cost of a handoff is its Python bytecode, not its copy.

    def read(self, want: Want, timeout: Optional[float]) -> Got:
        """Fill *want* from the next write; ``0``/``b""`` at EOF."""
        deadline = None if timeout is None else _monotonic() + timeout
        mutex = self._mutex
        mutex.acquire()  # explicit: cheaper than "with", on every call
        try:
            if self._rgate is None:
                self._rgate = _BUSY
            else:
                self._queue_at_gate(True, deadline)
            try:
                if self._closed or self._buf:
                    if self._rclosed:
                        raise self._read_error()
                    if self._buf:
                        return self._read_buffered(want)
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
                        n = len(view) - off
                        if len(want) < n:
                            n = len(want)
                        want[:n] = view[off : off + n]
                        off += n
                        got = n
                    if off == len(view):
                        self._wview = None
                        self._wsig.set()
                    else:
                        self._woff = off
                    return got

                # Nothing to read yet: publish the request for the next
                # writer to fill, and wait.
                waiter = self._rsig
                if waiter is None:
                    waiter = self._rsig = self.backend.signal()
                self._want = want
                try:
                    while True:
                        timeout = None if deadline is None else max(0.0, deadline - _monotonic())
                        mutex.release()
                        try:
                            ok = waiter.wait(timeout)
                        finally:
                            mutex.acquire()
                        # Re-check all state: a writer may have filled the
                        # request, a close may have run while we slept, or
                        # the wakeup was late, meant for an earlier wait.
                        filled = self._got
                        if filled is not None:
                            return filled
                        if self._closed:
                            if self._rclosed:
                                raise self._read_error()
                            return self._eof(want)
                        if not ok:
                            raise TimeoutError("read timed out")
                except BaseException:
                    self._keep_unread(want)
                    raise
                finally:
                    self._want = self._got = None
            finally:
                gate = self._rgate
                if gate:
                    gate.popleft().set()  # hand over: the gate stays busy
                else:
                    self._rgate = None
        finally:
            mutex.release()

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
        if isinstance(buf, bytearray):
            del buf[:n]  # a buffered pipe keeps appending to this one
        else:
            self._buf = buf[n:]
        if self._wview is not None and not self._wclosed:
            # Room freed: take more of the blocked write. (Not once its own
            # end was closed: that write is failing, and withdraws the rest.)
            self._refill()
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
                # No reader waiting, or the one waiting was served already.
                and (self._want is None or self._got is not None)
            ):
                buf += view  # a bytearray when buffered
                return True
            return False
        finally:
            mutex.release()

    def _refill(self) -> None:
        """Move what fits of the pending write into the buffer."""
        view = self._wview
        assert view is not None
        off = self._woff
        end = min(len(view), off + self.bufsize - len(self._buf))
        if end <= off:
            return
        buf = self._buf
        if not isinstance(buf, bytearray):
            buf = self._buf = bytearray(buf)
        buf += view[off:end]
        if end == len(view):
            self._wview = None
            self._wsig.set()
        else:
            self._woff = end

    # -- writing -----------------------------------------------------------

    def write(self, view: memoryview, timeout: Optional[float]) -> int:
        """Hand all of the non-empty byte memoryview *view* to readers."""
        deadline = None if timeout is None else _monotonic() + timeout
        mutex = self._mutex
        mutex.acquire()
        try:
            if self._wgate is None:
                self._wgate = _BUSY
            else:
                try:
                    self._queue_at_gate(False, deadline)
                except BaseException as exc:
                    _consumed(exc, 0)
                    raise
            try:
                if self._closed:
                    error = self._write_error()
                    _consumed(error, 0)
                    raise error
                size = len(view)
                want = self._want
                if want is not None and self._got is None:
                    # A reader is waiting: fill its request now, so that only
                    # the reader blocked for this handoff.
                    if isinstance(want, int):
                        got = bytes(view[:want])
                        done = len(got)
                        self._got = got
                    else:
                        done = len(want)
                        if size < done:
                            done = size
                        want[:done] = view[:done]
                        self._got = done
                    self._rsig.set()
                    if done == size:
                        return size
                else:
                    done = 0
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
                waiter = self._wsig
                if waiter is None:
                    waiter = self._wsig = self.backend.signal()
                self._wview = view
                self._woff = done
                try:
                    while True:
                        timeout = None if deadline is None else max(0.0, deadline - _monotonic())
                        mutex.release()
                        try:
                            ok = waiter.wait(timeout)
                        finally:
                            mutex.acquire()
                        # Re-check all state: readers may have used the write
                        # up, a close may have run while we slept, or the
                        # wakeup was late, meant for an earlier wait.
                        if self._wview is None:
                            return size
                        if self._closed:
                            raise self._write_error()
                        if not ok:
                            raise TimeoutError("write timed out")
                except BaseException as exc:
                    # What no reader took is withdrawn (below); say how much
                    # was taken.
                    _consumed(exc, size if self._wview is None else self._woff)
                    raise
                finally:
                    # Never keep the caller's buffer once write() returns.
                    self._wview = None
            finally:
                gate = self._wgate
                if gate:
                    gate.popleft().set()  # hand over: the gate stays busy
                else:
                    self._wgate = None
        finally:
            mutex.release()

    # -- introspection -----------------------------------------------------

    def waiting(self, reading: bool) -> int:
        """How many calls on one side are blocked now (for ``repr``)."""
        with self._mutex:
            if reading:
                return len(self._rgate or ()) + (self._want is not None and self._got is None)
            return len(self._wgate or ()) + (self._wview is not None)

    def status(self) -> str:
        """Which ends are closed (for ``repr``)."""
        with self._mutex:
            return (
                f"reader={'closed' if self._rclosed else 'open'}"
                f" writer={'closed' if self._wclosed else 'open'}"
            )
