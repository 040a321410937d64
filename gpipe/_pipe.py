"""The public ends of a pipe and :func:`pipe` itself.

The ends are binary files (:class:`io.BufferedIOBase`) over an
unbuffered pipe, with one rule that Python's files do not have: a close
that comes from a failure -- an exception leaving a ``with`` block, a
writer's close while an exception is being handled, an end or a
``makefile()`` file collected without being closed -- closes the pipe
with an error, never cleanly, so that the reader's ``b""`` keeps
meaning "the writer finished".
"""

from __future__ import annotations

import io
import itertools
import math
import numbers
import operator
import sys
import warnings
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Optional

from zope.interface import implementer

from ._backends import get_backend
from ._core import COMPILED, BufferedPipe, LineBatches, Pipe, ReaderMethods, WriterMethods
from ._errors import ClosedPipeError, WriterAbortedError
from ._files import STOPS, not_the_end, open_end
from .interfaces import IPipeReader, IPipeWriter

__all__ = ["ChunkIterator", "PipeReader", "PipeWriter", "pipe"]

# iter_chunks()'s default: large enough to amortise a switch per chunk,
# small enough to keep a server's many bodies in constant memory.
DEFAULT_CHUNK = 65536


def _check_timeout(timeout: Any) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(
            f"timeout must be None or a number of seconds, not {type(timeout).__name__!r}"
        )
    try:
        seconds = float(timeout)
    except OverflowError:  # an int too large for a float, such as 2**2000
        raise ValueError(
            f"timeout must be None or a finite number of seconds, not {timeout!r}"
        ) from None
    if not seconds >= 0.0:  # also rejects NaN
        raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")
    return None if math.isinf(seconds) else seconds


def _peer_error(exc: BaseException, who: str) -> BaseException:
    """The error the other end sees when *who* ends by *exc* without saying so.

    An :exc:`Exception` crosses over as it is. Any other
    ``BaseException`` (:exc:`KeyboardInterrupt`, :exc:`SystemExit`,
    :class:`gevent.GreenletExit`, :class:`gevent.Timeout`) is meant for
    the code it interrupted alone: raised again in another greenlet or
    thread it would be reported, or delivered, twice. The other end gets
    an error naming it, with it as ``__cause__``: readers a
    :exc:`~gpipe.WriterAbortedError`, writers a
    :exc:`~gpipe.ClosedPipeError`.
    """
    if isinstance(exc, Exception):
        return exc
    text = f"the {who} was interrupted by {type(exc).__name__}"
    # Readers learn that the writing side broke off; writers, that the
    # reading side went away.
    err = ClosedPipeError(text) if who in ("reader", "consumer") else WriterAbortedError(text)
    err.__cause__ = exc
    return err


def _readers_error(exc: Optional[BaseException]) -> Optional[BaseException]:
    """What reads raise once the writer is closed with *exc*: *exc* itself,
    unless it is a :exc:`ConnectionError` (:exc:`BrokenPipeError`, a
    :exc:`~gpipe.ClosedPipeError` from another pipe, a reset socket).
    HTTP clients take one raised while they send a body for a server that
    closed the connection early, and do not fail the request: readers get
    a :exc:`~gpipe.WriterAbortedError` with *exc* as ``__cause__``."""
    if not isinstance(exc, ConnectionError):
        return exc
    detail = f": {exc}" if str(exc) else ""
    err = WriterAbortedError(f"the writer was closed with {type(exc).__name__}{detail}")
    err.__cause__ = exc
    return err


_BUILD = "compiled" if COMPILED else "pure"


def _no_copy(obj: object) -> TypeError:
    return TypeError(
        f"a {type(obj).__name__} cannot be copied or pickled: "
        "it is one end of a pipe in this process"
    )


