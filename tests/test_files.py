"""The ends as Python files, on both backends.

A cut-off stream never ends with a clean EOF: not through a ``with``
block, a close while an exception propagates, an :mod:`io` wrapper,
a file from ``makefile()`` (its ``with`` block, its failed flush, its
finaliser after its greenlet or thread died), nor a ``StopIteration``.
And the file conventions: ``mode``, :exc:`io.UnsupportedOperation` in
the wrong direction, :exc:`ValueError` on a closed end, no copies.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import operator
import pickle
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent import monkey

import gpipe

from .conftest import WAIT, Harness, os_thread
from .test_spawn import Spawn, spawn  # noqa: F401 -- the fixture

UNDER_PATCHING = monkey.is_module_patched("threading")


class Interrupt(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


def reads_error(r: gpipe.PipeReader) -> BaseException:
    """What the next read on *r* raises; fails the test if it returns."""
    try:
        data = r.read()
    except BaseException as exc:
        return exc
    pytest.fail(f"read() returned {data!r} instead of raising")


def drain(r: gpipe.PipeReader) -> tuple[bytes, BaseException | None]:
    """Everything *r* yields, and the error that ended it (None at EOF)."""
    out = bytearray()
    while True:
        try:
            data = r.read1(65536)
        except BaseException as exc:
            return bytes(out), exc
        if not data:
            return bytes(out), None
        out += data


# -- the with rule ------------------------------------------------------------


def test_writer_with_block_left_by_exception(bk):
    r, w = bk.pipe()
    boom = OSError("disk on fire")

    def produce():
        with pytest.raises(OSError) as info:
            with w:
                w.write(b"half")
                raise boom
        return info.value

    task = bk.go(produce)
    assert drain(r) == (b"half", boom)
    assert task.get() is boom  # it went on unchanged
    assert w.closed


def test_writer_with_block_normal_exit_is_eof(bk):
    r, w = bk.pipe()

    def produce():
        with w:
            w.write(b"all of it")

    task = bk.go(produce)
    assert drain(r) == (b"all of it", None)
    task.get()


@pytest.mark.parametrize("kind", [Interrupt, KeyboardInterrupt, SystemExit, GeneratorExit])
def test_writer_with_block_left_by_base_exception(bk, kind):
    r, w = bk.pipe()
    with pytest.raises(kind):
        with w:
            raise kind()
    err = reads_error(r)
    assert type(err) is gpipe.WriterAbortedError
    assert not isinstance(err, ConnectionError)  # never a BrokenPipeError
    assert str(err) == f"the writer was interrupted by {kind.__name__}"
    assert isinstance(err.__cause__, kind)


def test_reader_with_block_left_by_exception_fails_blocked_writer(bk):
    r, w = bk.pipe()
    boom = LookupError("bad record")
    task = bk.go(w.write, b"waiting")
    bk.wait_blocked(w)
    with pytest.raises(LookupError):
        with r:
            raise boom
    with pytest.raises(LookupError, match="bad record") as info:
        task.get()
    assert info.value is boom
    assert info.value.consumed == 0


def test_reader_with_block_left_by_base_exception(bk):
    r, w = bk.pipe()
    with pytest.raises(Interrupt):
        with r:
            raise Interrupt()
    with pytest.raises(gpipe.ClosedPipeError, match="the reader was interrupted by Interrupt"):
        w.write(b"x")


@pytest.mark.parametrize("bk", ["gevent"], indirect=True)
def test_writer_with_block_of_killed_greenlet(bk):
    r, w = bk.pipe()

    def produce():
        with w:
            w.write(b"never read")

    g = gevent.spawn(produce)
    bk.wait_blocked(w)
    g.kill(block=True, timeout=WAIT)
    assert g.dead
    with pytest.raises(
        gpipe.WriterAbortedError, match="the writer was interrupted by GreenletExit"
    ) as info:
        r.read()
    assert isinstance(info.value.__cause__, gevent.GreenletExit)
    r.close()


def test_first_close_still_wins_in_with_block(bk):
    r, w = bk.pipe()
    first = LookupError("first")
    with pytest.raises(KeyError):
        with w:
            w.close_with_error(first)
            raise KeyError("second")
    assert reads_error(r) is first


# -- close() while an exception is being handled ----------------------------


def test_close_in_finally_during_error(bk):
    r, w = bk.pipe()
    boom = OSError("cut")

    def produce():
        try:
            w.write(b"part")
            raise boom
        finally:
            w.close()

    task = bk.go(produce)
    assert drain(r) == (b"part", boom)
    with pytest.raises(OSError, match="cut"):
        task.get()


def test_close_in_except_block_and_the_clean_close(bk):
    r, w = bk.pipe()
    try:
        raise KeyError("handled")
    except KeyError:
        w.close()  # the stream is taken as cut short
    assert isinstance(reads_error(r), KeyError)

    r, w = bk.pipe()
    try:
        raise KeyError("handled")
    except KeyError:
        w.close_with_error(None)  # a clean close on purpose
    assert r.read() == b""
    r.close()


@pytest.mark.parametrize("how", ["raw", "wb", "w"])
def test_with_block_inside_except_block_closes_cleanly(bk, how):
    """A with block that finished says the data is whole, whatever is being handled."""
    r, w = bk.pipe()

    def produce():
        try:
            raise KeyError("no such record")
        except KeyError:
            if how == "raw":
                with w:
                    w.write(b"fallback")
            else:
                with w.makefile(how) as f:
                    f.write("fallback" if how == "w" else b"fallback")

    task = bk.go(produce)
    assert drain(r) == (b"fallback", None)
    task.get()


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_close_inside_except_block_fails_the_pipe(bk, mode):
    """A bare close() there is taken as the way out of the error."""
    r, w = bk.pipe()
    f = w.makefile(mode)
    try:
        raise KeyError("no such record")
    except KeyError:
        f.close()
    assert isinstance(reads_error(r), KeyError)


def test_close_after_handled_error_is_eof(bk):
    r, w = bk.pipe()
    try:
        raise KeyError("over")
    except KeyError:
        pass
    w.close()
    assert r.read() == b""
    r.close()


def test_reader_close_during_error_is_plain(bk):
    # A reader's close can never pass for a complete stream: writers get
    # the usual ClosedPipeError, whatever the reader was handling.
    r, w = bk.pipe()
    try:
        raise OSError("client went away")
    except OSError:
        r.close()
    with pytest.raises(gpipe.ClosedPipeError, match="write to a pipe whose reader was closed"):
        w.write(b"x")
    w.close()


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda w: io.TextIOWrapper(w, encoding="utf-8"), id="TextIOWrapper"),
        pytest.param(lambda w: io.BufferedWriter(w), id="BufferedWriter"),
        pytest.param(lambda w: io.TextIOWrapper(io.BufferedWriter(w), encoding="utf-8"), id="both"),
    ],
)
def test_plain_io_wrapper_with_block_left_by_exception(bk, wrap):
    """The CSV producer that failed halfway, in its own io wrapper."""
    r, w = bk.pipe()
    boom = RuntimeError("database went away")

    def produce():
        with wrap(w) as f:
            f.write("row 1\n" if isinstance(f, io.TextIOBase) else b"row 1\n")
            raise boom

    task = bk.go(produce)
    # io's __exit__ flushes first: the row arrives, then the error, never EOF.
    assert drain(r) == (b"row 1\n", boom)
    with pytest.raises(RuntimeError):
        task.get()


# -- makefile() ---------------------------------------------------------------


@pytest.mark.parametrize(
    "end,mode,cls",
    [
        ("r", "rb", gpipe.PipeReader),
        ("r", "r", io.TextIOWrapper),
        ("w", "wb", io.BufferedWriter),
        ("w", "w", io.TextIOWrapper),
    ],
)
def test_makefile_modes(bk, end, mode, cls):
    r, w = bk.pipe()
    raw = r if end == "r" else w
    f = raw.makefile(mode)
    assert isinstance(f, cls)
    assert f.mode == mode
    assert f.readable() == (end == "r") and f.writable() == (end == "w")
    assert not f.seekable()
    assert repr(raw) in repr(f)
    f.close()
    assert raw.closed and f.closed


def test_makefile_defaults(bk):
    r, w = bk.pipe()
    rf, wf = r.makefile(), w.makefile()
    assert (rf.mode, wf.mode) == ("rb", "wb")
    # The reader is a binary file already: "rb" is the reader itself,
    # whatever the buffering.
    assert rf is r and wf.raw.end is w
    assert r.makefile("rb", 0) is r and w.makefile("wb", 0) is w
    assert r.makefile("rb", -1) is r and r.makefile("rb", 4096) is r
    wf.close()
    rf.close()

    r, w = bk.pipe()
    rt, wt = r.makefile("r"), w.makefile("w", 1)
    assert rt.encoding == wt.encoding == "utf-8"
    assert rt.buffer is r and wt.buffer.raw.end is w
    assert not rt.line_buffering and wt.line_buffering
    task = bk.go(rt.readline)
    wt.write("Grüße\n")  # line buffering: no flush needed
    assert task.get() == "Grüße\n"
    wt.close()
    rt.close()


@pytest.mark.parametrize(
    "end,args,kwargs,error,match",
    [
        ("r", ("w",), {}, ValueError, r"invalid mode 'w' for a PipeReader \(use 'r' or 'rb'\)"),
        ("r", ("rw",), {}, ValueError, "invalid mode 'rw'"),
        ("w", ("r",), {}, ValueError, r"invalid mode 'r' for a PipeWriter \(use 'w' or 'wb'\)"),
        ("w", ("wb+",), {}, ValueError, "invalid mode"),
        ("r", ("rb",), {"encoding": "utf-8"}, ValueError, "binary mode doesn't take an encoding"),
        ("w", ("wb",), {"newline": ""}, ValueError, "binary mode doesn't take a newline"),
        ("w", ("wb",), {"errors": "strict"}, ValueError, "binary mode doesn't take an errors"),
        ("r", ("r", 0), {}, ValueError, "unbuffered streams must be binary"),
        ("w", ("wb", 1.5), {}, TypeError, "buffering must be an integer or None, not 'float'"),
        ("w", ("wb", True), {}, TypeError, "buffering must be an integer or None, not 'bool'"),
    ],
)
def test_makefile_bad_arguments(bk, end, args, kwargs, error, match):
    r, w = bk.pipe()
    with pytest.raises(error, match=match):
        (r if end == "r" else w).makefile(*args, **kwargs)
    assert not r.closed and not w.closed


def test_makefile_on_closed_end(bk):
    r, w = bk.pipe()
    r.close()
    w.close()
    # As for any closed file: a plain ValueError on the reader's side.
    with pytest.raises(ValueError, match="I/O operation on a closed PipeReader") as info:
        r.makefile("rb")
    assert type(info.value) is ValueError
    with pytest.raises(gpipe.ClosedPipeError, match="I/O operation on a closed PipeWriter"):
        w.makefile("w")


def test_makefile_text_round_trip(bk):
    r, w = bk.pipe()
    lines = [f"Grüße {i}\n" for i in range(2000)]

    def produce():
        with w.makefile("w") as f:
            f.writelines(lines)

    task = bk.go(produce)
    with r.makefile("r") as f:
        assert list(f) == lines
    task.get()
    assert r.closed


def test_makefile_full_reads(bk):
    """A buffered file's read(n) returns n bytes, where the raw reader's does not."""
    r, w = bk.pipe()
    task = bk.go(lambda: (w.writelines([b"ab", b"cd", b"ef", b"g"]), w.close()))
    f = r.makefile("rb")
    assert f.read(5) == b"abcde"
    assert f.read(5) == b"fg"
    assert f.read(5) == b""
    f.close()
    task.get()


def test_makefile_clean_close_flushes(bk):
    r, w = bk.pipe()

    def produce():
        f = w.makefile("wb")
        f.write(b"buffered")
        f.close()

    task = bk.go(produce)
    assert drain(r) == (b"buffered", None)
    task.get()


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_with_block_left_by_exception_does_not_flush(bk, mode):
    r, w = bk.pipe()
    boom = OSError("halfway")
    with pytest.raises(OSError):
        with w.makefile(mode) as f:
            f.write("unflushed" if mode == "w" else b"unflushed")
            raise boom
    assert w.closed
    # Nothing blocked on the way out: the buffer was dropped, not flushed.
    assert drain(r) == (b"", boom)


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_close_during_error(bk, mode):
    r, w = bk.pipe()
    f = w.makefile(mode)
    boom = OSError("halfway")
    try:
        raise boom
    except OSError:
        f.close()
    assert f.closed and w.closed
    assert reads_error(r) is boom


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_failed_flush_fails_the_pipe(bk, mode):
    """io's close would close the writer cleanly after a failed flush."""
    r, w = bk.pipe()
    w.settimeout(0)  # no reader is waiting: the flush times out at once
    f = w.makefile(mode)
    f.write("lost" if mode == "w" else b"lost")
    with pytest.raises(TimeoutError, match="write timed out") as info:
        f.close()
    assert w.closed
    assert reads_error(r) is info.value


