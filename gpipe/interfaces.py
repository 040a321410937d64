"""zope.interface declarations of gpipe's contract.

:class:`IPipeReader` and :class:`IPipeWriter` describe the two ends that
:func:`gpipe.pipe` returns; :class:`IBackend` and :class:`ISemaphore`
describe the seam between the pipe core and the blocking primitive of
gevent or of OS threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional

from zope.interface import Attribute, Interface

__all__ = [
    "IBackend",
    "ICloser",
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
    is an :exc:`Exception` (but a writer's :exc:`ConnectionError` reaches
    readers as a :exc:`~gpipe.WriterAbortedError` caused by it: HTTP
    clients would take it for a server that left). Any other exception (:exc:`KeyboardInterrupt`,
    :exc:`SystemExit`, a kill, :class:`gevent.Timeout`) is meant for the
    code it interrupted, and is not delivered twice: the other end raises
    an error that names it, with it as ``__cause__`` -- readers a
    :exc:`~gpipe.WriterAbortedError`, writers a
    :exc:`~gpipe.ClosedPipeError`. The exception goes on unchanged.
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
        it had when it was passed in; but a writer's
        :exc:`ConnectionError` reaches readers as a
        :exc:`~gpipe.WriterAbortedError` with it as ``__cause__``.
        ``close_with_error(None)`` closes the end cleanly, whatever
        exception is being handled.

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
    """The read end of a synchronous in-memory pipe: a binary file.

    Two kinds of read, as in Go. :meth:`read` and :meth:`readinto` are
    full reads (Go's ``io.ReadFull``): they wait across writes until
    they have what they asked for, and return less only at EOF.
    :meth:`read1` and :meth:`readinto1` are Go's ``Read``: they return
    the bytes of at most one write as soon as one is there. Lines,
    iteration and text wrappers read through :meth:`read1`, so they
    hand each line on as soon as its write arrives. No read buffers:
    each byte it returns was copied straight from a writer's buffer.
    Parallel reads are gated one after another.

    What reads raise, and why:

    * EOF (``b""`` or ``0``): the writer was closed cleanly, and
      everything written before was read. Nothing else.
    * ``e`` itself: the writer was closed with ``close_with_error(e)``,
      or left its ``with`` block by the :exc:`Exception` ``e``, unless
      ``e`` is a :exc:`ConnectionError` (below). Bytes written before
      are read first; a full read that needs more than they hold raises
      ``e`` and leaves them for :meth:`read1`.
    * :exc:`~gpipe.WriterAbortedError`: the writer broke off -- a
      kill, :class:`gevent.Timeout`, :exc:`KeyboardInterrupt` or
      :exc:`SystemExit` left its ``with`` block or hit a bare
      ``close()`` (that exception is the ``__cause__``), or it was
      garbage-collected unclosed; or it was closed with a
      :exc:`ConnectionError` (the ``__cause__``), which readers never
      raise.
    * :exc:`ValueError`: this reader was closed by its owner, as for
      any closed file.
    * :exc:`TimeoutError`: the timeout set by ``settimeout`` expired.

    An interrupted read (a timeout, a kill, an error) consumes nothing:
    the bytes it had taken are read again by the next read.

    It is a read-only, unseekable :class:`io.BufferedIOBase`: calls
    that write raise :exc:`io.UnsupportedOperation`, as does
    ``detach()``; ``readable()``, ``writable()`` and ``seekable()``
    raise :exc:`ValueError` once it is closed. It cannot be copied or
    pickled (:exc:`TypeError`).
    """

    mode = Attribute('``"rb"``.')

    def read(size: Optional[int] = -1) -> bytes:
        """Read *size* bytes, waiting across writes, unless EOF comes first.

        ``size=-1`` or ``None`` reads until EOF. ``read(0)`` returns
        ``b""`` at once, after the same checks as any read.

        :return: *size* bytes; fewer only at EOF; ``b""`` at EOF.
        :raises ValueError: this reader was closed.
        :raises WriterAbortedError: the writer broke off.
        :raises TimeoutError: the timeout set by ``settimeout`` expired.
        :raises BaseException: the error the writer closed the pipe with.
        """

    def read1(size: Optional[int] = -1) -> bytes:
        """Read up to *size* bytes of at most one write, as soon as one
        is there (Go's ``Read``).

        ``size=-1`` or ``None`` takes the rest of the current write.

        :return: non-empty :class:`bytes`, or ``b""`` at EOF.
        :raises: as :meth:`read`.
        """

    def readinto(buffer: Any) -> int:
        """Fill the writable bytes-like *buffer*, waiting across writes,
        unless EOF comes first (Go's ``io.ReadFull``).

        :return: ``len(buffer)`` in bytes; fewer only at EOF; ``0`` at
            EOF, and for an empty buffer of any shape.
        :raises: as :meth:`read`, and :exc:`TypeError` for a buffer that
            is read-only or not C-contiguous.
        """

    def readinto1(buffer: Any) -> int:
        """Read into *buffer* the bytes of at most one write, as soon as
        one is there (Go's ``Read``): the fastest way to read.

        :return: the number of bytes read; ``0`` at EOF.
        :raises: as :meth:`readinto`.
        """

    def readall() -> bytes:
        """Read until EOF and return all of it as :class:`bytes`.

        :raises: as :meth:`read`.
        """

    def readline(size: Optional[int] = -1) -> bytes:
        """Read up to and including the next ``b"\\n"``, at most *size* bytes.

        A negative *size*, ``None``, or one beyond :data:`sys.maxsize`
        means no limit.

        :raises: as :meth:`read`.
        """

    def readlines(hint: int = -1) -> list[bytes]:
        """Read lines until EOF, or until their total size reaches *hint*.

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
        """Return this reader itself (``"rb"``: it is a binary file
        already; *buffering* is accepted and ignored), or an
        :class:`io.TextIOWrapper` directly over it (``"r"``), as
        :meth:`socket.socket.makefile` does.

        Closing the text file closes this reader; leaving its ``with``
        block by an exception closes this reader with it, as for this
        reader's own ``with`` block; collected unclosed, it closes this
        reader as if it were collected; iterating over it raises
        :exc:`RuntimeError` for a :exc:`StopIteration` close error, as
        :meth:`__iter__`. A call that raises leaves this reader open.

        :raises ValueError: a mode other than ``"r"`` or ``"rb"``.
        """

    def iter_chunks(size: int = 65536) -> Iterator[bytes]:
        """Return an iterator over non-empty :class:`bytes` chunks until EOF.

        Each chunk is one :meth:`read1` of at most *size* bytes. The
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
    """The write end of a synchronous in-memory pipe: a binary file.

    Each write blocks until readers have consumed all of its data, and
    returns its length, or raises: there are no short writes. Parallel
    writes are gated one after another, so the bytes of each write are
    contiguous in the stream.

    What writes raise, and why:

    * :exc:`~gpipe.ClosedPipeError`: the reader was closed (cleanly, or
      by a ``BaseException`` that is not an :exc:`Exception`, then the
      ``__cause__``) or garbage-collected unclosed; or this writer was
      closed by its owner.
    * ``e`` itself: the reader was closed with ``close_with_error(e)``,
      or left its ``with`` block by the :exc:`Exception` ``e``.
    * :exc:`TimeoutError`: the timeout set by ``settimeout`` expired.

    A write that raises (any of these, :class:`gevent.Timeout`,
    :meth:`gevent.Greenlet.kill`) withdraws what readers had not
    consumed yet, and tells how much they had: the exception's
    ``consumed`` attribute is set to that number of bytes when the
    exception allows attributes. That includes a close that ends a
    write after readers took part of it.

    It is a write-only, unseekable :class:`io.BufferedIOBase`: calls
    that read raise :exc:`io.UnsupportedOperation`, as does
    ``detach()``; ``readable()``, ``writable()`` and ``seekable()``
    raise :exc:`ValueError` once it is closed. It cannot be copied or
    pickled (:exc:`TypeError`).
    """

    mode = Attribute('``"wb"``.')

    def write(data: Any) -> int:
        """Write all of the bytes-like *data*, blocking until it was read.

        ``write(b"")`` returns ``0`` at once, after the same checks as
        any write, and wakes no reader.

        :return: the number of bytes of *data*, always (``len(data)``
            for :class:`bytes`; ``memoryview(data).nbytes`` for any
            bytes-like object, as for :mod:`io`'s files).
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
        :meth:`socket.socket.makefile` does, to gather small writes.

        It never ends a failed stream with EOF: its ``close()`` flushes
        and closes this writer cleanly (or with the flush's error);
        leaving its ``with`` block by an exception, or closing it while
        an exception is being handled, closes this writer with that
        exception without flushing; collected unclosed, it closes this
        writer as if it were collected (reads raise
        :exc:`~gpipe.WriterAbortedError`). A call that raises leaves
        this writer open.

        :raises ValueError: a mode other than ``"w"`` or ``"wb"``.
        """


class ISemaphore(Interface):
    """A counting semaphore: the wakeup of one waiting call.

    :class:`gevent.lock.Semaphore` on the gevent backend; a native lock
    created locked (a semaphore that counts to one) on the threading
    backend. A call that waits -- for the other side of a handoff, or
    for its turn at a busy end -- takes one at 0, and whoever completes
    that call, hands it the turn, or closes the pipe releases it exactly
    once. One whose wait ended by its release is at 0 again: the core
    keeps a few per thread and waits on them again.
    """

    def acquire(blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take one unit, waiting for a release if there is none.

        :return: True if a unit was taken; False if *blocking* is false
            and none was there, or the timeout passed first.
        """

    def release() -> None:
        """Add one unit, waking a waiter. Safe from any thread; never blocks."""


class IBackend(Interface):
    """The blocking primitive a pipe is built on: a semaphore.

    A pipe never blocks but through :meth:`acquire`, on a semaphore
    from :meth:`semaphore`.
    """

    name = Attribute('The backend\'s name: ``"gevent"`` or ``"threading"``.')
    dead_end = Attribute(
        "The exception a wait raises when nothing could ever wake it "
        "(:exc:`gevent.exceptions.LoopExit`), or ``()`` if it cannot tell."
    )

    def semaphore() -> ISemaphore:
        """Return a new :class:`ISemaphore` at 0, for waits of the calling thread.

        A gevent semaphore belongs to the hub of the first thread that
        waits on it: the core waits on one only in the thread that made
        it (and drops the ones whose hub was destroyed).
        """

    def acquire(semaphore: ISemaphore, timeout: Optional[float]) -> bool:
        """Wait for a unit of *semaphore*, at most *timeout* seconds (``None``: no limit).

        With a timeout of 0 or less, neither backend waits: the call
        takes a unit if there is one, else returns False. Otherwise
        the gevent backend yields to the calling thread's hub, and keeps
        that hub's loop alive while another native thread could release
        the semaphore; with no such thread, a wait that nothing can end
        raises :exc:`gevent.exceptions.LoopExit`, as gevent's own waits do.

        :return: True if a unit was taken, False if the timeout passed.
        """
