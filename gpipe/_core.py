"""The pipe core: all state of one pipe, shared by its two ends.

This is Go's ``io.pipe`` (``src/io/pipe.go``) with its channels spelled
out as objects. Theory of operation:

* Each side has a gate (:class:`_Gate`, Go's ``wrMu``): one call of a
  side runs at a time, the others queue in arrival order, so each write
  stays contiguous and each read gets contiguous bytes.
* A call that must wait publishes itself: one small object per pending
  call (:class:`_Read`, :class:`_Write`; the value Go sends on ``rdCh``
  or ``wrCh``) holding its buffer, its progress and a semaphore of its
  own. Whoever completes the call (the other side) or fails it (a
  close) updates that object and only then releases its semaphore, so
  a woken call reads only its own object.
* A handoff is done by whichever side arrives second: a writer that
  finds a reader waiting copies into the reader's buffer; a reader that
  finds a write pending copies from it and wakes its writer once the
  write is used up. So a handoff blocks one side, once.
* ``_mutex`` guards the state. It is held for a few steps at a time and
  never while waiting; it is reentrant because a garbage collection in
  a call can run a finaliser that closes an end of the same pipe.
* Bytes taken from writers and not returned (an interrupted read, lines
  taken ahead by an iterator and not handed out) go back in front of
  the stream, in ``_unread``: an interrupted read consumes nothing.

Interrupts. A wait (and only a wait) can be interrupted: by a timeout,
a kill, a :class:`gevent.Timeout`, or a signal handler's exception such
as :exc:`KeyboardInterrupt`. The state stays valid whatever step an
exception lands on: a call records what it owns before it wakes anyone,
and a gate owned by a call that can no longer leave it (its thread
exited, or its call ended without leaving) is reclaimed by the next
call. Compiled (see ``_gpipe_c_core.pxd``), no signal handler runs
between the steps of a transition at all.

The ends' data methods live here too (:class:`ReaderMethods`,
:class:`WriterMethods`), so that they are compiled with the core.
"""

from __future__ import annotations

import operator
import re
import sys
import time
import weakref
from collections import deque
from typing import Any, Optional

from ._backends import Backend as _Backend
from ._backends import _original
from ._backends import per_thread as _per_thread
from ._errors import ClosedPipeError
from ._files import STOPS as _STOPS
from ._files import not_the_end as _not_the_end

__all__ = ["BufferedPipe", "LineBatches", "Pipe", "ReaderMethods", "WriterMethods"]

_monotonic = time.monotonic

# The pipe's mutex (see Pipe): a native reentrant lock. Compiled,
# _new_mutex is the .pxd's instead (set here, where Cython does not see
# it), which makes the same lock as a gpipe._gpipe_c_mutex.Mutex: wait()
# gives and retakes it with C calls (a `with` block still looks up and
# calls its __enter__ and __exit__ as any object's).
locals()["_new_mutex"] = _original("_thread", "RLock")
_newline = re.compile(b"\n").search

# How one end was closed: the error given to close_with_error() and the
# traceback it had then (every raise starts again from that traceback, so
# raising one stored error many times never grows its traceback), or
# _PLAIN for a close without an error.
_PLAIN = (None, None)

# A read's size when it has none (readline(-1), read()): larger than any
# buffer, and a C ssize_t.
_NO_LIMIT = sys.maxsize

# The parts of every read into a view (see _Read): none, ever.
_NO_PARTS: list[bytes] = []


# -- where a call runs ------------------------------------------------------
#
# A token that lives exactly as long as its native thread, in the
# unpatched thread-local the backends keep (compiled: also in the thread
# state's dict, where that thread-local keeps its storage). A pending call
# holds a weak reference to it: once that thread has exited, a call still
# "waiting" there can never run again (a greenlet of a hub whose thread
# is gone), and the other calls stop waiting for it.

# How many semaphores a thread keeps for its next waits.
_SPARES = 16


class _Thread:
    """The calling native thread (see :func:`_here_local`): its token, a weak
    reference to it for pending calls to hold, and the semaphores its
    finished waits left, to wait on again.

    A semaphore whose acquire returned True is back at 0 with no one
    waiting, and nobody will release it again: it is as good as new
    (while its gevent hub lives), and reusing it saves making one per
    wait. Spares are kept for one backend at a time, the one the thread
    used last, in a stack of fixed size (a list that never grows or
    shrinks: no allocation per wait).
    """

    __slots__ = ("__weakref__", "backend", "count", "ref", "spares")

    def __init__(self) -> None:
        self.ref = weakref.ref(self)
        self.backend: Any = None
        self.spares: list[Any] = [None] * _SPARES
        self.count = 0  # how many of spares are kept, from the first

    def semaphore(self, backend: Any) -> Any:
        """A semaphore of *backend* at 0: a spare, or a new one."""
        if self.count and self.backend is backend:
            self.count -= 1
            sem = self.spares[self.count]
            self.spares[self.count] = None
            hub = getattr(sem, "hub", None)
            if hub is None or hub.loop is not None:
                return sem
            # A gevent semaphore of a hub destroyed since: a wait on it would
            # switch to that hub. Others may be that hub's too: drop them all.
            self.drop()
        return backend.semaphore()

    def keep(self, backend: Any, sem: Any) -> None:
        """Keep *sem*, acquired and at 0 again, for a later wait."""
        if self.backend is not backend:
            self.drop()
            self.backend = backend
        if self.count < _SPARES:
            self.spares[self.count] = sem
            self.count += 1

    def drop(self) -> None:
        """Keep no spares."""
        self.spares = [None] * _SPARES
        self.count = 0