def test_makefile_interrupted_flush_repeats_nothing(bk):
    """A flush cut off after a reader took part of the buffer: io's file
    would keep the whole buffer and send that part again at its close."""
    r, w = bk.pipe()
    f = w.makefile("wb")
    f.write(b"0123456789")
    taker = bk.go(r.read, 3)
    bk.wait_blocked(r)
    w.settimeout(0.05)  # the rest of the flush waits for a reader that never comes
    with pytest.raises(TimeoutError) as info:
        f.flush()
    assert info.value.consumed == 3
    assert taker.get() == b"012"
    # The stream ends there: readers get the error, not a repeat or an EOF.
    assert w.closed and f.closed
    assert reads_error(r) is info.value
    with pytest.raises(ValueError, match="closed file"):
        f.write(b"more")
    f.close()


def test_makefile_text_write_cut_off_drops_nothing_silently(bk):
    """A text file whose flush to the pipe fails drops the bytes it was
    passing on: the stream must not go on (and end cleanly) without them."""
    r, w = bk.pipe()
    w.settimeout(0)  # no reader: every write to the pipe times out at once
    f = w.makefile("w", buffering=16)
    with pytest.raises(TimeoutError) as info:
        f.write("x" * 10_000)  # more than the text layer keeps: written through
    assert w.closed and f.closed
    with pytest.raises(ValueError, match="closed file"):
        f.write("the rest\n")
    f.close()
    assert reads_error(r) is info.value


