"""The exception gpipe raises for operations on a closed pipe."""

__all__ = ["ClosedPipeError"]


class ClosedPipeError(BrokenPipeError, ValueError):
    """An operation on a pipe whose end was closed.

    Raised by a read or write when the end it uses was closed by its
    own owner (reading a closed :class:`~gpipe.PipeReader`, writing a
    closed :class:`~gpipe.PipeWriter`), by a write after the reader
    closed the pipe without an error, and by a read after the writer
    was garbage-collected without being closed.

    It derives from :exc:`BrokenPipeError`, like a write to an OS pipe
    whose reader is gone, and from :exc:`ValueError`, which the
    :mod:`io` classes raise for I/O on a closed file, so either
    ``except`` clause catches it. This is Go's ``io.ErrClosedPipe``.

    Writes raise it too after the reader was garbage-collected without
    being closed.
    """


# Shown as gpipe.ClosedPipeError in tracebacks: where users import it from.
ClosedPipeError.__module__ = "gpipe"