def _here_local() -> _Thread:
    """The calling native thread's :class:`_Thread`."""
    try:
        return _per_thread.here  # type: ignore[no-any-return]
    except AttributeError:
        here = _per_thread.here = _Thread()
        return here


# Compiled, _here is the .pxd's (see _copy below): the same token,
# remembered in the thread state's own dict (where _thread._local keeps
# its storage too) and found there without an attribute lookup.
locals()["_here"] = _here_local


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else _monotonic() + timeout


def _remaining(deadline: Optional[float]) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - _monotonic()
    return left if left > 0.0 else 0.0


def _consumed(exc: BaseException, count: int) -> None:
    """Tell the caller of an interrupted write how much of it was read."""
    try:
        exc.consumed = count  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 -- no __dict__, or a __setattr__ that refuses
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


def _copy_slices(dst: Any, at: int, src: Any, start: int, n: int) -> None:
    """``dst[at:at + n] = src[start:start + n]``, for flat byte buffers."""
    if type(src) is bytes and (start or n != len(src)):
        src = memoryview(src)  # (a slice of bytes would be a copy)
    dst[at : at + n] = src[start : start + n]


def _run_pending() -> None:
    """Let the interpreter do what it has pending for this thread: as
    Python code, by being called.

    Python code does it wherever it calls a function (this one, say):
    signal handlers, and, from Python 3.12, a garbage collection that an
    allocation scheduled. Compiled code runs none of it, so the compiled
    build calls the C API's ``PyErr_CheckSignals()`` instead, which does
    both: before a thread blocks in a wait, so that a finaliser that
    collection runs (one that closes the pipe the wait is for, say), or
    a :exc:`KeyboardInterrupt`, is not put off until the wait ends.
    """


# Compiled, _checkpoint is the .pxd's (see _copy below).
locals()["_checkpoint"] = _run_pending


# The copy of a handoff. Compiled, _copy is the .pxd's instead (gevent's
# way of swapping in C: the name is set here, where neither Cython nor
# the linters see it): one memmove between the two buffers, with no
# memoryview slices made and dropped around it.
locals()["_copy"] = _copy_slices


# -- pending calls ------------------------------------------------------------


class _Call:
    """One call of one side: what it owns, and how to wake it."""

    __slots__ = ("done", "over", "sem", "thread")
    what = "a pipe call"  # each kind says which, for LoopExit notes

    def start(self) -> None:
        """The state every call starts in (each kind's ``setup()`` runs
        this first: compiled, a C call, where ``_Call.__init__(self)``
        would be a Python one)."""
        self.done = False  # completed or failed, and its semaphore released
        self.over = False  # returned or raised: it owns nothing any more
        self.sem: Any = None  # taken (see _Thread) each time the call waits
        self.thread: Any = None  # a weak _Thread, set when it first waits

    def park(self, backend: Any) -> None:
        """Get ready to wait: a semaphore at 0, and where the call runs."""
        here = _here()  # type: ignore[name-defined]  # noqa: F821
        self.done = False
        self.sem = here.semaphore(backend)
        self.thread = here.ref

    def wake(self) -> None:
        """Mark the call done, then release it (once)."""
        self.done = True
        self.sem.release()

    def gone(self) -> bool:
        """True if the call waits in a thread that has exited."""
        return self.thread is not None and self.thread() is None


class _Read(_Call):
    """A read: up to *size* bytes, done once it has *need* of them.

    Into *view* (a writable byte memoryview) when given, else into
    *parts* (bytes objects). A line read is also done after a newline.
    """

    __slots__ = ("got", "line", "need", "parts", "size", "view")
    what = "a read from a PipeReader"

    def setup(self, view: Any, size: int, need: int, line: bool) -> None:
        """A new read's state (see _read() for why not ``__init__``)."""
        self.start()
        self.view = view
        self.size = size
        self.need = need
        self.line = line
        self.got = 0
        # A read into a view has no parts: all of them share one empty list.
        self.parts: list[bytes] = [] if view is None else _NO_PARTS

    def full(self) -> bool:
        """True once the read has all it asked for."""
        return self.got >= self.need or (
            self.line and bool(self.parts) and self.parts[-1][-1:] == b"\n"
        )

    def fill(self, data: Any, start: int) -> int:
        """Copy what this read takes of *data* from *start*; how much."""
        n = len(data) - start
        if n > self.size - self.got:
            n = self.size - self.got
        stop = start + n
        if self.line:
            found = _newline(data, start, stop)
            if found is not None:
                stop = found.end()
                n = stop - start
        if self.view is None:
            self.parts.append(bytes(data[start:stop]))
        else:
            _copy(self.view, self.got, data, start, n)  # type: ignore[name-defined]  # noqa: F821
        self.got += n
        return n

    def result(self) -> Any:
        """What the read returns: a count, or the bytes."""
        if self.view is not None:
            return self.got
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def taken(self) -> bytes:
        """The bytes this read took, to give back when it fails."""
        if self.view is not None:
            return bytes(self.view[: self.got])
        return b"".join(self.parts)


