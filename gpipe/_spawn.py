"""Run a writer API or a reader API concurrently, at the other end of a pipe.

:func:`spawn_producer` turns code that writes a file (:mod:`tarfile`,
:mod:`gzip`, :mod:`csv`, :mod:`json`) into a reader, such as a WSGI
response body; :func:`spawn_consumer` turns code that reads a file (a
hash, an upload to another service) into a writer, such as the sink of
a request body. The concurrent task is a greenlet on the gevent backend
and a daemon thread on the threading backend, picked by
:func:`gpipe.detect_backend` at each call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._backends import _original, get_backend
from ._core import Pipe
from ._errors import ClosedPipeError
from ._pipe import PipeReader, PipeWriter, _check_timeout, _peer_error

__all__ = ["ConsumerWriter", "spawn_consumer", "spawn_producer"]

T = TypeVar("T")


class _Task:
    """A call running in a greenlet or a daemon thread; its outcome is kept.

    The call (a runner of this module) catches what ``fn`` raises itself;
    only what it re-raises reaches gevent's or threading's error report.
    """

    __slots__ = ("_greenlet", "_thread", "error", "result")

    def __init__(self, backend: str, run: Callable[[_Task], None], name: str) -> None:
        self.result: Any = None
        self.error: tuple[BaseException, Any] | None = None
        self._greenlet: Any = None
        self._thread: threading.Thread | None = None
        if backend == "gevent":
            import gevent

            self._greenlet = gevent.spawn(run, self)
        else:
            # The unpatched Thread: a threading-backend task is an OS thread.
            thread_class = _original("threading", "Thread")
            self._thread = thread_class(target=run, args=(self,), name=name, daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None) -> bool:
        """Wait until the call ended; False if *timeout* seconds passed first."""
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            return bool(self._greenlet.dead)
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _name(prefix: str, fn: Callable[..., Any]) -> str:
    return f"{prefix}-{getattr(fn, '__qualname__', type(fn).__name__)}"


def _write_error(writer: PipeWriter) -> BaseException | None:
    """What a write on *writer* raises now; None if it would go ahead."""
    try:
        writer.write(b"")
    except BaseException as exc:  # noqa: BLE001 -- the very error a write raises
        return exc
    return None


def spawn_producer(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> PipeReader:
    """Run ``fn(writer, *args, **kwargs)`` concurrently; return the reader.

    *fn* writes to the :class:`~gpipe.PipeWriter` of a new pipe, in a
    greenlet on the gevent backend or in a daemon thread on the
    threading backend (the backend is :func:`gpipe.detect_backend`'s
    answer now). The caller reads what *fn* writes from the returned
    :class:`~gpipe.PipeReader`, for instance as a WSGI response body
    with :meth:`~gpipe.PipeReader.iter_chunks`.

    - When *fn* returns, the writer is closed: the reader sees EOF.
    - When *fn* raises an :exc:`Exception`, the writer is closed with
      it: reads raise that very exception, never a clean EOF (a
      :exc:`ConnectionError`, such as the :exc:`~gpipe.ClosedPipeError`
      of another pipe *fn* writes to, as a
      :exc:`~gpipe.WriterAbortedError` caused by it). A
      ``BaseException`` that is not an ``Exception`` (a
      :class:`gevent.GreenletExit` from a kill, :exc:`KeyboardInterrupt`)
      makes reads raise :exc:`~gpipe.WriterAbortedError` instead, with
      the original as its ``__cause__``, and ends the task as usual.
    - When the reader is closed early, *fn*'s next write raises
      :exc:`~gpipe.ClosedPipeError` (or the error given to the reader's
      ``close_with_error``); *fn* ends on it quietly, without an error
      report. The task never outlives *fn*.

    An error that can reach no reader (the reader was closed, or *fn*
    closed the writer itself) is reported as an unhandled error of the
    greenlet or thread.

    *fn* need not close the writer: returning closes it. It may close
    it itself, by leaving a ``with`` block of the writer or of a file
    from :meth:`~gpipe.PipeWriter.makefile`: leaving such a block by an
    exception hands that exception to the reader as well. A file from
    ``makefile()`` must be closed before *fn* returns (its ``with``
    block does that): one left open is collected when *fn* returns,
    which fails the pipe rather than lose what the file buffered.

    :param fn: called as ``fn(writer, *args, **kwargs)``; its return
        value is ignored.
    :return: the read end of the pipe; close it when done (which also
        stops *fn* at its next write).
    :raises TypeError: *fn* is not callable.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__!r}")
    core = Pipe(get_backend(None))
    reader, writer = PipeReader(core), PipeWriter(core)

    def run(task: _Task) -> None:
        try:
            fn(writer, *args, **kwargs)
        except BaseException as exc:
            closed_by_fn = writer.closed
            sent = writer._sent
            if closed_by_fn and sent is not None and (sent is exc or sent.__cause__ is exc):
                # fn's own with block gave the reader this error already.
                if isinstance(exc, Exception):
                    return
                raise
            now = _write_error(writer)
            if now is None:
                # Both ends are open: hand the error to the reader.
                writer.close_with_error(_peer_error(exc, "producer"))
                if isinstance(exc, Exception):
                    return
                raise
            writer.close()
            reader_gone = not closed_by_fn and (
                now is exc
                or (isinstance(exc, ClosedPipeError) and isinstance(now, ClosedPipeError))
            )
            if reader_gone:
                return  # the reader went away; fn stopped as it should
            raise  # no reader can see this error: report it
        else:
            writer.close()

    _Task(core.backend.name, run, _name("gpipe-producer", fn))
    return reader


