"""spawn_producer, spawn_consumer and iter_chunks, on both backends.

The helpers pick their backend with :func:`gpipe.detect_backend`; the
``spawn`` fixture makes it answer the backend under test, as a program
that does (or does not) use gevent would see it. A plain threaded
program that never imports gevent is covered by a subprocess test at
the end.
"""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
import threading
from typing import Any

import gevent
import gevent.event
import pytest
from zope.interface.verify import verifyClass, verifyObject

import gpipe
from gpipe import _backends, _spawn
from gpipe.interfaces import IPipeReader, IPipeWriter

from .conftest import WAIT, Harness


class Spawn:
    """The backend under test, the tasks the helpers started, their error reports."""

    def __init__(self, bk: Harness) -> None:
        self.bk = bk
        self.name = bk.name
        self.tasks: list[Any] = []
        self.reports: list[BaseException] = []

    def event(self) -> Any:
        return gevent.event.Event() if self.name == "gevent" else threading.Event()

    def ended(self) -> None:
        """Wait until every task the helpers started has ended."""
        for task in self.tasks:
            assert task.wait(WAIT), "a spawned task outlived its pipe"

    def writer_blocked(self, reader: gpipe.PipeReader) -> None:
        self.bk.wait_for(lambda: reader._pipe.waiting(False) >= 1, "the producer blocks")


@pytest.fixture
def spawn(bk: Harness, monkeypatch: pytest.MonkeyPatch) -> Spawn:
    state = Spawn(bk)
    # Where get_backend() looks it up: in the compiled build, the
    # namespace of the compiled module, which gpipe._backends copied.
    monkeypatch.setitem(_backends.get_backend.__globals__, "detect_backend", lambda: bk.name)

    class RecordedTask(_spawn._Task):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            state.tasks.append(self)

    monkeypatch.setattr(_spawn, "_Task", RecordedTask)
    # What gevent and threading do with an error a task did not handle.
    monkeypatch.setattr(
        gevent.get_hub(), "handle_error", lambda ctx, t, v, tb: state.reports.append(v)
    )
    monkeypatch.setattr(threading, "excepthook", lambda args: state.reports.append(args.exc_value))
    return state


def produce(writer: gpipe.PipeWriter, *chunks: bytes, then: Any = None) -> None:
    for chunk in chunks:
        writer.write(chunk)
    if then is not None:
        then()


# -- spawn_producer -----------------------------------------------------------


def test_producer_eof_when_fn_returns(spawn):
    r = spawn_producer_checked(spawn, produce, b"ab", b"cde", then=lambda: None)
    assert r.read() == b"abcde"
    assert r.read() == b""
    r.close()
    spawn.ended()
    assert spawn.reports == []


def spawn_producer_checked(spawn: Spawn, fn: Any, /, *args: Any, **kwargs: Any) -> gpipe.PipeReader:
    r = gpipe.spawn_producer(fn, *args, **kwargs)
    assert isinstance(r, gpipe.PipeReader)
    assert r.backend == spawn.name
    return r


def test_producer_error_reaches_reader(spawn):
    boom = ValueError("boom")

    def fail():
        raise boom

    r = spawn_producer_checked(spawn, produce, b"head", then=fail)
    assert r.read1(100) == b"head"
    with pytest.raises(ValueError, match="boom") as info:
        r.read1(100)
    assert info.value is boom
    r.close()
    spawn.ended()
    assert spawn.reports == []  # delivered to the reader, not reported


def test_producer_connection_error_reaches_reader_as_writer_aborted(spawn):
    """A producer that fails writing elsewhere (another pipe whose reader
    went away, say) must not hand readers a BrokenPipeError: an HTTP
    client sending the reader would take it for a server that left."""
    other_r, other_w = gpipe.pipe(backend=spawn.name)
    other_r.close()

    def tee(writer):
        writer.write(b"chunk")
        other_w.write(b"chunk")  # raises ClosedPipeError, a BrokenPipeError

    r = spawn_producer_checked(spawn, tee)
    assert r.read1(100) == b"chunk"
    with pytest.raises(gpipe.WriterAbortedError, match="closed with ClosedPipeError") as info:
        r.read1(100)
    assert not isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, gpipe.ClosedPipeError)
    r.close()
    spawn.ended()
    assert spawn.reports == []  # delivered to the reader, not reported