class _Write(_Call):
    """A write of *view* (bytes, or a flat byte memoryview); *off* bytes
    of it were read."""

    __slots__ = ("error", "off", "view")
    what = "a write to a PipeWriter"

    def setup(self, view: Any) -> None:
        """A new write's state (see _read() for why not ``__init__``)."""
        self.start()
        self.view = view
        self.off = 0
        self.error: Optional[BaseException] = None  # why a close ended it

    def full(self) -> bool:
        return self.off == len(self.view)


class _Gate:
    """One call of a side at a time, in arrival order (Go's ``wrMu``).

    The owner is a call object. A call queued behind it waits on its own
    semaphore; leaving hands the gate straight to the first live one.
    Used under the mutex of the pipe it belongs to.
    """

    __slots__ = ("owner", "queue")

    def __init__(self) -> None:
        self.owner: Optional[_Call] = None
        # The calls queued behind the owner; made when the first one
        # queues (an idle pipe stays small).
        self.queue: Optional[deque[_Call]] = None

    def reclaim(self, pipe: Pipe) -> None:
        """Free the gate of an owner that can never leave it: an interrupt
        cut its leaving short, or its thread exited while it waited."""
        owner = self.owner
        if owner is not None and (owner.over or owner.gone()):
            pipe.abandon(owner)

    def enter(self, pipe: Pipe, call: _Call, deadline: Optional[float]) -> None:
        """Make *call* the owner, once the calls before it have left."""
        self.reclaim(pipe)
        owner = self.owner
        if owner is None and not self.queue:
            self.owner = call
            return
        call.park(pipe.backend)
        if self.queue is None:
            self.queue = deque()
        self.queue.append(call)
        try:
            pipe.wait(call, deadline)
        finally:
            if self.owner is not call:
                self.queue.remove(call)
        # Re-check: the handover may have raced the timeout.
        if self.owner is not call:
            raise TimeoutError("timed out waiting for another call on this end")

    def leave(self, call: _Call) -> None:
        """Hand the gate to the first live queued call, or free it."""
        if self.owner is not call:
            return
        queue = self.queue
        while queue and queue[0].gone():
            queue.popleft()
        if queue:
            nxt = queue.popleft()
            self.owner = nxt  # recorded before the wakeup
            nxt.sem.release()
        else:
            self.owner = None


# -- the pipe -----------------------------------------------------------------