def test_makefile_text_reader_never_reads_past_a_hole(bk):
    """io's text layer drops the part of a line it had taken from the pipe
    when a read under it fails: the stream ends there, for every reader."""
    r, w = bk.pipe()
    task = bk.go(w.write, b"hello ")
    f = r.makefile("r")
    r.settimeout(0.2)
    with pytest.raises(TimeoutError):
        f.readline()  # took "hello ", then timed out waiting for the rest
    task.get()
    assert r.closed and f.closed
    for read in (f.readline, f.read, lambda: next(f), r.read):
        with pytest.raises(ValueError, match="closed"):
            read()
    with pytest.raises(gpipe.ClosedPipeError):
        w.write(b"world\n")  # the reader went away


@pytest.mark.parametrize("how", ["readline", "read", "next", "readlines"])
def test_makefile_text_reader_decode_error_ends_the_stream(bk, how):
    r, w = bk.pipe()

    def produce():
        with contextlib.suppress(gpipe.ClosedPipeError):  # (the reader may be gone)
            with w:
                w.writelines([b"A\n", b"bad\xff", b"tail\nB\n"])

    task = bk.go(produce)
    f = r.makefile("r")
    assert f.readline() == "A\n"
    with pytest.raises(UnicodeDecodeError):
        if how == "next":
            next(f)
        elif how == "readlines":
            f.readlines()
        else:
            getattr(f, how)()
    assert r.closed  # no later read returns "tail" as if it were a line
    with pytest.raises(ValueError, match="closed"):
        f.readline()
    task.get()


