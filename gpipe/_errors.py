"""The exceptions gpipe raises, and who raises which.

* :exc:`ClosedPipeError`: a write to a pipe whose reader was closed (or
  collected), and a write to a writer its owner closed. "The reader went
  away": a :exc:`BrokenPipeError`, as an OS pipe's.
* :exc:`WriterAbortedError`: a read from a pipe whose writer broke off
  without a clean close and without an error of its own to pass on: a
  kill, a :class:`gevent.Timeout`, a :exc:`KeyboardInterrupt` left its
  ``with`` block, or it was collected unclosed; or whose error is a
  :exc:`ConnectionError`, which readers must not raise. Deliberately neither a
  :exc:`BrokenPipeError` nor a :exc:`ConnectionError`: HTTP clients take
  those, raised while they send a body, for a server that closed the
  connection early, and would send a cut-off body as if it were whole.
* Reading a reader you closed yourself raises :exc:`ValueError`, as
  reading a closed file does.
"""

__all__ = ["ClosedPipeError", "WriterAbortedError"]


class ClosedPipeError(BrokenPipeError, ValueError):
    """A write to a pipe whose reader is gone, or to a closed writer.

    Raised by writes after the reader was closed (cleanly, or by an
    exception other than an :exc:`Exception` leaving its ``with`` block,
    which is then the ``__cause__``) or garbage-collected unclosed, and
    by writes to a :class:`~gpipe.PipeWriter` its owner closed.

    It derives from :exc:`BrokenPipeError`, like a write to an OS pipe
    whose reader is gone, and from :exc:`ValueError`, which the
    :mod:`io` classes raise for I/O on a closed file, so either
    ``except`` clause catches it. This is Go's ``io.ErrClosedPipe``.
    Reads never raise it.
    """


class WriterAbortedError(OSError):
    """A read from a pipe whose writer broke off: the stream is cut short.

    Raised by reads once the bytes written before are read, when the
    writer was closed by an exception that is not an :exc:`Exception`
    (:exc:`KeyboardInterrupt`, :exc:`SystemExit`, a kill or a
    :class:`gevent.Timeout` leaving its ``with`` block, or a bare
    ``close()`` while one was being handled), which is then its
    ``__cause__``; or when the writer was garbage-collected without
    being closed (no ``__cause__``). Such an exception is meant for the
    code it interrupted: raising it again in the reader would deliver it
    twice. Also when the writer was closed with a :exc:`ConnectionError`
    (a :exc:`BrokenPipeError`, such as a :exc:`ClosedPipeError` of
    another pipe the producer wrote to), which is then its
    ``__cause__``: see below.

    An :exc:`OSError`, and neither a :exc:`BrokenPipeError` nor a
    :exc:`ConnectionError`: an HTTP client sending the reader as a
    request body must fail the request, not take the error for a server
    that closed the connection early.

    .. versionadded:: 0.2.0
    """


# Shown as gpipe.X in tracebacks: where users import them from.
ClosedPipeError.__module__ = "gpipe"
WriterAbortedError.__module__ = "gpipe"