class _End(io.BufferedIOBase):
    """What both ends share: closing, timeouts, repr and finalisation."""

    __slots__ = ("_pipe",)
    _reading: bool
    _who: str

    def __init__(self, core: Pipe) -> None:
        self._pipe = core

    @property
    def _sent(self) -> Optional[BaseException]:
        """What this end's own close gave the other end (None: open, or a
        plain close). Only this end closes its side while it lives."""
        return self._pipe.close_error(self._reading)

    @property
    def backend(self) -> str:
        """The name of this pipe's backend: ``"gevent"`` or ``"threading"``."""
        return str(self._pipe.backend.name)

    def settimeout(self, timeout: Optional[float]) -> None:
        """Bound each later blocking call on this end to *timeout* seconds.

        A read or write that would block longer raises the builtin
        :exc:`TimeoutError`. ``None`` (the default) waits forever; ``0``
        raises at once where a call would have to wait.

        :raises TypeError: *timeout* is not ``None`` or a real number.
        :raises ValueError: *timeout* is negative or NaN.
        """
        timeout = _check_timeout(timeout)
        if self._reading:
            self._pipe.rtimeout = timeout
        else:
            self._pipe.wtimeout = timeout

    def gettimeout(self) -> Optional[float]:
        """Return the timeout set by :meth:`settimeout`, ``None`` if none."""
        return self._pipe.rtimeout if self._reading else self._pipe.wtimeout

    def _close(self, exc: Optional[BaseException]) -> None:
        raise NotImplementedError

    def _shut(self, exc: Optional[BaseException]) -> None:
        """Close this end with *exc* (None: cleanly), unless it is closed."""
        if not self.closed:
            self._close(exc)
        io.BufferedIOBase.close(self)

    def close(self) -> None:
        """Close this end. Never blocks; a second call does nothing.

        See the class documentation for what the other end sees.
        """
        self._shut(None)

    def close_with_error(self, exc: Optional[BaseException] = None) -> None:
        """Close this end so that calls on the other end raise *exc*.

        The very instance *exc* is raised there, each time with the
        traceback it had when passed in; except that a writer's
        :exc:`ConnectionError` (:exc:`BrokenPipeError`, a
        :exc:`~gpipe.ClosedPipeError` of another pipe) reaches readers
        as a :exc:`~gpipe.WriterAbortedError` with it as ``__cause__``:
        HTTP clients sending the reader as a body would take it for a
        server that closed the connection early. If this end was already
        closed, the earlier close stands and this call does nothing.
        ``close_with_error(None)`` closes the end cleanly, whatever
        exception is being handled when it is called.

        :raises TypeError: *exc* is neither ``None`` nor an exception instance.
        """
        if exc is not None and not isinstance(exc, BaseException):
            raise TypeError(
                "close_with_error() takes an exception instance or None, "
                f"not {type(exc).__name__!r}"
            )
        self._shut(exc)

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Close this end: with *exc* if the block raised, else cleanly.

        An :exc:`Exception` leaving the block is what the other end's
        calls raise; any other exception (:exc:`KeyboardInterrupt`, a
        kill) makes them raise an error with it as ``__cause__``:
        readers a :exc:`~gpipe.WriterAbortedError`, writers a
        :exc:`~gpipe.ClosedPipeError`. (Readers also get a
        :exc:`~gpipe.WriterAbortedError` for a writer's
        :exc:`ConnectionError`.) The exception goes on unchanged.
        """
        if exc is None:
            self._shut(None)
        else:
            self._shut(_peer_error(exc, self._who))

    def __copy__(self) -> Any:
        raise _no_copy(self)

    def __deepcopy__(self, memo: Any) -> Any:
        raise _no_copy(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise _no_copy(self)

    def __reduce__(self) -> Any:
        raise _no_copy(self)

    def seekable(self) -> bool:
        """Return False: a pipe cannot seek.

        :raises ValueError: this end is closed, as for any closed file
            (for a writer, a :exc:`~gpipe.ClosedPipeError`, which is one).
        """
        self._check_open()
        return False

    def _check_open(self) -> None:
        if self.closed:
            # What a closed file raises; for a writer also Go's ErrClosedPipe.
            error = ValueError if self._reading else ClosedPipeError
            raise error(f"I/O operation on a closed {type(self).__name__}")

    def flush(self) -> None:
        """Do nothing: a pipe has no buffer to flush.

        (Not even on a closed end, where a file's flush raises: the
        :mod:`io` close that every close runs calls it, and two threads
        closing the same end at once must both succeed.)
        """

    def __repr__(self) -> str:
        cls = type(self).__name__
        state = "closed" if self.closed else "open"
        return (
            f"<gpipe.{cls} {state} backend={self.backend!r} {_BUILD} "
            f"waiting={self._pipe.waiting(self._reading)} {self._pipe.status()}>"
        )

    def __del__(self) -> None:
        # Never blocks or switches greenlets: it may run in any thread, in
        # the middle of any other code (the cyclic garbage collector).
        try:
            self._pipe  # noqa: B018 -- __init__ may never have run
        except AttributeError:
            return
        if not self.closed:
            self._abandoned(self)

    def _abandoned(self, owner: object) -> None:
        """*owner* (this end, or a file over it) was collected unclosed."""
        text = f"unclosed {owner!r}"
        # Fail the peer first: with warnings turned into errors (python -W
        # error), the warning raises, and the peer must not wait forever.
        self._collected(self._pipe)
        io.BufferedIOBase.close(self)
        # stacklevel=1: a finaliser has no caller worth pointing at.
        warnings.warn(text, ResourceWarning, stacklevel=1, source=owner)

    def makefile(
        self,
        mode: str = "",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        # Documented on each end, whose modes differ.
        self._check_open()
        return open_end(self, mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def _collected(self, core: Pipe) -> None:
        raise NotImplementedError


@implementer(IPipeReader)
class PipeReader(ReaderMethods, _End):
    """The read end of a pipe made by :func:`pipe`.

    Implements :class:`~gpipe.interfaces.IPipeReader`. It is a binary
    file, an :class:`io.BufferedIOBase` over the unbuffered pipe, so any
    consumer of files takes it as it is: :func:`pickle.load`,
    :mod:`tarfile`'s ``"r|*"``, :func:`shutil.copyfileobj`, an HTTP
    client sending a request body, ``wsgi.input``. For text, use
    ``makefile("r")``. Do not wrap it in :class:`io.BufferedReader`,
    whose ``read1()`` and ``peek()`` would wait to fill its buffer.

    Two kinds of read, as in Go: :meth:`read` and :meth:`readinto`
    return as many bytes as asked for, waiting across writes, unless
    EOF comes first (Go's ``io.ReadFull``); :meth:`read1` and
    :meth:`readinto1` return the bytes of at most one write as soon as
    one is there (Go's ``Read``). Lines, iteration,
    :meth:`iter_chunks` and text files read through :meth:`read1`, so
    they stay prompt.

    Reads raise :exc:`ValueError` once this reader is closed, as for
    any closed file. Closing the reader makes blocked and later writes
    raise :exc:`~gpipe.ClosedPipeError` (or the error given to
    :meth:`close_with_error`, or the exception that left its ``with``
    block). A reader collected without being closed emits
    :exc:`ResourceWarning` and is closed then. :meth:`detach` raises
    :exc:`io.UnsupportedOperation`: there is no raw stream under it.
    """

    __slots__ = ()
    _reading = True
    _who = "reader"

    @property
    def mode(self) -> str:
        """``"rb"``, as for a file opened for reading bytes."""
        return "rb"

    def readable(self) -> bool:
        """Return True: this is the read end.

        :raises ValueError: this reader is closed, as for any closed file.
        """
        self._check_open()
        return True

    def writable(self) -> bool:
        """Return False: this is the read end.

        :raises ValueError: this reader is closed, as for any closed file.
        """
        self._check_open()
        return False

    def write(self, data: Any) -> int:
        """Raise :exc:`io.UnsupportedOperation`: this is the read end."""
        raise io.UnsupportedOperation("write() on a PipeReader: it is the read end of a pipe")

    def writelines(self, lines: Any) -> None:
        """Raise :exc:`io.UnsupportedOperation`: this is the read end."""
        raise io.UnsupportedOperation("writelines() on a PipeReader: it is the read end of a pipe")

    def makefile(
        self,
        mode: str = "rb",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        """Return a file over this reader, as :meth:`socket.socket.makefile`.

        ``makefile("rb")`` returns this reader itself: it is a binary
        file already, and a buffer over it would only wait to fill up.
        ``makefile("r")`` returns an :class:`io.TextIOWrapper` directly
        over this reader, which reads through :meth:`read1`, so each
        line is handed on as soon as the write holding it arrives.

        Closing the text file closes this reader. Leaving the file's
        ``with`` block by an exception closes this reader with it (see
        :meth:`__exit__`); a file collected without being closed emits
        :exc:`ResourceWarning` and closes this reader as if it were
        collected itself. Iterating over it never ends cleanly on a
        :exc:`StopIteration` that the writer closed the pipe with: it
        raises :exc:`RuntimeError` from it. A read of the text file
        that fails (a timeout, a kill, the writer's error, a
        :exc:`UnicodeDecodeError`) closes this reader: :mod:`io`'s text
        layer drops what it had taken of the line from the pipe, so the
        stream has a hole from there, for any reader; writers get
        :exc:`~gpipe.ClosedPipeError`. (Reads of this reader itself
        consume nothing when interrupted: retry those.) A call of
        ``makefile()`` that raises, for any argument, leaves this reader
        open and usable, with no warning.

        :param mode: ``"rb"`` (the default) for this reader itself,
            ``"r"`` for an :class:`io.TextIOWrapper` over it.
        :param buffering: accepted as :func:`open` accepts it, and
            ignored: the pipe is unbuffered (``0`` is refused in text
            mode).
        :param encoding: the text encoding, ``"utf-8"`` by default (not
            the locale's: both ends are in this program); text mode only.
        :param errors: as for :class:`io.TextIOWrapper`; text mode only.
        :param newline: as for :class:`io.TextIOWrapper`; text mode only.
        :return: this reader, or an :class:`io.TextIOWrapper` (of a
            subclass that keeps the rules above).
        :raises ValueError: *mode* is not ``"r"`` or ``"rb"``; an encoding,
            errors or newline in binary mode; ``buffering=0`` in text mode.
        :raises TypeError: *buffering* is not an integer or ``None``.
        :raises ValueError: this reader is closed, as for any closed file.

        .. versionadded:: 0.1.0
        .. versionchanged:: 0.2.0
           ``"rb"`` returns the reader itself, and ``"r"`` wraps it
           directly: no :class:`io.BufferedReader`.
        """
        return super().makefile(mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def __next__(self) -> bytes:
        """Return the next line, as :meth:`readline` reads it.

        :raises StopIteration: at EOF.
        :raises RuntimeError: the writer closed the pipe with
            :exc:`StopIteration` (or :exc:`StopAsyncIteration`), which
            must not pass for the end of the data; it is the
            ``__cause__``.
        :raises: otherwise as :meth:`read`.
        """
        try:
            line = self.readline()
        except STOPS as exc:
            raise not_the_end(exc) from exc
        if not line:
            raise StopIteration
        return line

    def __iter__(self) -> Iterator[bytes]:
        """Return an iterator over the lines of the stream, until EOF.

        Lines are as :meth:`readline` returns them. Where a write holds
        many whole lines, the iterator takes them all at once and hands
        them out at the speed of :class:`io.BufferedReader`; lines it
        took and has not handed out go back in front of the stream when
        any other read of this reader runs, or when the iterator is
        dropped, so mixing iteration with other reads loses nothing
        (the writer counts them as read: in an error's ``consumed``, if
        a close of this reader drops them). Unlike a file's, the
        iterator is not the reader itself, but as with a file, a step
        that raises (a timeout, a kill, the writer's error) ends neither
        the iterator nor the stream: a later step reads on from there.

        :raises RuntimeError: the writer closed the pipe with
            :exc:`StopIteration` (or :exc:`StopAsyncIteration`), which
            must not pass for the end of the data; it is the
            ``__cause__``.
        :raises: otherwise each step raises as :meth:`read`.
        """
        self._checkClosed()
        return itertools.chain.from_iterable(LineBatches(self._pipe, self))

    def readlines(self, hint: Optional[int] = -1) -> list[bytes]:
        """Read lines until EOF, or until their total size reaches *hint*.

        As for :class:`io.BytesIO`: ``hint`` ``-1``, ``None`` or any
        number up to 0 reads all lines; otherwise no more lines are read
        once the lines so far hold *hint* bytes or more. Lines taken from
        a write beyond those returned stay in the stream.

        :raises TypeError: *hint* is not an integer or ``None``.
        :raises: as iteration over the reader; an interrupted
            ``readlines`` consumes nothing (its lines are read again).
        """
        if hint is None:
            hint = -1
        else:
            try:
                hint = operator.index(hint)
            except TypeError:
                raise TypeError(
                    f"readlines() hint must be an integer or None, not {type(hint).__name__!r}"
                ) from None
        lines: list[bytes] = []
        try:
            if hint <= 0:
                lines.extend(self)
                return lines
            total = 0
            for line in self:
                lines.append(line)
                total += len(line)
                if total >= hint:
                    break  # the iterator, dropped, puts back what it took ahead
        except BaseException:
            # An interrupted read consumes nothing: the lines go back.
            with self._pipe._mutex:
                self._pipe.give_back(b"".join(lines))
            raise
        return lines

    def iter_chunks(self, size: int = DEFAULT_CHUNK) -> ChunkIterator:
        """Return an iterator over the data as non-empty chunks, until EOF.

        Each chunk is the :class:`bytes` of one :meth:`read1` of at most
        *size* bytes: the bytes of at most one write, handed on as soon
        as they are there. The iterator closes this reader at EOF, and its
        ``close()`` closes this reader at any time, so it is a correct
        WSGI response body (PEP 3333): when the server closes it because
        the client went away, the writer's next write raises
        :exc:`~gpipe.ClosedPipeError`.

        :param size: the largest chunk, in bytes.
        :return: a :class:`ChunkIterator`; each step raises as :meth:`read1`.
        :raises TypeError: *size* is not an integer.
        :raises ValueError: *size* is not positive, or this reader is
            closed (as for iteration over it: no iteration over a closed
            reader passes for an empty stream).
        """
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"iter_chunks() size must be an integer, not {type(size).__name__!r}")
        if size <= 0:
            raise ValueError(f"iter_chunks() size must be > 0, not {size!r}")
        self._checkClosed()
        return ChunkIterator(self, int(size))

    def _close(self, exc: Optional[BaseException]) -> None:
        self._pipe.close_read(exc)

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Close this reader, with *exc* if the block raised.

        Writes then raise *exc* itself if it is an :exc:`Exception`,
        else a :exc:`~gpipe.ClosedPipeError` with it as ``__cause__``
        (a :exc:`KeyboardInterrupt` or a kill is delivered once, to the
        code it interrupted). A normal exit is :meth:`close`. The
        exception goes on unchanged.
        """
        super().__exit__(exc_type, exc, tb)

    def _collected(self, core: Pipe) -> None:
        core.close_read(ClosedPipeError("read end collected without close"))


class ChunkIterator:
    """The iterator :meth:`PipeReader.iter_chunks` returns.

    Yields non-empty :class:`bytes` until EOF, then closes the reader.
    """

    __slots__ = ("_reader", "_size")

    def __init__(self, reader: PipeReader, size: int) -> None:
        self._reader = reader
        self._size = size

    def __iter__(self) -> ChunkIterator:
        return self

    def __next__(self) -> bytes:
        """Return the next chunk.

        :raises StopIteration: at EOF, and after :meth:`close`.
        :raises RuntimeError: the writer closed the pipe with
            :exc:`StopIteration` (or :exc:`StopAsyncIteration`), which must
            not pass for the end of the data; it is the ``__cause__``.
        :raises: otherwise as :meth:`PipeReader.read1`.
        """
        if self._reader.closed:
            raise StopIteration
        try:
            data = self._reader.read1(self._size)
        except STOPS as exc:
            raise not_the_end(exc) from exc
        if not data:
            self._reader.close()
            raise StopIteration
        return data

    def close(self) -> None:
        """Close the reader (never blocks); later steps stop the iteration."""
        self._reader.close()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise _no_copy(self)

    def __reduce__(self) -> Any:
        raise _no_copy(self)


@implementer(IPipeWriter)
class PipeWriter(WriterMethods, _End):
    """The write end of a pipe made by :func:`pipe`.

    Implements :class:`~gpipe.interfaces.IPipeWriter`. It is a binary
    file, an :class:`io.BufferedIOBase` over the unbuffered pipe, so any
    API that writes to a file (:mod:`tarfile`, :mod:`gzip`,
    :mod:`pickle`) takes it as it is. For text, and to gather many small
    writes (:mod:`csv`, :mod:`json`), use :meth:`makefile`, whose files
    keep the rules below (a hand-made :class:`io.TextIOWrapper` or
    :class:`io.BufferedWriter` does not).

    :meth:`write` returns ``len(data)`` once readers took all of it, or
    raises: there are no short writes. Writes raise
    :exc:`~gpipe.ClosedPipeError` once this writer is closed.

    Closing the writer makes reads return EOF once the data written
    before was read; :meth:`close_with_error` makes them raise its error
    instead. EOF means that the writer finished, and nothing else:
    leaving the writer's ``with`` block by an exception, or a
    :meth:`close` that runs while an exception is being handled,
    closes it with that exception. A writer collected without being
    closed emits :exc:`ResourceWarning`, and reads then raise
    :exc:`~gpipe.WriterAbortedError`, never EOF: a clean EOF would pass
    truncated data off as complete.
    """

    __slots__ = ()
    _reading = False
    _who = "writer"

    @property
    def mode(self) -> str:
        """``"wb"``, as for a file opened for writing bytes."""
        return "wb"

    def writable(self) -> bool:
        """Return True: this is the write end.

        :raises ClosedPipeError: this writer is closed (a :exc:`ValueError`,
            as for any closed file).
        """
        self._check_open()
        return True

    def readable(self) -> bool:
        """Return False: this is the write end.

        :raises ClosedPipeError: this writer is closed.
        """
        self._check_open()
        return False

    def writelines(self, lines: Any) -> None:
        """Write each bytes-like object of *lines* in turn, with :meth:`write`.

        As for :mod:`io`'s files, each is checked when its turn comes:
        the ones before a bad one are written.

        :raises ClosedPipeError: this writer is closed (as :meth:`write`:
            :class:`io.IOBase`'s own would raise a plain :exc:`ValueError`).
        """
        self._check_open()
        for line in lines:
            self.write(line)

    def read(self, size: Optional[int] = -1) -> bytes:
        """Raise :exc:`io.UnsupportedOperation`: this is the write end.

        So do :meth:`readinto`, :meth:`readall`, ``read1()``,
        ``readinto1()``, ``readline()``, ``readlines()``, iteration and
        ``detach()``.
        """
        raise io.UnsupportedOperation("read() on a PipeWriter: it is the write end of a pipe")

    def readinto(self, buffer: Any) -> int:
        """Raise :exc:`io.UnsupportedOperation`: this is the write end."""
        raise io.UnsupportedOperation("readinto() on a PipeWriter: it is the write end of a pipe")

    def readall(self) -> bytes:
        """Raise :exc:`io.UnsupportedOperation`: this is the write end."""
        raise io.UnsupportedOperation("readall() on a PipeWriter: it is the write end of a pipe")

    def close(self) -> None:
        """Close this writer. Never blocks; a second call does nothing.

        Readers get EOF once they have read what was written before,
        unless ``close()`` runs while an exception is being handled: in
        an ``except`` or ``finally`` block on the way out of an error,
        or in an ``__exit__`` (such as that of an :class:`io.TextIOWrapper`
        around this writer, whose ``with`` block raised). Then the
        stream is cut short, and this is ``close_with_error()`` with
        that exception, as :meth:`__exit__` describes. To close cleanly
        inside an ``except`` block that handled its error, call
        ``close_with_error(None)``.
        """
        if not self.closed:
            failure = sys.exc_info()[1]
            if failure is not None:
                self._shut(_peer_error(failure, "writer"))
                return
        self._shut(None)

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Close this writer, with *exc* if the block raised.

        Reads then raise *exc* itself if it is an :exc:`Exception`
        (a :exc:`StopIteration` too, which ends no iteration over the
        pipe) other than a :exc:`ConnectionError`, else a
        :exc:`~gpipe.WriterAbortedError` with it as ``__cause__`` (a
        :exc:`KeyboardInterrupt`, a kill or a :class:`gevent.Timeout` is
        delivered once, to the code it interrupted; a
        :exc:`BrokenPipeError` would look to an HTTP client like a
        server that closed the connection). The exception goes on
        unchanged.

        A normal exit closes the writer cleanly: readers get EOF. The
        block is known to have finished, so unlike a bare
        :meth:`close` this holds even inside an ``except`` block that
        handles some other error.
        """
        super().__exit__(exc_type, exc, tb)

    def makefile(
        self,
        mode: str = "wb",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        """Return a buffered file over this writer, as :meth:`socket.socket.makefile`.

        Use it for writer APIs that make many small writes (:mod:`csv`,
        :mod:`json`, :mod:`pickle`): each handoff to the reader costs a
        switch, and the buffer gathers them. Use it for text.

        The file keeps the pipe's guarantee that a cut-off stream never
        ends with a clean EOF:

        - a normal exit from its ``with`` block, or its
          :meth:`~io.IOBase.close`, flushes, then closes this writer
          cleanly; if the flush fails, this writer is closed with that
          error;
        - leaving its ``with`` block by an exception, or a ``close()``
          while an exception is being handled (as for :meth:`close`),
          closes this writer with that exception (as :meth:`__exit__`
          says) *without* flushing: what the buffer held is dropped,
          and nothing blocks;
        - a file collected without being closed (its greenlet or thread
          died, or forgot it) emits :exc:`ResourceWarning` and closes
          this writer as if it were collected itself: reads raise
          :exc:`~gpipe.WriterAbortedError`. Close the file before a
          :func:`~gpipe.spawn_producer` function returns;
        - a write of the file's to this writer that fails (a timeout, a
          kill, the reader gone) closes this writer with that error, as
          if it had left its ``with`` block, and the file is closed:
          :mod:`io`'s files carry on after such an error as if nothing
          had been sent, so the next flush would repeat what readers
          had already taken of the buffer (or, in text mode, the bytes
          being passed on would be dropped). Retrying is for writes to
          this writer itself, whose error says how much was consumed.

        One thing the file cannot know, as no :mod:`io` file can: that
        this writer was closed under it. Close the file, not the writer
        (nor leave the writer's ``with`` block with the file open): a
        clean close of the writer drops what the file still buffers,
        and readers get EOF.

        A call that raises, for any argument, leaves this writer open
        and usable, with no warning.

        :param mode: ``"wb"`` (the default) for an
            :class:`io.BufferedWriter`, ``"w"`` for an
            :class:`io.TextIOWrapper` over one.
        :param buffering: the buffer's size in bytes; ``None`` or a
            negative number for 65536; ``1`` in text mode for line
            buffering, as :func:`open`; ``0`` for no buffer: this writer
            itself is returned (binary mode only).
        :param encoding: the text encoding, ``"utf-8"`` by default (not
            the locale's: both ends are in this program); text mode only.
        :param errors: as for :class:`io.TextIOWrapper`; text mode only.
        :param newline: as for :class:`io.TextIOWrapper`; text mode only.
        :return: an :class:`io.BufferedWriter` or :class:`io.TextIOWrapper`
            (of subclasses that keep the rules above).
        :raises ValueError: *mode* is not ``"w"`` or ``"wb"``; an encoding,
            errors or newline in binary mode; ``buffering=0`` in text mode.
        :raises TypeError: *buffering* is not an integer or ``None``.
        :raises ClosedPipeError: this writer is closed.

        .. versionadded:: 0.1.0
        """
        return super().makefile(mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def _close(self, exc: Optional[BaseException]) -> None:
        self._pipe.close_write(_readers_error(exc))

    def _collected(self, core: Pipe) -> None:
        core.close_write(
            WriterAbortedError("the writer was garbage-collected without being closed")
        )


def pipe(bufsize: int = 0, *, backend: Optional[str] = None) -> tuple[PipeReader, PipeWriter]:
    """Create a synchronous in-memory pipe and return its two ends.

    It connects code that wants to read a file with code that wants to
    write one. Reads and writes are matched one to one, except when
    several reads are needed to consume one write: each write to the
    :class:`PipeWriter` blocks until it has satisfied one or more reads
    from the :class:`PipeReader` that fully consume its data. The data
    is copied straight from the write to the corresponding reads; there
    is no internal buffering.

    It is safe to read and write in parallel with each other and with
    close, from any greenlet or thread. Parallel reads and parallel
    writes are safe too: they are gated one after another, so each
    write's bytes are contiguous in the stream.

    :param bufsize: ``0`` (the default) for the unbuffered pipe above.
        A positive *bufsize* lets writers run ahead of readers by up to
        that many bytes, as an OS pipe does: a write that fits in the
        free room (when no reader waits and no other write is in
        progress) is appended to the buffer and returns at once; any
        other (a larger one, or one that finds a reader waiting for
        less than all of it) waits, as on an unbuffered pipe, until
        readers took all of it, after the buffered bytes: unlike an OS
        pipe's, the buffer never takes part of a write. A :meth:`~PipeReader.read1`
        may return bytes of several buffered writes. Every close and
        error rule still holds: after the writer's
        :meth:`~PipeWriter.close` readers get the buffered bytes, then
        EOF; after its ``close_with_error(e)``, the buffered bytes, then
        ``e``; the reader's close discards the buffer and fails writers
        at once.
    :param backend: how blocking calls wait. ``"gevent"`` yields to the
        gevent hub (and works when one end is used from a native thread);
        ``"threading"`` blocks the OS thread. ``None`` (the default) asks
        :func:`detect_backend` now, on every call.
    :return: ``(reader, writer)``.
    :raises TypeError: *bufsize* is not an integer, or *backend* is not
        a string.
    :raises ValueError: *bufsize* is negative, or *backend* is not
        ``None``, ``"gevent"`` or ``"threading"``.

    .. versionadded:: 0.1.0
    """
    if isinstance(bufsize, bool) or not isinstance(bufsize, int):
        raise TypeError(f"bufsize must be an int, not {type(bufsize).__name__!r}")
    if bufsize < 0:
        raise ValueError(f"bufsize must be >= 0, not {bufsize}")
    found = get_backend(backend)
    core = BufferedPipe(found, bufsize) if bufsize else Pipe(found)
    return PipeReader(core), PipeWriter(core)