def test_makefile_text_reader_bad_argument_leaves_it_open(bk):
    r, w = bk.pipe()
    f = r.makefile("r")
    for read in (f.read, f.readline):
        with pytest.raises(TypeError):
            read("3")
    assert not r.closed
    f.close()


def test_plain_buffered_writer_failed_flush_is_eof(bk):
    """What makefile() is for: io.BufferedWriter closes cleanly after a failed flush."""
    r, w = bk.pipe()
    w.settimeout(0)
    f = io.BufferedWriter(w)
    f.write(b"lost")
    with pytest.raises(TimeoutError):
        f.close()
    assert r.read() == b""  # the truncation makefile() prevents
    r.close()


@pytest.mark.parametrize("mode", ["r", "rb"])
def test_makefile_reader_with_block_left_by_exception(bk, mode):
    r, w = bk.pipe()
    boom = ValueError("bad header")
    task = bk.go(w.write, b"data")
    bk.wait_blocked(w)
    with pytest.raises(ValueError):
        with r.makefile(mode):
            raise boom
    with pytest.raises(ValueError, match="bad header") as info:
        task.get()
    assert info.value is boom


@pytest.mark.parametrize("mode", ["r", "rb"])
def test_makefile_reader_close_during_error_is_plain(bk, mode):
    r, w = bk.pipe()
    f = r.makefile(mode)
    try:
        raise OSError("client went away")
    except OSError:
        f.close()
    assert r.closed
    with pytest.raises(gpipe.ClosedPipeError, match="write to a pipe whose reader was closed"):
        w.write(b"x")
    w.close()


