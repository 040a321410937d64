"""zope.interface declarations of gpipe's contract.

:class:`IPipeReader` and :class:`IPipeWriter` describe the two ends that
:func:`gpipe.pipe` returns; :class:`IBackend`, :class:`ISemaphore` and
:class:`IEvent` describe the seam between the pipe core and the blocking
primitives of gevent or of OS threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional

from zope.interface import Attribute, Interface

__all__ = [
    "IBackend",
    "ICloser",
    "IEvent",
    "IPipeReader",
    "IPipeWriter",
    "ISemaphore",
    "ITimeouts",
]


class ICloser(Interface):
    """One end of a pipe, which its owner can close.

    Closing never blocks, never raises when called again, and returns
    ``None``. The first close of an end wins: a later :meth:`close` or
    :meth:`close_with_error` never replaces the error an earlier one
    gave. Closing either end wakes every call blocked on both ends.

    An end is a context manager. Leaving its ``with`` block normally
    closes it cleanly; leaving it by an exception closes the end with that
    exception, so that the other end raises it: the very instance if it
    is an :exc:`Exception`, else (:exc:`KeyboardInterrupt`,
    :exc:`SystemExit`, a kill) a :exc:`~gpipe.ClosedPipeError` with it
    as ``__cause__``, which keeps it from being delivered twice. The
    exception goes on unchanged.
    """

    closed = Attribute("True once this end was closed by its owner.")
    backend = Attribute('The name of the backend: ``"gevent"`` or ``"threading"``.')

    def close() -> None:
        """Close this end; the other end sees the default close error.

        Closing the writer makes reads return EOF (``b""``) once
        nothing is left to read -- unless the writer's close runs while
        an exception is being handled (an ``except`` or ``finally``
        block on the way out of an error, an ``__exit__``): a stream
        cut short by an error never ends with EOF, and the writer is
        closed with that exception as if its ``with`` block had
        raised. Closing the reader makes writes raise
        :exc:`~gpipe.ClosedPipeError`.
        """

    def close_with_error(exc: Optional[BaseException] = None) -> None:
        """Close this end so that calls on the other end raise *exc*.

        The very instance *exc* is raised, each time with the traceback
        it had when it was passed in. ``close_with_error(None)`` closes
        the end cleanly, whatever exception is being handled.

        :raises TypeError: *exc* is neither ``None`` nor an exception instance.
        """


class ITimeouts(Interface):
    """Per-end timeouts, in the manner of :meth:`socket.socket.settimeout`."""

    def settimeout(timeout: Optional[float]) -> None:
        """Bound each later blocking call on this end to *timeout* seconds.

        A read or write that would block longer raises the builtin
        :exc:`TimeoutError`; ``None`` (the default) waits forever and
        ``0`` never waits.

        :raises TypeError: *timeout* is not ``None`` or a real number.
        :raises ValueError: *timeout* is negative or NaN.
        """

    def gettimeout() -> Optional[float]:
        """Return the timeout set by :meth:`settimeout` (``None`` if none)."""


class IPipeReader(ICloser, ITimeouts):
    """The read end of a synchronous in-memory pipe.

    A read returns data from at most one write, and never buffers:
    each byte it returns was copied straight from a writer's buffer.
    Parallel reads are gated one after another.

    A read from a pipe whose writer was closed returns EOF (``b""`` or
    ``0``); one whose writer was closed with ``close_with_error(e)``
    raises ``e``; one whose writer was garbage-collected while open
    raises :exc:`~gpipe.ClosedPipeError`. A read on a reader this
    end's owner closed raises :exc:`~gpipe.ClosedPipeError`.

    It is a read-only, unseekable binary file: calls that write raise
    :exc:`io.UnsupportedOperation`, and ``readable()``, ``writable()``
    and ``seekable()`` raise :exc:`ValueError` once it is closed. It
    cannot be copied or pickled (:exc:`TypeError`).
    """

    mode = Attribute('``"rb"``.')

    def read(size: Optional[int] = -1) -> bytes:
        """Read up to *size* bytes, blocking until a writer provides some.

        ``size=-1`` or ``None`` reads until EOF. ``read(0)`` returns
        ``b""`` at once, after checking that the pipe is readable.

        :return: a non-empty :class:`bytes`, or ``b""`` at EOF.
        :raises ClosedPipeError: this reader was closed, or the writer
            was collected without being closed.
        :raises TimeoutError: the timeout set by ``settimeout`` expired.
        :raises BaseException: the error the writer closed the pipe with.
        """

    def readinto(buffer: Any) -> int:
        """Read into the writable bytes-like *buffer*.

        :return: the number of bytes read; ``0`` at EOF or for an empty buffer.
        :raises: as :meth:`read`, and :exc:`TypeError` for a read-only buffer.
        """

    def readall() -> bytes:
        """Read until EOF and return all of it as :class:`bytes`.

        :raises: as :meth:`read`.
        """

    def readline(size: Optional[int] = -1) -> bytes:
        """Read up to and including the next ``b"\\n"``, at most *size* bytes.

        :raises: as :meth:`read`.
        """

    def readlines(hint: int = -1) -> list[bytes]:
        """Read lines until EOF, or until their total size exceeds *hint*.

        :raises: as :meth:`read`.
        """

    def __iter__() -> Iterator[bytes]:
        """Iterate over lines, as :meth:`readline` reads them.

        A :exc:`StopIteration` that the writer closed the pipe with
        does not end the iteration: it raises :exc:`RuntimeError` from
        it, as a generator does (PEP 479).
        """

    def makefile(
        mode: str = "rb",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        """Return an :class:`io.BufferedReader` (``"rb"``) or
        :class:`io.TextIOWrapper` (``"r"``) over this reader, as
        :meth:`socket.socket.makefile` does.

        Its ``read(n)`` returns *n* bytes until EOF. Closing it closes
        this reader; leaving its ``with`` block by an exception closes
        this reader with it, as for this reader's own ``with`` block;
        collected unclosed, it closes this reader as if it were
        collected; iterating over it raises :exc:`RuntimeError` for a
        :exc:`StopIteration` close error, as :meth:`__iter__`.

        :raises ValueError: a mode other than ``"r"`` or ``"rb"``.
        """

    def iter_chunks(size: int = 65536) -> Iterator[bytes]:
        """Return an iterator over non-empty :class:`bytes` chunks until EOF.

        Each chunk is one :meth:`read` of at most *size* bytes. The
        iterator has a ``close()`` method that closes this reader, and
        closes it at EOF too: it is a correct WSGI response body, whose
        writer stops (its next write raises) when the server closes it
        because the client went away.

        :raises TypeError: *size* is not an integer.
        :raises ValueError: *size* is not positive.
        :raises: each step raises as :meth:`read`, except that a
            :exc:`StopIteration` close error raises :exc:`RuntimeError`
            from it rather than end the iteration.
        """


class IPipeWriter(ICloser, ITimeouts):
    """The write end of a synchronous in-memory pipe.

    Each write blocks until readers have consumed all of its data, or
    the pipe is closed. Parallel writes are gated one after another, so
    the bytes of each write are contiguous in the stream.

    A write to a pipe whose reader was closed raises
    :exc:`~gpipe.ClosedPipeError`; one whose reader was closed with
    ``close_with_error(e)`` raises ``e``. A write on a writer this end's
    owner closed raises :exc:`~gpipe.ClosedPipeError`.

    A write that raises (a timeout, :class:`gevent.Timeout`,
    :meth:`gevent.Greenlet.kill`, a close) withdraws what readers had
    not consumed yet, and tells how much they had: the exception's
    ``consumed`` attribute is set to that number of bytes when the
    exception allows attributes. A close that ends a write after
    readers took part of it makes the write return that count instead
    (a short write); the next write raises the close error.

    It is a write-only, unseekable binary file: calls that read raise
    :exc:`io.UnsupportedOperation`, and ``readable()``, ``writable()``
    and ``seekable()`` raise :exc:`ValueError` once it is closed. It
    cannot be copied or pickled (:exc:`TypeError`).
    """

    mode = Attribute('``"wb"``.')

    def write(data: Any) -> int:
        """Write all of the bytes-like *data*, blocking until it was read.

        ``write(b"")`` returns ``0`` at once, after checking that the
        pipe is writable, and wakes no reader.

        :return: ``len(data)`` in bytes; fewer if a close cut the write
            short after readers took part of it.
        :raises TypeError: *data* is not bytes-like (a :class:`str`, say).
        :raises ClosedPipeError: this writer was closed, or the reader
            was closed (or collected) without an error.
        :raises TimeoutError: the timeout set by ``settimeout`` expired.
        :raises BaseException: the error the reader closed the pipe with.
        """

    def writelines(lines: Iterable[Any]) -> None:
        """Write each bytes-like object of *lines* in turn.

        :raises: as :meth:`write`.
        """

    def flush() -> None:
        """Do nothing: a pipe keeps no buffer to flush."""

    def makefile(
        mode: str = "wb",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        """Return an :class:`io.BufferedWriter` (``"wb"``) or
        :class:`io.TextIOWrapper` (``"w"``) over this writer, as
        :meth:`socket.socket.makefile` does.

        It never ends a failed stream with EOF: its ``close()`` flushes
        and closes this writer cleanly (or with the flush's error);
        leaving its ``with`` block by an exception, or closing it while
        an exception is being handled, closes this writer with that
        exception without flushing; collected unclosed, it closes this
        writer as if it were collected (reads raise
        :exc:`~gpipe.ClosedPipeError`).

        :raises ValueError: a mode other than ``"w"`` or ``"wb"``.
        """


class ISemaphore(Interface):
    """A counting semaphore: the wakeup of a call waiting for a handoff.

    :class:`gevent.lock.Semaphore` on the gevent backend; a native lock
    created locked (a semaphore that counts to one) on the threading
    backend. The core creates it at 0; a call waits by acquiring it, and
    whoever completes that call's handoff, or closes the pipe, releases
    it exactly once.
    """

    def acquire(blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take one unit, waiting for a release if there is none.

        :return: True if a unit was taken; False if *blocking* is false
            and none was there, or the timeout passed first.
        """

    def release() -> None:
        """Add one unit, waking a waiter. Safe from any thread; never blocks."""


class IEvent(Interface):
    """A flag that can be waited for: the wakeup of a call queued at a gate.

    :class:`gevent.event.Event` on the gevent backend, the unpatched
    :class:`threading.Event` on the threading backend. It is set once,
    when the gate is handed over to the call waiting for it.
    """

    def set() -> None:
        """Set the flag, waking its waiters. Safe from any thread; never blocks."""

    def is_set() -> bool:
        """Return True once the flag was set."""

    def wait(timeout: Optional[float] = None) -> bool:
        """Block until the flag is set or *timeout* seconds passed.

        :return: the flag.
        """


class IBackend(Interface):
    """The blocking primitives a pipe is built on: a semaphore and an event.

    A pipe never blocks but through :meth:`acquire` and :meth:`wait`.
    """

    name = Attribute('The backend\'s name: ``"gevent"`` or ``"threading"``.')
    place = Attribute(
        "A function of no arguments: where the calling code would wait now "
        "(the current hub on the gevent backend). A semaphore made for one "
        "place is only waited on there."
    )
    dead_end = Attribute(
        "The exception a wait raises when nothing could ever wake it "
        "(:exc:`gevent.exceptions.LoopExit`), or ``()`` if it cannot tell."
    )

    def semaphore() -> ISemaphore:
        """Return a new :class:`ISemaphore` at 0, for the calling thread.

        A gevent semaphore belongs to the hub of the first thread that
        waits on it, so each thread that waits gets one of its own.
        """

    def event() -> IEvent:
        """Return a new, unset :class:`IEvent`."""

    def acquire(semaphore: ISemaphore, timeout: Optional[float]) -> bool:
        """Wait for a unit of *semaphore*, at most *timeout* seconds (``None``: no limit).

        The gevent backend yields to the calling thread's hub, and keeps
        that hub's loop alive while another native thread could release
        the semaphore; with no such thread, a wait that nothing can end
        raises :exc:`gevent.exceptions.LoopExit`, as gevent's own waits do.

        :return: True if a unit was taken, False if the timeout passed.
        """

    def wait(event: IEvent, timeout: Optional[float]) -> bool:
        """Wait until *event* is set, at most *timeout* seconds, as :meth:`acquire` does.

        :return: the event's flag.
        """
