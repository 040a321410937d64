"""The files that ``makefile()`` puts over a pipe end.

A reader is a binary file already: ``makefile("rb")`` returns it, and
``makefile("r")`` an :class:`io.TextIOWrapper` directly over it (which
reads through its ``read1()``, so each line is handed on as its write
arrives). A writer's ``makefile()`` gives an :class:`io.BufferedWriter`,
to gather small writes, or an :class:`io.TextIOWrapper` over one.

Each is its :mod:`io` class with the pipe's rule added where Python's
defaults break it: ``IOBase.__exit__`` closes cleanly when the block
raised, a file's finaliser flushes and closes cleanly, a buffered file
carries on after a write to its raw file failed, and a text file after
a read under it failed: each would let a failure pass for a whole
stream (the last two after repeating or dropping bytes).
"""

from __future__ import annotations

import io
import operator
import sys
from types import TracebackType
from typing import Any, Optional

# A writer's makefile() buffer: one 64 KiB write per handoff, as iter_chunks.
FILE_BUFFER = 65536

# The exceptions that end an iteration, which a close error must never do.
STOPS = (StopIteration, StopAsyncIteration)


def not_the_end(exc: BaseException) -> RuntimeError:
    """What an iteration over a pipe raises for a StopIteration close error,
    as PEP 479 has generators do (raise it ``from exc``)."""
    return RuntimeError(f"the pipe's writer was closed with {type(exc).__name__}")


def _raw(f: Any) -> Any:
    """The pipe end under the file *f*."""
    buffer = getattr(f, "buffer", f)  # a TextIOWrapper's, or f itself
    raw = getattr(buffer, "raw", buffer)  # (a reader is a binary file itself)
    return getattr(raw, "end", raw)  # a writer's is under a _RawWriter


class _NoCopy:
    """A file over a pipe end refuses to be copied or pickled, as the end does."""

    __slots__ = ()

    def __copy__(self) -> Any:
        raise self._no_copy()

    def __deepcopy__(self, memo: Any) -> Any:
        raise self._no_copy()

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise self._no_copy()

    def __reduce__(self) -> Any:
        raise self._no_copy()

    def _no_copy(self) -> TypeError:
        return TypeError("a file over a pipe end cannot be copied or pickled")


class _RawWriter(_NoCopy, io.RawIOBase):
    """The raw file of a writer's ``makefile()`` file: the writer, closed
    with the error of the first write to it that fails.

    :mod:`io`'s files carry on after a raw write raised as if nothing of
    it had been sent: a buffered file keeps its whole buffer, part of
    which readers may have consumed (a write interrupted by a timeout or
    a kill), and its next flush would send that part again; a text file
    drops the bytes it was passing on. A stream continued after that
    would be corrupt, and could end with a clean EOF. So the stream ends
    there, as if the error had left the writer's ``with`` block: readers
    get the error, and the file is closed (its later writes raise
    :exc:`ValueError`, as any closed file's).
    """

    def __init__(self, end: Any) -> None:
        super().__init__()
        self.end = end

    def write(self, b: Any) -> int:
        try:
            return self.end.write(b)  # type: ignore[no-any-return]
        except BaseException as exc:
            self.end.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self.end.closed  # type: ignore[no-any-return]

    def close(self) -> None:
        self.end.close()

    def flush(self) -> None:
        self.end.flush()

    @property
    def mode(self) -> str:
        return self.end.mode  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<gpipe raw file on {self.end!r}>"

    def __del__(self) -> None:
        # Not IOBase's finaliser, which would close the writer cleanly: the
        # file over it (or the writer itself) decides how the writer closes.
        pass


class _Rules(_NoCopy):
    """What every file over a pipe end adds to its :mod:`io` class."""

    __slots__ = ()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is None:
            self._finish()
        else:
            # Not self.close(): a writer's flush could block on the way out
            # of an error, and the error is all the reader needs to know.
            _raw(self).__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        """The close of a ``with`` block that ended normally."""
        self.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        # Instead of IOBase's finaliser, which flushes and closes cleanly.
        try:
            closed = self.closed  # type: ignore[attr-defined]
        except (AttributeError, ValueError):
            # Never initialised (its __init__ raised), or detached: this
            # file does not own the end, whose owner still has it.
            return
        if not closed:
            _raw(self)._abandoned(self)

    def __repr__(self) -> str:
        try:
            raw = _raw(self)
        except (AttributeError, ValueError):
            return f"<gpipe file {type(self).__name__}>"
        return f"<gpipe file mode={self.mode!r} on {raw!r}>"  # type: ignore[attr-defined]