def collected(fn: Callable[[], Any]) -> list[str]:
    """Call fn, collect garbage; the ResourceWarnings emitted meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        fn()
        gc.collect()
    return [str(c.message) for c in caught if c.category is ResourceWarning]


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_writer_collected_unclosed(bk, mode):
    r, w = bk.pipe()

    def drop():
        f = w.makefile(mode)
        f.write("never flushed" if mode == "w" else b"never flushed")

    messages = collected(drop)
    assert len(messages) == 1 and messages[0].startswith(f"unclosed <gpipe file mode='{mode}'")
    assert w.closed
    with pytest.raises(
        gpipe.WriterAbortedError, match="the writer was garbage-collected without being closed"
    ):
        r.read()
    r.close()


def test_makefile_reader_collected_unclosed(bk):
    r, w = bk.pipe()
    messages = collected(lambda: r.makefile("r"))
    assert len(messages) == 1 and messages[0].startswith("unclosed <gpipe file mode='r'")
    with pytest.raises(gpipe.ClosedPipeError, match="read end collected without close"):
        w.write(b"x")
    w.close()


def test_makefile_rb_dropped_leaves_the_reader_open(bk):
    """makefile("rb") is the reader itself: dropping it drops no file."""
    r, w = bk.pipe()
    assert collected(lambda: r.makefile("rb")) == []
    assert not r.closed
    task = bk.go(w.write, b"x")
    assert r.read1(1) == b"x"
    assert task.get() == 1


def die(bk: Harness, fn: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Run fn in a greenlet or thread of bk that dies by fn's exception;
    drop every reference to it; return the errors reported."""
    reports: list[Any] = []
    if bk.name == "gevent":
        monkeypatch.setattr(gevent.get_hub(), "handle_error", lambda c, t, v, tb: reports.append(t))
        g = gevent.spawn(fn)
        g.join(WAIT)
        assert g.dead
        reports.append(type(g.exception))
        del g
        # Let the hub run the greenlet's pending link callbacks, which still
        # hold it (in gevent's pure-Python mode its frames then form a
        # cycle with its exception, for the collection below).
        gevent.idle()
    else:
        monkeypatch.setattr(threading, "excepthook", lambda args: reports.append(args.exc_type))
        t = os_thread(fn)
        t.join(WAIT)
        assert not t.is_alive()
        if getattr(t, "error", None) is not None:  # the native thread of a patched run
            reports.append(type(t.error))
        del t
    gc.collect()
    return reports


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_makefile_writer_of_dead_task_fails_the_pipe(bk, mode, monkeypatch):
    """The producer wrote through a file, no with block, and died."""
    r, w = bk.pipe()
    reader_saw: list[Any] = []
    consumer = bk.go(lambda: reader_saw.append(drain(r)))

    def produce():
        f = w.makefile(mode)
        for _ in range(100):
            f.write("x" * 1000 if mode == "w" else b"x" * 1000)
        raise OSError("the producer died")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        reports = die(bk, produce, monkeypatch)
        consumer.get()
        gc.collect()
    assert OSError in reports
    assert [str(c.message)[:25] for c in caught] == ["unclosed <gpipe file mode"]
    data, err = reader_saw[0]
    assert type(err) is gpipe.WriterAbortedError, (len(data), err)
    assert str(err) == "the writer was garbage-collected without being closed"
    assert len(data) < 100_000  # the buffered tail was never sent
    r.close()