class Pipe:
    """The state of one unbuffered pipe; see the module's theory."""

    __slots__ = (
        "_lines",
        "_mutex",
        "_rclosed",
        "_read",
        "_rgate",
        "_unread",
        "_wclosed",
        "_wgate",
        "_write",
        "backend",
        "rtimeout",
        "wtimeout",
    )

    def __init__(self, backend: Any) -> None:
        if not isinstance(backend, _Backend):
            # (Compiled, any other object, None too, would be a crash.)
            raise TypeError(f"a pipe's backend is a Backend, not {type(backend).__name__!r}")
        self.backend = backend
        self._mutex = _new_mutex()  # type: ignore[name-defined]  # noqa: F821
        self._rgate = _Gate()
        self._wgate = _Gate()
        self._read: Optional[_Read] = None  # the read waiting for a write
        self._write: Optional[_Write] = None  # the write waiting for readers
        # Bytes given back (or buffered by BufferedPipe), read first; None
        # while there are none (an idle pipe keeps no buffer).
        self._unread: Optional[bytearray] = None
        self._lines: Optional[_Lines] = None  # lines an iterator took ahead
        self._rclosed: Optional[tuple[Any, Any]] = None  # how the reader was closed
        self._wclosed: Optional[tuple[Any, Any]] = None  # how the writer was closed
        # The reader's and the writer's settimeout(): each call's time limit.
        self.rtimeout: Optional[float] = None
        self.wtimeout: Optional[float] = None

    # -- waiting ---------------------------------------------------------------

    def wait(self, call: _Call, deadline: Optional[float]) -> bool:
        """Wait, without the mutex, until *call* is released or time is up.

        The mutex is held again on return, whatever interrupts the wait:
        a signal handler may raise while acquire() blocks or just after a
        call returns, and its exception is raised once the mutex is held.
        """
        mutex = self._mutex
        interrupt = None
        try:
            if call.done:
                return True  # a finaliser run since it parked woke it already
            mutex.release()
            # Pending work first (a collection: its finaliser may close this
            # pipe and wake the call), then the wait.
            _checkpoint()  # type: ignore[name-defined]  # noqa: F821
            if not self.backend.acquire(call.sem, _remaining(deadline)):
                return False
            here = call.thread()
            if here is not None:  # (always: a waiting thread is alive)
                here.keep(self.backend, call.sem)
            return True
        except self.backend.dead_end as exc:
            _dead_end(exc, call.what)
            raise
        finally:
            retaken = False
            while not retaken:
                try:
                    if not mutex._is_owned():
                        mutex.acquire()
                    retaken = True
                except BaseException as exc:  # noqa: BLE001 -- raised below
                    interrupt = exc
            if interrupt is not None:
                raise interrupt

    def abandon(self, call: _Call) -> None:
        """Withdraw *call*, which can never run again, and free its gate."""
        if isinstance(call, _Read):
            if call is self._read:
                self._read = None
            if not call.over:
                # It never returned what writers gave it (pending, or filled
                # and woken too late): keep the bytes for the next read.
                self.give_back(call.taken())
        elif call is self._write:
            self._write = None
        gate = self._rgate if isinstance(call, _Read) else self._wgate
        gate.leave(call)

    def give_back(self, data: bytes) -> None:
        """Put bytes taken from writers back in front of the stream."""
        if data and self._rclosed is None:
            if self._unread is None:
                self._unread = bytearray(data)
            else:
                self._unread[0:0] = data

    # -- closing ---------------------------------------------------------------

    def close_read(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._rclosed is None:  # the first close wins
                self._rclosed = _PLAIN if exc is None else (exc, exc.__traceback__)
                self._unread = None  # no one will read it
                if self._lines is not None:
                    self._lines.stop()
                self._fail_pending()

    def close_write(self, exc: Optional[BaseException]) -> None:
        with self._mutex:
            if self._wclosed is None:
                self._wclosed = _PLAIN if exc is None else (exc, exc.__traceback__)
                self._fail_pending()

    def close_error(self, reading: bool) -> Optional[BaseException]:
        """The error the reader (*reading*) or the writer was closed with;
        None while it is open or after a clean close."""
        closed = self._rclosed if reading else self._wclosed
        return None if closed is None else closed[0]

    def _fail_pending(self) -> None:
        """Wake both pending calls after a close; each reads its outcome.

        Calls queued at a gate need no wakeup: the owner is woken, fails
        and leaves, and so on down the queue; an owner that can never
        leave is made to now.
        """
        write = self._write
        if write is not None:
            self._write = None
            write.error = self._write_error()
            write.wake()
        read = self._read
        if read is not None:
            self._read = None
            read.wake()
        self._rgate.reclaim(self)
        self._wgate.reclaim(self)

    def _read_error(self) -> BaseException:
        """The error of a read after a close (not a clean EOF)."""
        if self._rclosed is not None:
            return ValueError("read from a closed PipeReader")
        exc, tb = self._wclosed  # type: ignore[misc]
        return exc.with_traceback(tb)  # type: ignore[no-any-return]

    def _write_error(self) -> BaseException:
        if self._wclosed is not None:
            return ClosedPipeError("write to a closed PipeWriter")
        exc, tb = self._rclosed  # type: ignore[misc]
        if exc is None:
            return ClosedPipeError("write to a pipe whose reader was closed")
        return exc.with_traceback(tb)  # type: ignore[no-any-return]

    def _at_end(self, read: _Read) -> bool:
        """True if *read* must not wait: return what it has, or raise."""
        if self._rclosed is not None:
            raise self._read_error()
        if self._wclosed is None:
            return False
        if self._wclosed is _PLAIN:
            return True  # EOF: what it has, if anything
        # Cut off: even the bytes it has would pass for a whole stream.
        raise self._read_error()

    def check_read(self) -> None:
        """The checks of a read, for an empty read that must not block."""
        with self._mutex:
            if self._rclosed is not None or (
                self._wclosed not in (None, _PLAIN) and not self._unread and self._lines is None
            ):
                raise self._read_error()

    def check_write(self) -> None:
        """The checks of a write, for an empty write that must not block."""
        with self._mutex:
            if self._rclosed is None and self._wclosed is None:
                return
            exc = self._write_error()
        _consumed(exc, 0)  # (without the mutex, as in write())
        raise exc

    # -- reading ---------------------------------------------------------------

    def read(self, read: _Read, deadline: Optional[float]) -> Any:
        """Fill *read* from the stream, in its turn at the read gate; its
        result (empty at EOF). Under the mutex (see _read_locked)."""
        try:
            self._rgate.enter(self, read, deadline)
            return self._read_gated(read, deadline)
        finally:
            read.over = True
            self._rgate.leave(read)

    def _read_gated(self, read: _Read, deadline: Optional[float]) -> Any:
        try:
            if self._lines is not None:
                self._lines.stop()  # lines taken ahead come first
            if self._unread and self._rclosed is None:
                self._take_unread(read)
            while not read.full():
                if self._at_end(read):
                    break
                write = self._write
                if write is not None and write.gone():
                    self.abandon(write)  # its thread is gone: never read it
                    write = None
                if write is not None:
                    self._take(read, write)
                else:
                    self._park_read(read, deadline)
            return read.result()
        except BaseException:
            if self._read is read:
                self._read = None  # withdrawn: no writer will fill it
            self.give_back(read.taken())
            raise

    def _take_unread(self, read: _Read) -> None:
        unread = self._unread
        assert unread is not None
        n = read.fill(unread, 0)
        del unread[:n]
        if not unread:
            self._unread = None

    def _take(self, read: _Read, write: _Write) -> None:
        """Copy from the pending write; wake its writer once it is used up."""
        n = read.fill(write.view, write.off)
        if self._write is not write:
            # A garbage collection in the copy ran a finaliser that closed
            # an end, and the close took the write: drop the copy.
            read.got -= n
            if read.view is None:
                read.parts.pop()
            return
        self._consume(write, n)

    def _consume(self, write: _Write, n: int) -> None:
        """Count *n* more bytes of the pending *write* as read, and wake
        its writer once it is used up (decided before anything changes,
        so that no interrupted step leaves a used-up write pending)."""
        used_up = write.off + n == len(write.view)
        write.off += n
        if used_up:
            self._write = None
            write.wake()

    def _park_read(self, read: _Read, deadline: Optional[float]) -> None:
        """Publish *read* for the next writer to fill, and wait."""
        read.park(self.backend)
        if self._rclosed is not None or self._wclosed is not None:
            return  # a finaliser run by a collection in park() closed an end
        self._read = read
        ok = self.wait(read, deadline)
        if self._read is read:
            # Nobody filled it and no close came: the time is up.
            self._read = None
            if not ok:
                raise TimeoutError("read timed out")

    # -- writing ---------------------------------------------------------------

    def write(self, write: _Write, deadline: Optional[float]) -> None:
        """Hand all of *write* to readers, in its turn at the write gate.
        Under the mutex (see _write_locked)."""
        try:
            self._wgate.enter(self, write, deadline)
            self._write_gated(write, deadline)
        finally:
            write.over = True
            self._wgate.leave(write)

    def _write_gated(self, write: _Write, deadline: Optional[float]) -> None:
        if self._rclosed is not None or self._wclosed is not None:
            raise self._write_error()
        read = self._read
        if read is not None and read.gone():
            self.abandon(read)  # its thread is gone: never fill it
            read = None
        if read is not None:
            # A reader is waiting: fill it now, so that only it blocked.
            write.off = read.fill(write.view, 0)
            # (Unless a finaliser run in fill() closed an end: then the
            # close took the read and woke it.)
            if self._read is read and read.full():
                self._read = None
                read.wake()
            if write.full():
                return  # (a read that needs more stays for the next write)
        self._park_write(write, deadline)

    def _park_write(self, write: _Write, deadline: Optional[float]) -> None:
        """Publish the rest of *write* and wait until readers used it up."""
        write.park(self.backend)
        if self._rclosed is not None or self._wclosed is not None:
            raise self._write_error()  # a finaliser run in park() closed an end
        self._write = write
        try:
            ok = self.wait(write, deadline)
        finally:
            if self._write is write:
                self._write = None  # withdrawn: no reader will see the rest
        if write.error is not None:
            raise write.error
        if not write.full():
            if not ok:
                raise TimeoutError("write timed out")
            raise self._write_error()

    # -- lines -------------------------------------------------------------------

    def take_lines(self) -> Optional[list[bytes]]:
        """The whole lines of the pending write, taken at once, or None.

        Only when nothing else is in the way (no other read, nothing
        given back, no close): the caller then reads them without the
        mutex, registered as ``_lines`` until handed out or given back.
        """
        with self._mutex:
            write = self._write
            if (
                write is None
                or self._rgate.owner is not None
                or self._unread
                or self._lines is not None
                or self._rclosed is not None
                or write.gone()
            ):
                return None
            chunk = bytes(write.view[write.off :])
            if chunk[-1] != 10:  # b"\n": a last partial line stays
                cut = chunk.rfind(b"\n") + 1
                if not cut:
                    return None
                chunk = chunk[:cut]
            if self._write is not write:
                return None  # a finaliser's close took the write meanwhile
            self._consume(write, len(chunk))
            return chunk.splitlines(keepends=True) if b"\r" not in chunk else _split(chunk)

    def waiting(self, reading: bool) -> int:
        """How many calls on one side are blocked now (for ``repr``)."""
        with self._mutex:
            gate = self._rgate if reading else self._wgate
            pending = self._read if reading else self._write
            return len(gate.queue or ()) + (pending is not None)

    def status(self) -> str:
        """Which ends are closed (for ``repr``)."""
        with self._mutex:
            return (
                f"reader={'open' if self._rclosed is None else 'closed'}"
                f" writer={'open' if self._wclosed is None else 'closed'}"
            )


# -- a call under the mutex ----------------------------------------------------------
#
# Pipe.read() and Pipe.write() run under the pipe's mutex, taken by a
# `with` block. Compiled, these two are the .pxd's instead (see _copy): the
# same, with the mutex taken and given back by two C calls, where Cython
# compiles a `with` block as for any object (it looks up, binds and calls
# __enter__ and __exit__ by name, which costs a compiled handoff a tenth).


def _read_with_mutex(pipe: Pipe, read: _Read, deadline: Optional[float]) -> Any:
    with pipe._mutex:
        return pipe.read(read, deadline)


def _write_with_mutex(pipe: Pipe, write: _Write, deadline: Optional[float]) -> None:
    with pipe._mutex:
        pipe.write(write, deadline)


locals()["_read_locked"] = _read_with_mutex
locals()["_write_locked"] = _write_with_mutex


def _split(chunk: bytes) -> list[bytes]:
    """*chunk* split after each b"\\n" only, as binary files split lines."""
    lines = chunk.split(b"\n")
    last = lines.pop()
    assert not last
    return [line + b"\n" for line in lines]


class BufferedPipe(Pipe):
    """A pipe whose writes return once their bytes fit in a buffer of
    *bufsize* bytes, as an OS pipe's do.

    A layer over the unbuffered pipe: a write that fits (no reader
    waiting, no other write) is appended to the bytes read first
    (``_unread``), and returns; any other write is an unbuffered write,
    which readers take after the buffer.
    """

    __slots__ = ("bufsize",)

    def __init__(self, backend: Any, bufsize: int) -> None:
        Pipe.__init__(self, backend)
        self.bufsize = bufsize

    def write(self, write: _Write, deadline: Optional[float]) -> None:
        unread = self._unread
        if (
            self._wgate.owner is None
            and self._read is None
            and self._rclosed is None
            and self._wclosed is None
            and (0 if unread is None else len(unread)) + len(write.view) <= self.bufsize
        ):
            if unread is None:
                self._unread = bytearray(write.view)
            else:
                unread += write.view
            write.off = len(write.view)
            return
        Pipe.write(self, write, deadline)


# -- line iteration ---------------------------------------------------------------


class _Lines:
    """Whole lines a line iterator took from one write, ahead of its caller.

    They are handed out by a list iterator (*it*), at C speed. Any other
    read of the pipe, a close of the reader, and the iterator itself when
    dropped, stop it: the lines it has not handed out go back in front
    of the stream, so that nothing is lost or reordered.
    """

    __slots__ = ("it", "lines", "pipe")

    def __init__(self, pipe: Pipe, lines: list[bytes]) -> None:
        self.pipe = pipe
        self.lines = lines
        self.it = iter(lines)

    def stop(self) -> None:
        """Hand out no more; give back the rest. Under the pipe's mutex."""
        pipe = self.pipe
        if pipe._lines is self:
            pipe._lines = None
            left = self.it.__length_hint__()  # type: ignore[attr-defined]
            self.it.__setstate__(len(self.lines))  # type: ignore[attr-defined]  # no more
            if left:
                pipe.give_back(b"".join(self.lines[-left:]))


class LineBatches:
    """The lines of the stream, in batches, for iterating over the reader
    *end* with :func:`itertools.chain.from_iterable`.

    Each batch is an iterator: over every whole line of the pending write
    when one is there (taken at once, so the caller's iteration runs at
    C speed), else over the one line ``end.readline()`` returns. A step
    that fails (a timeout, a kill, the writer's error) gives a batch
    whose first step raises its error: ``chain`` goes on after an error
    of a batch, where it would stop for good after one of its source,
    so the iteration can go on from where the failed step left, as a
    file's can.

    Its steps raise :exc:`StopIteration` at EOF, and nothing else: any
    other error comes as a batch that raises it (see :class:`_Failed`).
    """

    __slots__ = ("batch", "end", "pipe")

    def __init__(self, pipe: Pipe, end: Any) -> None:
        self.pipe = pipe
        self.end = end
        self.batch: Optional[_Lines] = None  # the last batch of whole lines

    def __iter__(self) -> LineBatches:
        return self

    def __next__(self) -> Any:
        try:
            self.leave()
            batch = self.take()
            if batch is not None:
                return batch
        except BaseException as exc:  # noqa: BLE001 -- raised by the batch
            return _Failed(exc)
        raise StopIteration

    def take(self) -> Any:
        """The next batch, or None at EOF."""
        pipe = self.pipe
        lines = pipe.take_lines()
        if lines is None:
            line = self.end.readline()
            return iter((line,)) if line else None
        with pipe._mutex:
            batch = self.batch = pipe._lines = _Lines(pipe, lines)
        return batch.it

    def leave(self) -> None:
        """Give back the lines the last batch has not handed out."""
        batch = self.batch
        if batch is not None:
            self.batch = None
            with self.pipe._mutex:
                batch.stop()

    def __del__(self) -> None:
        self.leave()  # the iteration was dropped


class _Failed:
    """A batch of :class:`LineBatches` whose one step raises *exc*.

    A :exc:`StopIteration` (or :exc:`StopAsyncIteration`) that the writer
    closed the pipe with must not pass for the end of the lines: it is
    raised as a :exc:`RuntimeError` from it, as a generator does since
    :pep:`479`.
    """

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc: Optional[BaseException] = exc

    def __iter__(self) -> _Failed:
        return self

    def __next__(self) -> bytes:
        exc = self.exc
        if exc is None:
            raise StopIteration
        self.exc = None
        if isinstance(exc, _STOPS):
            raise _not_the_end(exc) from exc
        raise exc


# -- the ends' data methods ---------------------------------------------------------


def _byte_view(obj: Any, name: str, writable: bool) -> Any:
    """A flat, C-contiguous, unsigned-byte memoryview of *obj*."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__!r}") from None
    except ValueError as exc:  # a released memoryview
        raise ValueError(f"{name}: {exc}") from None
    if writable and view.readonly:
        view.release()
        raise TypeError(f"{name} must be a writable bytes-like object")
    if view.c_contiguous and view.ndim == 1 and view.format == "B":
        return view  # the usual case: flat bytes already
    if view.nbytes == 0:
        view.release()
        return memoryview(b"")  # any empty shape: nothing to copy
    try:
        flat = view.cast("B")
    except TypeError:
        if writable:
            view.release()
            raise TypeError(f"{name} must be a C-contiguous buffer") from None
        # A strided source can still be written: from a contiguous copy.
        flat = memoryview(view.tobytes())
    view.release()
    return flat


def _size(size: Any, name: str) -> int:
    """A read size: an int >= 0, or -1 for no limit."""
    if type(size) is not int:
        if size is None:
            return -1
        try:
            size = operator.index(size)
        except TypeError:
            raise TypeError(
                f"{name}() size must be an integer or None, not {type(size).__name__!r}"
            ) from None
    if size < -1:
        raise ValueError(f"{name}() size must be >= 0 or -1, not {size}")
    if size > _NO_LIMIT:
        return -1  # more than memory can hold: no limit, as for readline()
    return int(size)


def _read(end: Any, view: Any, size: int, need: int, line: bool) -> Any:
    """A read on the reader *end* (see :class:`_Read`)."""
    pipe = end._pipe
    # Made bare and set up: compiled, two C calls, where _Read(...) would
    # call a Python-level __init__ and parse its arguments.
    read = _Read.__new__(_Read)
    read.setup(view, size, need, line)
    try:
        return _read_locked(pipe, read, _deadline(pipe.rtimeout))  # type: ignore[name-defined]  # noqa: F821
    finally:
        # No reference cycle through a traceback: an exception raised
        # here keeps neither the end nor the caller's buffer.
        end = pipe = view = read = None  # type: ignore[assignment]


def _readinto_view(end: Any, buffer: Any, one: bool, name: str) -> int:
    """``readinto`` (*one*: ``readinto1``) on the reader *end*."""
    # A view of our own, even of the caller's memoryview: the caller
    # may release theirs meanwhile, and the buffer stays alive until
    # this view is released, below.
    if type(buffer) is bytearray:
        view = memoryview(buffer)
    else:
        view = _byte_view(buffer, f"{name}() argument", writable=True)
    try:
        n = len(view)
        if not n:
            end._pipe.check_read()
            return 0
        return _read(end, view, n, 1 if one else n, False)  # type: ignore[no-any-return]
    finally:
        view.release()
        end = buffer = view = None  # type: ignore[assignment]


# Compiled, _readinto is the .pxd's (see _copy): for a bytearray, the same
# read with the bytearray held by an export of its buffer (what a
# memoryview of it holds, which keeps it from being resized), and no
# memoryview made and released around it.
locals()["_readinto"] = _readinto_view


def _write(end: Any, data: Any) -> int:
    """``write`` on the writer *end*."""
    # A view of our own, even of the caller's memoryview (see _readinto_view);
    # bytes need none: nothing can resize or release them.
    view: Any = data if type(data) is bytes else _byte_view(data, "write() argument", False)
    pipe = end._pipe
    try:
        n = len(view)
        if not n:
            pipe.check_write()
            return 0
        write = _Write.__new__(_Write)  # (as in _read())
        write.setup(view)
        try:
            _write_locked(pipe, write, _deadline(pipe.wtimeout))  # type: ignore[name-defined]  # noqa: F821
        except BaseException as exc:
            # Without the mutex: a close error's __setattr__ is the caller's code.
            _consumed(exc, write.off)
            raise
        return n
    finally:
        if view is not data:
            # Let go of the caller's buffer: it may be resized at once.
            view.release()
        end = data = view = pipe = write = None  # type: ignore[assignment]


class ReaderMethods:
    """The data methods of :class:`~gpipe.PipeReader` (documented there)."""

    __slots__ = ()
    _pipe: Pipe

    def read(self, size: Any = -1) -> bytes:
        """Read *size* bytes, waiting across writes, unless EOF comes first.

        ``size=-1`` (or ``None``) reads until EOF, as :meth:`readall`.
        ``read(0)`` returns ``b""`` at once, after the same checks as
        any read. For the bytes of one write as soon as it comes (Go's
        ``Read``), use :meth:`read1`.

        :return: *size* bytes; fewer only at EOF; ``b""`` at EOF, which
            means the writer closed the pipe cleanly, and nothing else.
        :raises ValueError: this reader was closed (as for a closed file).
        :raises WriterAbortedError: the writer broke off: it was
            interrupted (a kill, :class:`gevent.Timeout`,
            :exc:`KeyboardInterrupt`: the ``__cause__``) or collected
            unclosed; or it was closed with a :exc:`ConnectionError`
            (the ``__cause__``).
        :raises TimeoutError: the :meth:`settimeout` timeout expired.
        :raises BaseException: the very error the writer passed to
            :meth:`PipeWriter.close_with_error` (if not a
            :exc:`ConnectionError`).
        :raises TypeError: *size* is not an integer or ``None``.

        An interrupted read (timeout, kill, error) consumes nothing: the
        bytes it had taken are read again by the next read. Bytes
        written before a close with an error are read first; a read
        that needs more than they hold raises the error.
        """
        size = _size(size, "read")
        if size == -1:
            return self.readall()
        if size == 0:
            self._pipe.check_read()
            return b""
        return _read(self, None, size, size, False)  # type: ignore[no-any-return]

    def read1(self, size: Any = -1) -> bytes:
        """Read up to *size* bytes of at most one write, as soon as one is
        there: Go's ``Read``.

        ``size=-1`` (or ``None``) takes the rest of the current write,
        however long. Lines and text wrappers read through it, so each
        line is handed on as soon as the write holding it arrives.

        :return: non-empty bytes, or ``b""`` at EOF.
        :raises: as :meth:`read`.
        """
        size = _size(size, "read1")
        if size == 0:
            self._pipe.check_read()
            return b""
        if size == -1:
            size = _NO_LIMIT
        return _read(self, None, size, 1, False)  # type: ignore[no-any-return]

    def readall(self) -> bytes:
        """Read until EOF and return everything read.

        :raises: as :meth:`read`; an interrupted ``readall`` consumes
            nothing.
        """
        return _read(self, None, _NO_LIMIT, _NO_LIMIT, False)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        """Fill the writable bytes-like *buffer*, waiting across writes,
        unless EOF comes first: Go's ``io.ReadFull``.

        :return: ``len(buffer)`` in bytes; fewer only at EOF; ``0`` at
            EOF (and for an empty buffer of any shape, after the same
            checks as any read).
        :raises TypeError: *buffer* is not a writable, C-contiguous
            bytes-like object.
        :raises: otherwise as :meth:`read`.
        """
        return _readinto(self, buffer, False, "readinto")  # type: ignore[no-any-return, name-defined]  # noqa: F821

    def readinto1(self, buffer: Any) -> int:
        """Read into *buffer* the bytes of at most one write, as soon as
        one is there: Go's ``Read``, and the fastest way to read.

        :return: the number of bytes read; ``0`` at EOF.
        :raises: as :meth:`readinto`.
        """
        return _readinto(self, buffer, True, "readinto1")  # type: ignore[no-any-return, name-defined]  # noqa: F821

    def readline(self, size: Any = -1) -> bytes:
        """Read up to and including the next ``b"\\n"``, at most *size* bytes.

        A line that spans several writes is read across them; at EOF the
        rest is returned without a newline, and then ``b""``. No other
        read is interleaved with a line. ``size`` ``-1``, ``None``, any
        negative number or one beyond :data:`sys.maxsize` means no limit,
        as for :class:`io.BytesIO`; ``readline(0)`` returns ``b""`` after
        the same checks as any read.

        :raises TypeError: *size* is not an integer or ``None``.
        :raises: as :meth:`read`; an interrupted ``readline`` consumes
            nothing, even of a line that spans writes.
        """
        if size is None:
            size = _NO_LIMIT
        else:
            try:
                size = operator.index(size)
            except TypeError:
                raise TypeError(
                    f"readline() size must be an integer or None, not {type(size).__name__!r}"
                ) from None
            if size == 0:
                self._pipe.check_read()
                return b""
            if size < 0 or size > _NO_LIMIT:
                size = _NO_LIMIT  # as io.BytesIO: no limit
        return _read(self, None, size, size, True)  # type: ignore[no-any-return]


class WriterMethods:
    """The data methods of :class:`~gpipe.PipeWriter` (documented there)."""

    __slots__ = ()
    _pipe: Pipe

    def write(self, data: Any) -> int:
        """Write all of the bytes-like *data*; block until readers took it.

        ``write(b"")`` returns ``0`` at once, after the same checks as
        any write, and wakes no reader. There are no short writes.

        If the write raises (a timeout, :class:`gevent.Timeout`, a kill,
        a close of either end), the part no reader had consumed is
        withdrawn: no reader ever sees it. The exception's ``consumed``
        attribute, where it can be set, is the number of bytes readers
        had consumed (Go's ``n``).

        :return: ``len(data)`` in bytes.
        :raises TypeError: *data* is not bytes-like.
        :raises ClosedPipeError: this writer was closed, or the reader was
            closed (or collected) without an error.
        :raises TimeoutError: the :meth:`settimeout` timeout expired.
        :raises BaseException: the very error the reader passed to
            :meth:`PipeReader.close_with_error`.
        """
        try:
            return _write(self, data)
        finally:
            # No reference cycle through a traceback keeps the end.
            self = data = None  # type: ignore[assignment]


# gevent's way: the compiled build of this very file replaces it, unless
# PURE_PYTHON is set.
COMPILED = __name__ == "gpipe._gpipe_c_core"

from ._compat import import_c_accel  # noqa: E402

import_c_accel(globals(), "gpipe._gpipe_c_core")