def test_producer_stops_quietly_when_reader_closes(spawn):
    seen = []

    def endless(writer):
        try:
            while True:
                writer.write(b"x" * 1000)
        except BaseException as exc:
            seen.append(exc)
            raise

    r = spawn_producer_checked(spawn, endless)
    assert r.read1(10) == b"x" * 10
    spawn.writer_blocked(r)
    r.close()
    spawn.ended()
    assert len(seen) == 1 and isinstance(seen[0], gpipe.ClosedPipeError)
    assert spawn.reports == []


def test_producer_stops_quietly_on_reader_error(spawn):
    stop = KeyError("stop")
    seen = []

    def endless(writer):
        try:
            while True:
                writer.write(b"y")
        except BaseException as exc:
            seen.append(exc)
            raise

    r = spawn_producer_checked(spawn, endless)
    spawn.writer_blocked(r)
    r.close_with_error(stop)
    spawn.ended()
    assert seen == [stop]
    assert spawn.reports == []


def test_producer_stops_when_reader_collected(spawn):
    done = spawn.event()

    def endless(writer):
        try:
            while True:
                writer.write(b"z")
        finally:
            done.set()

    r = spawn_producer_checked(spawn, endless)
    spawn.writer_blocked(r)
    with pytest.warns(ResourceWarning, match="unclosed"):
        del r  # the last reference: collected at once
    assert done.wait(WAIT)
    spawn.ended()
    assert spawn.reports == []


def test_producer_undeliverable_error_is_reported(spawn):
    late = RuntimeError("after the reader left")
    closed = spawn.event()

    def fn(writer):
        assert closed.wait(WAIT)
        raise late

    r = spawn_producer_checked(spawn, fn)
    r.close()
    closed.set()
    spawn.ended()
    assert spawn.reports == [late]


def test_producer_closing_its_own_writer_is_reported(spawn):
    def fn(writer):
        writer.close()
        writer.write(b"late")

    r = spawn_producer_checked(spawn, fn)
    assert r.read() == b""
    spawn.ended()
    assert len(spawn.reports) == 1
    assert isinstance(spawn.reports[0], gpipe.ClosedPipeError)
    r.close()


@pytest.mark.parametrize("bk", ["gevent"], indirect=True)
def test_producer_killed_is_never_a_clean_eof(spawn):
    greenlets = []

    def fn(writer):
        greenlets.append(gevent.getcurrent())
        writer.write(b"never read")

    r = spawn_producer_checked(spawn, fn)
    spawn.writer_blocked(r)
    greenlets[0].kill(block=True, timeout=WAIT)
    with pytest.raises(
        gpipe.WriterAbortedError, match="the producer was interrupted by GreenletExit"
    ) as info:
        r.read()
    assert not isinstance(info.value, ConnectionError)  # never a BrokenPipeError
    assert isinstance(info.value.__cause__, gevent.GreenletExit)
    r.close()
    spawn.ended()
    assert spawn.reports == []


def test_producer_passes_args_and_kwargs(spawn):
    def fn(writer, a, *, fn, b=0):
        writer.write(repr((a, fn, b)).encode())

    r = spawn_producer_checked(spawn, fn, 1, fn="f", b=2)
    assert r.read() == b"(1, 'f', 2)"
    r.close()
    spawn.ended()


@pytest.mark.parametrize("spawner", [gpipe.spawn_producer, gpipe.spawn_consumer])
def test_spawn_needs_a_callable(spawn, spawner):
    with pytest.raises(TypeError, match="fn must be callable, not 'int'"):
        spawner(42)
    assert spawn.tasks == []


# -- iter_chunks --------------------------------------------------------------


def test_iter_chunks_until_eof_then_closes_reader(spawn):
    r = spawn_producer_checked(spawn, produce, b"a" * 10, b"b" * 3, b"", b"c")
    chunks = r.iter_chunks(4)
    assert iter(chunks) is chunks
    assert list(chunks) == [b"aaaa", b"aaaa", b"aa", b"bbb", b"c"]
    assert r.closed
    assert list(chunks) == []
    spawn.ended()


def test_iter_chunks_close_stops_the_producer(spawn):
    wrote = []

    def endless(writer):
        while True:
            wrote.append(writer.write(b"w" * 100))

    r = spawn_producer_checked(spawn, endless)
    chunks = r.iter_chunks()
    assert next(chunks) == b"w" * 100
    chunks.close()
    chunks.close()  # a second close does nothing
    assert r.closed
    with pytest.raises(StopIteration):
        next(chunks)
    spawn.ended()
    assert spawn.reports == []