# A recipe for a copy, which copyreg would give from object.__reduce__.
REDUCE = operator.methodcaller("__reduce__")


def test_makefile_files_refuse_copy_and_pickle(bk):
    for mode in ("rb", "r", "wb", "w"):
        r, w = bk.pipe()
        f = (r if "r" in mode else w).makefile(mode)
        for action in (copy.copy, copy.deepcopy, pickle.dumps, REDUCE):
            with pytest.raises(TypeError, match="cannot be copied or pickled"):
                action(f)
        f.close()
        r.close()
        w.close()


# -- StopIteration is not the end ---------------------------------------------


def stop_closed(bk: Harness, stop: BaseException) -> Iterator[gpipe.PipeReader]:
    """Readers whose writer wrote b"a\\nb" and was closed with *stop*."""
    while True:
        r, w = bk.pipe()
        task = bk.go(lambda w=w: (w.write(b"a\nb"), w.close_with_error(stop)))
        yield r
        task.get()
        r.close()


@pytest.mark.parametrize("kind", [StopIteration, StopAsyncIteration])
def test_stop_iteration_close_error(bk, kind):
    stop = kind("producer ran dry")
    readers = stop_closed(bk, stop)
    pattern = f"the pipe's writer was closed with {kind.__name__}"

    r = next(readers)
    assert r.read1(10) == b"a\nb"
    with pytest.raises(kind) as info:  # reads raise it as any close error
        r.read1(10)
    assert info.value is stop

    r = next(readers)
    with pytest.raises(RuntimeError, match=pattern) as info:
        list(r.iter_chunks())
    assert info.value.__cause__ is stop

    for consume in (list, lambda r: r.readlines(), lambda r: r.readlines(100)):
        r = next(readers)
        with pytest.raises(RuntimeError, match=pattern) as info:
            consume(r)
        assert info.value.__cause__ is stop

    for mode in ("rb", "r"):
        r = next(readers)
        with pytest.raises(RuntimeError, match=pattern) as info:
            list(r.makefile(mode))
        assert info.value.__cause__ is stop
        r = next(readers)
        with pytest.raises(RuntimeError, match=pattern):
            r.makefile(mode).readlines()
    readers.close()