class _ReaderRules(_Rules):
    """What a reader's text file adds: a read that fails closes the reader.

    :mod:`io`'s text layer drops what it had taken of a line (or of a
    ``read(n)``) from the pipe when a read under it raises, or when the
    decoder does: the stream has a hole from then on, for any reader.
    So the stream ends there, as if the reader had been closed: writers
    get :exc:`~gpipe.ClosedPipeError`, and later reads :exc:`ValueError`.
    """

    __slots__ = ()

    def _whole(self, read: Any, size: Any) -> Any:
        """``read(size)``; if it fails, the reader is closed."""
        if size is not None:
            operator.index(size)  # a bad argument: refused before any read
        try:
            return read(size)
        except BaseException:
            _raw(self).close()
            raise

    def read(self, size: Any = -1) -> Any:
        return self._whole(super().read, size)  # type: ignore[misc]

    def readline(self, size: Any = -1) -> Any:
        return self._whole(super().readline, size)  # type: ignore[misc]

    def __next__(self) -> Any:
        try:
            line = self._whole(super().readline, -1)  # type: ignore[misc]
        except STOPS as exc:
            raise not_the_end(exc) from exc
        if not line:
            raise StopIteration
        return line


class _WriterRules(_Rules):
    __slots__ = ()

    def close(self) -> None:
        raw = _raw(self)
        if raw.closed:
            return
        failure = sys.exc_info()[1]
        if failure is not None:
            # Closed while an error propagates: the same as leaving a
            # ``with`` block by it, without the flush.
            raw.__exit__(type(failure), failure, failure.__traceback__)
            return
        self._finish()

    def _finish(self) -> None:
        raw = _raw(self)
        if raw.closed:
            return
        try:
            self.flush()  # type: ignore[attr-defined]
        except BaseException as exc:
            # The io classes would close the writer cleanly after a failed
            # flush: the bytes it withdrew would never be missed.
            raw.__exit__(type(exc), exc, exc.__traceback__)
            raise
        # Cleanly, whatever exception an outer block may be handling: the
        # file's own close() or with block decided that the data is whole.
        raw.close_with_error(None)
        super().close()  # type: ignore[misc]


class _TextPipeReader(_ReaderRules, io.TextIOWrapper):
    __slots__ = ()
    mode = "r"  # as socket.makefile's text files


class _BufferedPipeWriter(_WriterRules, io.BufferedWriter):
    __slots__ = ()


class _TextPipeWriter(_WriterRules, io.TextIOWrapper):
    __slots__ = ()
    mode = "w"


def _check(end: Any, mode: str, buffering: Optional[int], text_args: dict[str, Any]) -> int:
    """Refuse bad ``makefile()`` arguments; the buffer size (-1: default)."""
    allowed = ("r", "rb") if end.mode == "rb" else ("w", "wb")
    if mode not in allowed:
        raise ValueError(
            f"invalid mode {mode!r} for a {type(end).__name__} (use {allowed[0]!r} or "
            f"{allowed[1]!r})"
        )
    if buffering is None:
        buffering = -1
    elif isinstance(buffering, bool) or not isinstance(buffering, int):
        raise TypeError(f"buffering must be an integer or None, not {type(buffering).__name__!r}")
    binary = mode.endswith("b")
    for name, value in text_args.items():
        if binary and value is not None:
            raise ValueError(f"binary mode doesn't take {name} argument")
    if buffering == 0 and not binary:
        raise ValueError("unbuffered streams must be binary")
    return buffering


def open_end(
    end: Any,
    mode: str,
    buffering: Optional[int],
    *,
    encoding: Optional[str],
    errors: Optional[str],
    newline: Optional[str],
) -> Any:
    """The file ``end.makefile(mode, buffering, ...)`` returns."""
    text_args = {"an encoding": encoding, "an errors": errors, "a newline": newline}
    buffering = _check(end, mode, buffering, text_args)
    binary = mode.endswith("b")
    line_buffering = not binary and buffering == 1
    buffer: Any
    if end.mode == "rb":
        # The reader is a binary file already, whose read1() hands on each
        # write as it comes: a buffer over it would only wait to fill up.
        buffer = end
    elif buffering == 0:
        return end
    else:
        # A file whose __init__ raises (a huge buffer) is never
        # initialised, and its finaliser leaves the end alone.
        size = FILE_BUFFER if buffering < 0 or line_buffering else buffering
        buffer = _BufferedPipeWriter(_RawWriter(end), size)
    if binary:
        return buffer
    try:
        return (_TextPipeReader if end.mode == "rb" else _TextPipeWriter)(
            buffer,
            encoding="utf-8" if encoding is None else encoding,
            errors=errors,
            newline=newline,
            line_buffering=line_buffering,
        )
    except BaseException:
        if buffer is not end:
            # The buffer is whole: detached, it neither closes the end nor
            # warns when collected. Nothing was written to it, so its
            # detach flushes nothing and never blocks.
            buffer.detach()
        raise