def test_iter_chunks_raises_the_writer_error(spawn):
    def fail():
        raise OSError("disk on fire")

    r = spawn_producer_checked(spawn, produce, b"ok", then=fail)
    chunks = r.iter_chunks()
    assert next(chunks) == b"ok"
    with pytest.raises(OSError, match="disk on fire"):
        next(chunks)
    chunks.close()
    spawn.ended()


@pytest.mark.parametrize(
    "size, error, match",
    [
        (0, ValueError, r"iter_chunks\(\) size must be > 0, not 0"),
        (-5, ValueError, r"size must be > 0, not -5"),
        (1.5, TypeError, r"size must be an integer, not 'float'"),
        ("8", TypeError, r"size must be an integer, not 'str'"),
        (True, TypeError, r"size must be an integer, not 'bool'"),
        (None, TypeError, r"size must be an integer, not 'NoneType'"),
    ],
)
def test_iter_chunks_checks_size(bk, size, error, match):
    r, w = bk.pipe()
    with pytest.raises(error, match=match):
        r.iter_chunks(size)
    assert not r.closed
    r.close()
    w.close()


def test_interfaces_still_verified(bk):
    r, w = bk.pipe()
    assert verifyClass(IPipeReader, gpipe.PipeReader)
    assert verifyObject(IPipeReader, r)
    r.close()
    w.close()


# -- spawn_consumer -----------------------------------------------------------


def count(reader: gpipe.PipeReader, scale: int = 1, *, extra: int = 0) -> int:
    return sum(len(chunk) for chunk in reader.iter_chunks()) * scale + extra


def test_consumer_join_returns_result(spawn):
    w = gpipe.spawn_consumer(count, 2, extra=1)
    assert isinstance(w, _spawn.ConsumerWriter)
    assert verifyObject(IPipeWriter, w)
    assert w.backend == spawn.name
    w.write(b"12345")
    w.write(b"678")
    assert w.join(WAIT) == 17
    assert w.closed
    assert w.join(WAIT) == 17  # again: the same result
    spawn.ended()


def test_consumer_with_block_joins(spawn):
    with gpipe.spawn_consumer(count) as w:
        w.write(b"abc")
    assert w.closed
    spawn.ended()
    assert w.join(0) == 3


def test_consumer_error_raised_by_with_block_and_writes(spawn):
    bad = ValueError("bad header")

    def strict(reader):
        reader.read1(1)
        raise bad

    with (
        pytest.raises(ValueError, match="bad header") as info,
        gpipe.spawn_consumer(strict) as w,
    ):
        w.write(b"x")
        # The consumer closed its reader with its error: writes raise it.
        spawn.bk.wait_for(lambda: spawn.tasks[0].wait(0), "the consumer ends")
        w.write(b"more")
    assert info.value is bad
    with pytest.raises(ValueError) as again:
        w.join(WAIT)
    assert again.value is bad
    assert spawn.reports == []


def test_consumer_error_raised_at_normal_exit(spawn):
    def fail_at_eof(reader):
        reader.read()
        raise LookupError("nothing useful")

    with (
        pytest.raises(LookupError, match="nothing useful"),
        gpipe.spawn_consumer(fail_at_eof) as w,
    ):
        w.write(b"data")
    spawn.ended()
    assert spawn.reports == []


def test_consumer_with_block_exception_not_masked(spawn):
    got = []

    def record(reader):
        try:
            reader.read()
        except BaseException as exc:
            got.append(exc)
            raise

    mine = ZeroDivisionError("in the with block")
    with pytest.raises(ZeroDivisionError) as info, gpipe.spawn_consumer(record) as w:
        w.write(b"partial")
        raise mine
    assert info.value is mine
    assert w.closed
    # The consumer saw the error in place of EOF, so it could not
    # take the partial body for a whole one.
    with pytest.raises(ZeroDivisionError):
        w.join(WAIT)
    assert got == [mine]
    assert spawn.reports == []


def test_consumer_returning_early_closes_reader(spawn):
    def first_byte(reader):
        return reader.read1(1)

    w = gpipe.spawn_consumer(first_byte)
    w.write(b"a")
    spawn.bk.wait_for(lambda: spawn.tasks[0].wait(0), "the consumer returns")
    with pytest.raises(gpipe.ClosedPipeError, match="reader was closed"):
        w.write(b"rest")
    assert w.join(WAIT) == b"a"