def test_stop_iteration_leaving_with_block(bk):
    r, w = bk.pipe()

    def produce():
        with w:
            w.write(b"first\n")
            next(iter([]))  # an exhausted iterator: StopIteration

    task = bk.go(produce)
    with pytest.raises(RuntimeError, match="closed with StopIteration") as info:
        list(r)
    assert isinstance(info.value.__cause__, StopIteration)
    with pytest.raises(StopIteration):
        task.get()
    r.close()


def test_stop_iteration_from_spawned_producer(spawn):  # noqa: F811
    if spawn.name == "threading" and UNDER_PATCHING:
        pytest.xfail("under patching a threading-backend task is a greenlet (see conftest)")

    def fn(writer):
        writer.write(b"the first part\n")
        next(iter([]))

    r = gpipe.spawn_producer(fn)
    with pytest.raises(RuntimeError, match="closed with StopIteration"):
        list(r.iter_chunks())
    r.close()
    r = gpipe.spawn_producer(fn)
    with pytest.raises(RuntimeError, match="closed with StopIteration"):
        list(r)
    r.close()
    r = gpipe.spawn_producer(fn)
    assert r.read1(100) == b"the first part\n"
    with pytest.raises(StopIteration):
        r.read1(100)
    r.close()
    spawn.ended()
    assert spawn.reports == []


# -- spawn helpers and the with rule ------------------------------------------


@pytest.mark.parametrize("wrap", ["raw", "w", "wb"])
def test_producer_with_block_hands_error_to_reader(spawn, wrap):  # noqa: F811
    if spawn.name == "threading" and UNDER_PATCHING:
        pytest.xfail("under patching a threading-backend task is a greenlet (see conftest)")
    boom = OSError("source went away")

    def fn(writer):
        if wrap == "raw":
            with writer:
                writer.write(b"row 1\n")
                raise boom
        with writer.makefile(wrap) as f:
            f.write("row 1\n" if wrap == "w" else b"row 1\n")
            f.flush()
            raise boom

    r = gpipe.spawn_producer(fn)
    assert drain(r) == (b"row 1\n", boom)
    r.close()
    spawn.ended()
    assert spawn.reports == []  # the reader got it: nothing to report


def test_producer_makefile_closed_at_return_is_eof(spawn):  # noqa: F811
    if spawn.name == "threading" and UNDER_PATCHING:
        pytest.xfail("under patching a threading-backend task is a greenlet (see conftest)")

    def fn(writer):
        with writer.makefile("w") as f:
            f.write("a,b\n" * 1000)

    r = gpipe.spawn_producer(fn)
    assert drain(r) == (b"a,b\n" * 1000, None)
    r.close()
    spawn.ended()
    assert spawn.reports == []


def test_producer_makefile_left_open_fails_the_pipe(spawn):  # noqa: F811
    if spawn.name == "threading" and UNDER_PATCHING:
        pytest.xfail("under patching a threading-backend task is a greenlet (see conftest)")

    def fn(writer):
        f = writer.makefile("w")
        f.write("never flushed")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        r = gpipe.spawn_producer(fn)
        with pytest.raises(
            gpipe.WriterAbortedError, match="the writer was garbage-collected without being closed"
        ):
            r.read()
    r.close()
    spawn.ended()


def test_consumer_with_block_inside_except_block_joins(spawn):  # noqa: F811
    if spawn.name == "threading" and UNDER_PATCHING:
        pytest.xfail("under patching a threading-backend task is a greenlet (see conftest)")
    try:
        raise LookupError("handled by the program")
    except LookupError:
        with gpipe.spawn_consumer(lambda r: r.read()) as w:
            w.write(b"an error page")
    assert w.join() == b"an error page"
    spawn.ended()
    assert spawn.reports == []