class ConsumerWriter(PipeWriter, Generic[T]):
    """The write end returned by :func:`spawn_consumer`.

    A :class:`~gpipe.PipeWriter` whose reader is a concurrent task, with
    :meth:`join` to wait for the task's result. As a context manager,
    leaving the ``with`` block normally calls :meth:`join` (so its
    errors are raised there); leaving it by an exception closes the
    writer with that exception, does not wait, and lets the exception
    propagate unchanged.
    """

    __slots__ = ("_task",)

    def __init__(self, core: Pipe) -> None:
        super().__init__(core)
        self._task: _Task | None = None

    def join(self, timeout: float | None = None) -> T:
        """Close this writer if still open, wait for the consumer, return its result.

        The close is :meth:`~gpipe.PipeWriter.close`: called while an
        exception is being handled (in a ``finally`` block on the way
        out of an error), it closes the writer with that exception, so
        the consumer never takes a cut-off stream for a whole one.

        Can be called again: it returns the same result or raises the
        same error.

        :param timeout: seconds to wait at most; ``None`` waits forever.
        :return: what the consumer's *fn* returned.
        :raises TimeoutError: the consumer is still running after
            *timeout* seconds (it keeps running; the writer stays closed).
        :raises TypeError: *timeout* is not ``None`` or a real number.
        :raises ValueError: *timeout* is negative or NaN.
        :raises BaseException: the very exception the consumer raised.
        """
        seconds = _check_timeout(timeout)
        self.close()
        task = self._task
        assert task is not None
        if not task.wait(seconds):
            raise TimeoutError(f"the consumer is still running after {timeout} s")
        if task.error is not None:
            exc, tb = task.error
            raise exc.with_traceback(tb)
        result: T = task.result
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Join the consumer if the block ended normally, else close with *exc*.

        On a normal exit this closes the writer cleanly (even inside an
        ``except`` block that handles another error) and is
        :meth:`join`, whose errors are raised here.

        Leaving the block by an :exc:`Exception` makes the consumer's
        reads raise it (a :exc:`ConnectionError`: a
        :exc:`~gpipe.WriterAbortedError` caused by it); by any other
        exception (:exc:`KeyboardInterrupt`,
        :exc:`SystemExit`, a kill), a :exc:`~gpipe.WriterAbortedError`
        with it as ``__cause__``, so that it reaches the caller once, from the
        ``with`` block, and the consumer never raises it again. Then it
        does not wait for the consumer, and the exception goes on
        unchanged.
        """
        if exc is None:
            self.close_with_error(None)  # the block finished: EOF
            self.join()
        else:
            super().__exit__(exc_type, exc, tb)


def spawn_consumer(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ConsumerWriter[T]:
    """Run ``fn(reader, *args, **kwargs)`` concurrently; return the writer.

    *fn* reads from the :class:`~gpipe.PipeReader` of a new pipe, in a
    greenlet on the gevent backend or in a daemon thread on the
    threading backend (the backend is :func:`gpipe.detect_backend`'s
    answer now). The caller writes to the returned
    :class:`ConsumerWriter`, then calls :meth:`ConsumerWriter.join`
    (or leaves a ``with`` block) to get *fn*'s result.

    - When *fn* returns, the reader is closed, so writes after that
      raise :exc:`~gpipe.ClosedPipeError` (*fn* stopped reading early).
    - When *fn* raises an :exc:`Exception`, the reader is closed with
      it: writes raise that very exception, and so does :meth:`join`.
      A ``BaseException`` that is not an ``Exception`` makes writes raise
      :exc:`~gpipe.ClosedPipeError` with it as ``__cause__``.
    - :meth:`~gpipe.PipeWriter.close` stays non-blocking; the reader
      then sees EOF. :meth:`~gpipe.PipeWriter.close_with_error` makes
      its reads raise the error given.
    - Leaving the writer's ``with`` block by an exception closes the
      writer with it and does not wait (see
      :meth:`ConsumerWriter.__exit__`): *fn*'s reads raise it, or a
      :exc:`~gpipe.WriterAbortedError` caused by it for a
      :exc:`ConnectionError`, and for a :exc:`KeyboardInterrupt` or
      :exc:`SystemExit`, which reaches the caller once, from the
      ``with`` block.

    *fn*'s outcome is kept for :meth:`ConsumerWriter.join` and never
    reported otherwise.

    :param fn: called as ``fn(reader, *args, **kwargs)``.
    :return: the write end of the pipe.
    :raises TypeError: *fn* is not callable.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__!r}")
    core = Pipe(get_backend(None))
    reader = PipeReader(core)
    writer: ConsumerWriter[T] = ConsumerWriter(core)

    def run(task: _Task) -> None:
        try:
            task.result = fn(reader, *args, **kwargs)
        except BaseException as exc:
            task.error = (exc, exc.__traceback__)
            reader.close_with_error(_peer_error(exc, "consumer"))
            # (The writer's close error from the core: a reference to the
            # writer here would keep it alive, and a writer dropped
            # unclosed would leave this task waiting forever.)
            if isinstance(exc, Exception) or exc is core.close_error(False):
                # The writer's owner has this error already: raising a
                # KeyboardInterrupt it gave here would deliver it twice.
                return
            raise
        else:
            reader.close()

    writer._task = _Task(core.backend.name, run, _name("gpipe-consumer", fn))
    return writer