def test_consumer_writer_dropped_unclosed_ends_the_consumer(spawn):
    """As a plain writer collected unclosed: a ResourceWarning, and the
    consumer's read raises WriterAbortedError, which ends it. (Its own
    task must not keep the writer alive, or it would wait forever.)"""
    got = []

    def fn(reader):
        try:
            reader.read()
        except gpipe.WriterAbortedError as exc:
            got.append(exc)
            raise

    def start() -> None:
        w = gpipe.spawn_consumer(fn)
        w.write(b"part")  # then forgotten: no close, no with block

    with pytest.warns(ResourceWarning, match="unclosed <gpipe.ConsumerWriter"):
        start()
        gc.collect()
    spawn.ended()
    assert len(got) == 1 and "garbage-collected" in str(got[0])
    assert spawn.reports == []


def test_consumer_close_does_not_block_join_times_out(spawn):
    release = spawn.event()

    def slow(reader):
        data = reader.read()
        assert release.wait(WAIT)
        return data

    w = gpipe.spawn_consumer(slow)
    w.write(b"body")
    w.close()  # returns at once although the consumer is still busy
    assert not spawn.tasks[0].wait(0)
    with pytest.raises(TimeoutError, match=r"still running after 0\.01 s"):
        w.join(0.01)
    release.set()
    assert w.join(WAIT) == b"body"


@pytest.mark.parametrize(
    "timeout, error, match",
    [
        ("1", TypeError, "timeout must be None or a number of seconds, not 'str'"),
        (-1, ValueError, r"timeout must be None or >= 0, not -1"),
    ],
)
def test_consumer_join_checks_timeout(spawn, timeout, error, match):
    w = gpipe.spawn_consumer(count)
    with pytest.raises(error, match=match):
        w.join(timeout)
    assert not w.closed  # a bad argument changes nothing
    assert w.join(WAIT) == 0


@pytest.mark.parametrize("bk", ["gevent"], indirect=True)
def test_consumer_killed(spawn):
    greenlets = []

    def fn(reader):
        greenlets.append(gevent.getcurrent())
        reader.read()

    w = gpipe.spawn_consumer(fn)
    spawn.bk.wait_for(lambda: bool(greenlets) and w._pipe.waiting(True) >= 1, "consumer reads")
    greenlets[0].kill(block=True, timeout=WAIT)
    with pytest.raises(gpipe.ClosedPipeError, match="consumer was interrupted") as info:
        w.write(b"x")
    assert isinstance(info.value.__cause__, gevent.GreenletExit)
    with pytest.raises(gevent.GreenletExit):
        w.join(WAIT)
    assert spawn.reports == []


# -- a plain threaded program -------------------------------------------------

PLAIN_THREADS = """
import hashlib, io, json, sys, tarfile, threading
import gpipe

assert gpipe.detect_backend() == "threading"

def archive(writer, count):
    with tarfile.open(fileobj=writer, mode="w|gz") as tar:
        for i in range(count):
            data = bytes([i]) * 100_000
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

def digests(reader):
    with tarfile.open(fileobj=reader, mode="r|gz") as tar:
        found = {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in tar}
    # tarfile stops at the end-of-archive marker; read the padding and
    # the gzip trailer too, or the writer's last writes would fail.
    reader.read()
    return found, threading.current_thread().name

# archive() writes into a pipe; digests() reads another; this thread copies.
reader = gpipe.spawn_producer(archive, 5)
assert reader.backend == "threading"
with gpipe.spawn_consumer(digests) as writer:
    for chunk in reader.iter_chunks(4096):
        writer.write(chunk)
found, thread_name = writer.join()
assert thread_name.startswith("gpipe-consumer-digests"), thread_name

# An early close stops the producer, which ends its thread quietly.
stopped = threading.Event()
def endless(writer):
    try:
        while True:
            writer.write(b"x" * 1000)
    finally:
        stopped.set()
reader = gpipe.spawn_producer(endless)
reader.read1(10)
reader.close()
assert stopped.wait(10)
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(10)
        assert not thread.is_alive(), thread

assert "gevent" not in sys.modules, "gevent was imported"
print(json.dumps(found))
"""


def test_plain_threaded_program(tmp_path):
    """The helpers in a program that never imports gevent."""
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PLAIN_THREADS],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no report of an unhandled thread error
    expected = {f"f{i}": hashlib.sha256(bytes([i]) * 100_000).hexdigest() for i in range(5)}
    assert json.loads(result.stdout) == expected