CONSUMER_INTERRUPTED = """
import sys
backend = sys.argv[1]
kind = {"KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit}[sys.argv[2]]
if backend == "gevent":
    import gevent
import gpipe

def consume(reader):
    return reader.read()

delivered = 0
try:
    with gpipe.spawn_consumer(consume) as writer:
        writer.write(b"some")
        raise kind()
except kind:
    delivered += 1
assert writer.backend == backend, writer.backend
try:
    writer.join(10)
except gpipe.WriterAbortedError as exc:
    print("consumer got:", exc, "- cause:", type(exc.__cause__).__name__)
except kind:
    delivered += 1
# Give a second delivery every chance to arrive.
try:
    if backend == "gevent":
        gevent.sleep(0.05)
        gevent.sleep(0.05)
    else:
        import time
        time.sleep(0.1)
except kind:
    delivered += 1
print("delivered:", delivered)
"""


@pytest.mark.parametrize("backend", ["gevent", "threading"])
@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit"])
def test_consumer_with_block_left_by_base_exception_delivers_once(backend, kind):
    """In a process of its own: a second KeyboardInterrupt would end a test run."""
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", CONSUMER_INTERRUPTED, backend, kind],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"consumer got: the writer was interrupted by {kind} - cause: {kind}",
        "delivered: 1",
    ]
    assert result.stderr == ""  # nothing reported by gevent or threading either


# -- file conventions -----------------------------------------------------------


def test_mode(bk):
    r, w = bk.pipe()
    assert (r.mode, w.mode) == ("rb", "wb")
    r.close()
    w.close()
    assert (r.mode, w.mode) == ("rb", "wb")


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda w: w.read(1), "read"),
        (lambda w: w.read(), "read"),
        (lambda w: w.readinto(bytearray(4)), "readinto"),
        (lambda w: w.readall(), "readall"),
        (lambda w: w.readline(), "read"),
        (lambda w: w.readlines(), "read"),
        (lambda w: next(iter(w)), "read"),
    ],
)
def test_writer_cannot_read(bk, call, name):
    r, w = bk.pipe()
    with pytest.raises(
        io.UnsupportedOperation, match=rf"^{name}\(\) on a PipeWriter: it is the write end"
    ):
        call(w)
    assert not w.closed
    r.close()
    w.close()


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda r: r.write(b"x"), "write"),
        (lambda r: r.writelines([b"x"]), "writelines"),
        (lambda r: r.writelines([]), "writelines"),
    ],
)
def test_reader_cannot_write(bk, call, name):
    r, w = bk.pipe()
    with pytest.raises(
        io.UnsupportedOperation, match=rf"^{name}\(\) on a PipeReader: it is the read end"
    ):
        call(r)
    r.close()
    w.close()


def test_capabilities_open_and_closed(bk):
    r, w = bk.pipe()
    assert (r.readable(), r.writable(), r.seekable()) == (True, False, False)
    assert (w.readable(), w.writable(), w.seekable()) == (False, True, False)
    r.close()
    w.close()
    for end, name in ((r, "PipeReader"), (w, "PipeWriter")):
        for method in (end.readable, end.writable, end.seekable):
            with pytest.raises(ValueError, match=f"I/O operation on a closed {name}"):
                method()


def test_ends_refuse_copy_and_pickle(bk):
    r, w = bk.pipe()
    for end, name in ((r, "PipeReader"), (w, "PipeWriter")):
        for action in (copy.copy, copy.deepcopy, pickle.dumps, REDUCE):
            with pytest.raises(
                TypeError, match=f"a {name} cannot be copied or pickled: it is one end of a pipe"
            ):
                action(end)
        assert not end.closed
    chunks = r.iter_chunks()
    for action in (copy.copy, copy.deepcopy, pickle.dumps, REDUCE):
        with pytest.raises(TypeError, match="a ChunkIterator cannot be copied or pickled"):
            action(chunks)
    r.close()
    w.close()


def test_iterating_over_a_closed_reader_raises(bk):
    """Not an empty stream: a closed reader's iterators refuse to start."""
    r, w = bk.pipe()
    r.close()
    for start in (iter, lambda end: end.iter_chunks()):
        with pytest.raises(ValueError, match="closed"):
            start(r)
