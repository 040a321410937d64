"""The numbered rules of gpipe's contract, one group of tests per rule.

Every test runs on both backends through the ``bk`` fixture.
"""

from __future__ import annotations

import array
import gc
import sys
import traceback
import tracemalloc

import gevent
import pytest

import gpipe
from gpipe._core import COMPILED
from gpipe._pipe import PipeReader, PipeWriter

from ._tasks import Call
from .conftest import WAIT


class Boom(Exception):
    pass


# -- 1. handoff: no buffering, one write per read, gated calls ----------------


def test_write_blocks_until_all_consumed(bk):
    r, w = bk.pipe()
    task = bk.go(w.write, b"0123456789")
    bk.wait_blocked(w)
    assert r.read1(4) == b"0123"
    assert not task.ready()  # 6 bytes still unread: the write still blocks
    assert r.read1(100) == b"456789"
    assert task.get() == 10


def test_reader_waiting_first_gets_data(bk):
    r, w = bk.pipe()
    task = bk.go(r.read1, 100)
    bk.wait_blocked(r)
    assert w.write(b"abc") == 3
    assert task.get() == b"abc"


def test_read_returns_data_of_one_write_only(bk):
    r, w = bk.pipe()
    first = bk.go(w.write, b"first")
    bk.wait_blocked(w)
    second = bk.go(w.write, b"second")
    bk.wait_blocked(w, 2)  # the second write waits at the gate
    assert r.read1(100) == b"first"
    assert first.get() == 5
    assert r.read1(100) == b"second"
    assert second.get() == 6


def test_reader_does_not_alias_writer_buffer(bk):
    r, w = bk.pipe()
    data = bytearray(b"original")
    task = bk.go(w.write, data)
    bk.wait_blocked(w)
    got = r.read1(100)
    assert task.get() == 8
    data[:] = b"mutated!"
    assert type(got) is bytes
    assert got == b"original"


def test_readinto_copies_into_reader_buffer(bk):
    r, w = bk.pipe()
    buf = bytearray(16)
    task = bk.go(r.readinto1, buf)
    bk.wait_blocked(r)
    w.write(b"handoff")
    assert task.get() == 7
    assert buf[:7] == b"handoff"


def test_readinto_waits_for_a_full_buffer(bk):
    """readinto(b) is Go's io.ReadFull: it waits across writes for len(b)."""
    r, w = bk.pipe()
    buf = bytearray(10)
    task = bk.go(r.readinto, buf)
    bk.wait_blocked(r)
    assert w.write(b"hand") == 4
    assert not task.ready()
    assert w.write(b"off...") == 6
    assert task.get() == 10
    assert buf == b"handoff..."


@pytest.mark.parametrize(
    "data",
    [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"), array.array("i", [1, 2, 3])],
    ids=["bytes", "bytearray", "memoryview", "array"],
)
def test_write_accepts_bytes_like(bk, data):
    r, w = bk.pipe()
    task = bk.go(r.readall)
    expected = bytes(memoryview(data).cast("B"))
    assert w.write(data) == len(expected)
    w.close()
    assert task.get() == expected


def test_write_of_strided_memoryview(bk):
    r, w = bk.pipe()
    task = bk.go(r.readall)
    assert w.write(memoryview(b"a-b-c-")[::2]) == 3
    w.close()
    assert task.get() == b"abc"


def test_readinto_accepts_typed_buffers(bk):
    r, w = bk.pipe()
    out = array.array("H", [0, 0])
    task = bk.go(w.write, b"\x01\x00\x02\x00")
    assert r.readinto1(out) == 4
    assert list(out) == [1, 2]
    task.get()


def test_writelines_and_flush(bk):
    r, w = bk.pipe()
    task = bk.go(r.readall)
    w.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    assert w.flush() is None
    w.close()
    assert task.get() == b"abc"


def test_writelines_on_a_closed_writer(bk):
    """As write() on a closed writer (io's own would raise a plain ValueError)."""
    r, w = bk.pipe()
    w.close()
    r.close()
    with pytest.raises(gpipe.ClosedPipeError, match="closed PipeWriter"):
        w.writelines([b"x"])
    with pytest.raises(gpipe.ClosedPipeError, match="closed PipeWriter"):
        w.writelines([])
    assert w.flush() is None  # (io's close calls it: never an error)


# -- 2. writer close: EOF or the very error ------------------------------------


def test_writer_close_gives_eof(bk):
    r, w = bk.pipe()
    w.close()
    assert r.read1(10) == b""
    assert r.readinto1(bytearray(10)) == 0
    assert r.read(10) == b""
    assert r.readinto(bytearray(10)) == 0
    assert r.read() == b""
    assert r.readall() == b""
    assert r.readline() == b""
    assert list(r) == []


def test_writer_close_with_error_raises_same_instance(bk):
    r, w = bk.pipe()
    err = Boom("upstream failed")
    w.close_with_error(err)
    for call in (
        lambda: r.read1(10),
        lambda: r.readinto1(bytearray(1)),
        lambda: r.read(10),
        lambda: r.readinto(bytearray(1)),
        r.read,
        r.readline,
    ):
        with pytest.raises(Boom) as info:
            call()
        assert info.value is err


def test_close_with_error_none_is_close(bk):
    r, w = bk.pipe()
    assert w.close_with_error(None) is None
    assert w.closed
    assert r.read1(1) == b""
    r2, w2 = bk.pipe()
    r2.close_with_error()
    with pytest.raises(gpipe.ClosedPipeError):
        w2.write(b"x")


@pytest.mark.parametrize("bad", ["error", 42, Boom], ids=["str", "int", "class"])
def test_close_with_error_rejects_non_exceptions(bk, bad):
    r, w = bk.pipe()
    with pytest.raises(TypeError, match="close_with_error\\(\\) takes an exception instance"):
        w.close_with_error(bad)
    with pytest.raises(TypeError, match="close_with_error\\(\\) takes an exception instance"):
        r.close_with_error(bad)
    # Nothing was closed: the pipe still works.
    assert not w.closed and not r.closed
    task = bk.go(w.write, b"ok")
    assert r.read1(2) == b"ok"
    task.get()


def test_blocked_reader_sees_error_when_writer_closes(bk):
    r, w = bk.pipe()
    err = Boom()
    task = bk.go(r.read1, 10)
    bk.wait_blocked(r)
    w.close_with_error(err)
    with pytest.raises(Boom) as info:
        task.get()
    assert info.value is err


@pytest.mark.parametrize(
    "error",
    [BrokenPipeError("gone"), ConnectionResetError("reset"), gpipe.ClosedPipeError("other pipe")],
    ids=["BrokenPipeError", "ConnectionResetError", "ClosedPipeError"],
)
@pytest.mark.parametrize("how", ["close_with_error", "with block", "close in except"])
def test_a_writers_connection_error_reaches_readers_as_writer_aborted(bk, error, how):
    """Never a ConnectionError for readers: HTTP clients take one, raised
    while they send a body, for a server that closed the connection."""
    r, w = bk.pipe()
    if how == "close_with_error":
        w.close_with_error(error)
    else:
        with pytest.raises(type(error)):
            if how == "with block":
                with w:
                    raise error
            else:
                try:
                    raise error
                except ConnectionError:
                    w.close()
                    raise
    for _ in range(2):  # the same answer each time
        with pytest.raises(gpipe.WriterAbortedError) as info:
            r.read1(10)
        assert not isinstance(info.value, ConnectionError)
        assert info.value.__cause__ is error
        assert str(info.value) == f"the writer was closed with {type(error).__name__}: {error}"


# -- 3. reader close ------------------------------------------------------------


def test_reader_close_fails_writes(bk):
    r, w = bk.pipe()
    r.close()
    with pytest.raises(gpipe.ClosedPipeError, match="write to a pipe whose reader was closed"):
        w.write(b"x")
    with pytest.raises(BrokenPipeError):
        w.write(b"x")


def test_reader_close_with_error_fails_writes_with_it(bk):
    r, w = bk.pipe()
    err = Boom()
    r.close_with_error(err)
    with pytest.raises(Boom) as info:
        w.write(b"x")
    assert info.value is err


def test_reader_close_wakes_blocked_writer(bk):
    r, w = bk.pipe()
    task = bk.go(w.write, b"0123456789")
    bk.wait_blocked(w)
    assert r.read1(3) == b"012"
    r.close()
    # No short writes: the write raises, and says what readers took.
    with pytest.raises(gpipe.ClosedPipeError, match="reader was closed") as info:
        task.get()
    assert info.value.consumed == 3
    with pytest.raises(gpipe.ClosedPipeError, match="reader was closed") as info:
        w.write(b"x")
    assert info.value.consumed == 0


def test_reader_close_with_error_after_partial_read_and_a_queued_writer(bk):
    """Each write gets its own count, though both see one error instance."""
    r, w = bk.pipe()
    # Call records each write's ``consumed`` as it raises: the one error
    # instance is raised in both, and the later raise rewrites it.
    a = Call(bk.name, w.write, b"0123456789")
    bk.wait_blocked(w)
    b = Call(bk.name, w.write, b"B" * 5)
    bk.wait_for(lambda: r._pipe.waiting(False) == 2, "second writer queued")
    assert r.read1(4) == b"0123"
    err = Boom("reader failed")
    r.close_with_error(err)
    bk.wait_for(lambda: a.done and b.done, "both writes ended")
    # A's own count, however B's failure is scheduled.
    assert a.outcome == ("raise", err, 4)
    assert b.outcome == ("raise", err, 0)


# -- 4. first close wins; close never blocks or raises ---------------------------


def test_first_close_wins_on_writer(bk):
    r, w = bk.pipe()
    err = Boom()
    w.close_with_error(err)
    assert w.close() is None  # a later plain close must not turn it into EOF
    assert w.close_with_error(Boom()) is None
    with pytest.raises(Boom) as info:
        r.read1(1)
    assert info.value is err


def test_first_close_wins_on_reader(bk):
    r, w = bk.pipe()
    r.close()
    r.close_with_error(Boom())
    with pytest.raises(gpipe.ClosedPipeError):
        w.write(b"x")


def test_close_is_idempotent_and_returns_none(bk):
    r, w = bk.pipe()
    for end in (r, w):
        assert end.close() is None
        assert end.close() is None
        assert end.close_with_error(Boom()) is None
        assert end.closed


def test_close_does_not_block_while_calls_are_blocked(bk):
    r, w = bk.pipe()
    task = bk.go(w.write, b"data")
    bk.wait_blocked(w)
    w.close()  # runs in this task; returns although a write is in flight
    with pytest.raises(gpipe.ClosedPipeError):
        task.get()
    assert r.read1(10) == b""


# -- 5. an end you closed yourself -------------------------------------------------


def test_read_on_own_closed_reader(bk):
    r, w = bk.pipe()
    r.close()
    for call in (
        lambda: r.read1(1),
        lambda: r.readinto1(bytearray(1)),
        lambda: r.read(0),
        r.readall,
    ):
        with pytest.raises(ValueError, match="read from a closed PipeReader") as info:
            call()
        # A plain ValueError, as for any closed file: never a BrokenPipeError.
        assert type(info.value) is ValueError


def test_write_on_own_closed_writer(bk):
    r, w = bk.pipe()
    w.close()
    for data in (b"x", b""):
        with pytest.raises(gpipe.ClosedPipeError, match="write to a closed PipeWriter"):
            w.write(data)
    with pytest.raises(ValueError):
        w.write(b"x")


def test_own_close_wins_over_peer_error(bk):
    """Go's readCloseError/writeCloseError: your own close is reported first."""
    r, w = bk.pipe()
    w.close_with_error(Boom())
    r.close()
    with pytest.raises(ValueError, match="read from a closed PipeReader") as info:
        r.read1(1)
    assert type(info.value) is ValueError
    r, w = bk.pipe()
    r.close_with_error(Boom())
    w.close()
    with pytest.raises(gpipe.ClosedPipeError, match="write to a closed PipeWriter"):
        w.write(b"x")


# -- 6. closing wakes every blocked call on both ends ------------------------------


def test_writer_close_wakes_all_blocked_readers(bk):
    r, w = bk.pipe()
    readers = [bk.go(r.read1, 10) for _ in range(5)]
    bk.wait_blocked(r, 5)  # one waits for data, four at the read gate
    w.close()
    assert [t.get() for t in readers] == [b""] * 5


def test_reader_close_wakes_all_blocked_writers(bk):
    r, w = bk.pipe()
    writers = [bk.go(w.write, b"data") for _ in range(5)]
    bk.wait_blocked(w, 5)
    r.close()
    for task in writers:
        with pytest.raises(gpipe.ClosedPipeError):
            task.get()


def test_own_close_wakes_blocked_calls_on_same_end(bk):
    r, w = bk.pipe()
    readers = [bk.go(r.read1, 10) for _ in range(3)]
    bk.wait_blocked(r, 3)
    r.close()
    for task in readers:
        with pytest.raises(ValueError, match="read from a closed PipeReader") as info:
            task.get()
        assert type(info.value) is ValueError
    r, w = bk.pipe()
    writers = [bk.go(w.write, b"x") for _ in range(3)]
    bk.wait_blocked(w, 3)
    w.close()
    for task in writers:
        with pytest.raises(gpipe.ClosedPipeError, match="write to a closed PipeWriter"):
            task.get()


# -- 7. empty operations --------------------------------------------------------------


def test_empty_write_does_not_wake_reader(bk):
    r, w = bk.pipe()
    task = bk.go(r.read1, 10)
    bk.wait_blocked(r)
    assert w.write(b"") == 0
    assert not task.ready()
    assert r._pipe.waiting(True) == 1  # still blocked, never saw an empty read
    w.write(b"real")
    assert task.get() == b"real"


def test_empty_write_raises_close_error(bk):
    r, w = bk.pipe()
    err = Boom()
    r.close_with_error(err)
    with pytest.raises(Boom) as info:
        w.write(b"")
    assert info.value is err
    assert info.value.consumed == 0


def test_empty_write_after_a_partial_write_reports_its_own_count(bk):
    """The stored close error is raised again: each raise sets its count."""
    r, w = bk.pipe()
    task = Call(bk.name, w.write, b"0123456789")
    bk.wait_blocked(w)
    assert r.read1(3) == b"012"
    err = Boom()
    r.close_with_error(err)
    bk.wait_for(lambda: task.done, "the write ended")
    assert task.outcome == ("raise", err, 3)
    with pytest.raises(Boom) as info:
        w.write(b"")
    assert info.value is err
    assert info.value.consumed == 0


def test_empty_reads_return_at_once(bk):
    r, w = bk.pipe()
    assert r.read(0) == b""
    assert r.read1(0) == b""
    assert r.readinto1(bytearray()) == 0
    assert r.readinto1(memoryview(bytearray(4))[:0]) == 0
    assert r.readinto(bytearray()) == 0
    assert r.readinto(memoryview(bytearray(4))[:0]) == 0


def test_empty_reads_check_close(bk):
    r, w = bk.pipe()
    err = Boom()
    w.close_with_error(err)
    with pytest.raises(Boom):
        r.read(0)
    with pytest.raises(Boom):
        r.readinto1(bytearray())
    r2, w2 = bk.pipe()
    w2.close()
    assert r2.read(0) == b""  # EOF is not an error


# -- 8. interrupted calls --------------------------------------------------------------


def test_timed_out_write_withdraws_rest(bk):
    r, w = bk.pipe()
    w.settimeout(0.2)

    def partial_read():
        return r.read1(4)

    reader = bk.go(partial_read)
    with pytest.raises(TimeoutError) as info:
        w.write(b"0123456789")
    assert info.value.consumed == 4
    assert reader.get() == b"0123"
    # The withdrawn "456789" is never seen: the next read gets the next write.
    task = bk.go(w.write, b"next")
    assert r.read1(100) == b"next"
    task.get()


def test_timed_out_read_consumes_nothing(bk):
    r, w = bk.pipe()
    r.settimeout(0.05)
    with pytest.raises(TimeoutError, match="read timed out"):
        r.read1(10)
    r.settimeout(None)
    task = bk.go(w.write, b"after")
    assert r.read1(10) == b"after"
    task.get()


def test_timeout_zero_fails_at_once_when_it_would_block(bk):
    r, w = bk.pipe()
    r.settimeout(0)
    w.settimeout(0)
    with pytest.raises(TimeoutError):
        r.read1(1)
    with pytest.raises(TimeoutError) as info:
        w.write(b"x")
    assert info.value.consumed == 0


def test_timeout_zero_on_gevent_lets_no_other_greenlet_run_first():
    """A call with no time left raises at once, where gevent's wait of 0
    seconds would first give way to every greenlet that is ready."""
    r, w = gpipe.pipe(backend="gevent")
    r.settimeout(0)
    w.settimeout(0)
    ran: list[str] = []
    other = gevent.spawn(ran.append, "other")
    with pytest.raises(TimeoutError):
        r.read1(1)
    with pytest.raises(TimeoutError):
        w.write(b"x")
    assert ran == []
    other.join(timeout=WAIT)
    assert ran == ["other"]
    r.close()
    w.close()


def test_timeout_waiting_at_the_gate(bk):
    r, w = bk.pipe()
    first = bk.go(w.write, b"first")
    bk.wait_blocked(w)
    w.settimeout(0.05)
    with pytest.raises(TimeoutError, match="another call on this end") as info:
        w.write(b"second")
    assert info.value.consumed == 0
    assert r.read1(100) == b"first"
    first.get()
    # The gate is free again, and the timed-out write left nothing behind.
    w.settimeout(None)
    task = bk.go(w.write, b"third")
    assert r.read1(100) == b"third"
    task.get()


# -- 9. settimeout / gettimeout ---------------------------------------------------------


def test_settimeout_roundtrip(bk):
    r, w = bk.pipe()
    assert r.gettimeout() is None
    r.settimeout(1.5)
    assert r.gettimeout() == 1.5
    w.settimeout(2)
    assert w.gettimeout() == 2.0
    r.settimeout(float("inf"))
    assert r.gettimeout() is None
    r.settimeout(None)
    assert r.gettimeout() is None


@pytest.mark.parametrize(
    "value,exc,match",
    [
        ("1", TypeError, "timeout must be None or a number of seconds, not 'str'"),
        (True, TypeError, "not 'bool'"),
        (-1, ValueError, "timeout must be None or >= 0, not -1"),
        (float("nan"), ValueError, "timeout must be None or >= 0"),
    ],
)
def test_settimeout_rejects_bad_values(bk, value, exc, match):
    r, w = bk.pipe()
    r.settimeout(3)
    with pytest.raises(exc, match=match):
        r.settimeout(value)
    assert r.gettimeout() == 3.0  # unchanged


# -- 10. the caller's buffer is released when write() returns ---------------------------


def test_buffer_released_after_write(bk):
    r, w = bk.pipe()
    data = bytearray(b"x" * 1000)
    task = bk.go(r.readall)
    w.write(data)
    data.extend(b"more")  # BufferError if the pipe still exported it
    del data[:]
    w.close()
    assert task.get() == b"x" * 1000


def test_buffer_released_after_failed_write(bk):
    r, w = bk.pipe()
    w.settimeout(0.01)
    data = bytearray(b"y" * 100)
    with pytest.raises(TimeoutError):
        w.write(data)
    data.extend(b"z")
    r.close()
    with pytest.raises(gpipe.ClosedPipeError):
        w.write(data)
    data.clear()


def test_buffer_released_after_partial_write(bk):
    r, w = bk.pipe()
    data = bytearray(b"0123456789")
    task = bk.go(w.write, data)
    bk.wait_blocked(w)
    r.read1(3)
    r.close()
    with pytest.raises(gpipe.ClosedPipeError) as info:
        task.get()
    assert info.value.consumed == 3
    data.clear()


# -- 11. garbage-collected ends ------------------------------------------------------------


def test_collected_writer_fails_reads(bk):
    r, w = gpipe.pipe(backend=bk.name)  # not via bk: it would keep both alive
    with pytest.warns(ResourceWarning, match="unclosed <gpipe.PipeWriter"):
        del w
        gc.collect()
    with pytest.raises(
        gpipe.WriterAbortedError, match="the writer was garbage-collected without being closed"
    ) as info:
        r.read1(1)
    assert not isinstance(info.value, ConnectionError)
    assert info.value.__cause__ is None
    r.close()


def test_collected_writer_wakes_blocked_reader(bk):
    r, w = gpipe.pipe(backend=bk.name)  # not via bk: it would keep both alive
    task = bk.go(r.read1, 1)
    bk.wait_blocked(r)
    with pytest.warns(ResourceWarning):
        del w
        gc.collect()
    with pytest.raises(
        gpipe.WriterAbortedError, match="the writer was garbage-collected without being closed"
    ) as info:
        task.get()
    assert info.value.__cause__ is None
    r.close()


def test_collected_reader_fails_blocked_and_later_writes(bk):
    r, w = gpipe.pipe(backend=bk.name)  # not via bk: it would keep both alive
    task = bk.go(w.write, b"data")
    bk.wait_blocked(w)
    with pytest.warns(ResourceWarning, match="unclosed <gpipe.PipeReader"):
        del r
        gc.collect()
    with pytest.raises(gpipe.ClosedPipeError, match="read end collected without close"):
        task.get()
    with pytest.raises(gpipe.ClosedPipeError, match="read end collected without close"):
        w.write(b"later")
    w.close()


def test_closed_ends_collect_silently(bk, recwarn):
    r, w = gpipe.pipe(backend=bk.name)  # not via bk: it would keep both alive
    r.close()
    w.close()
    del r, w
    gc.collect()
    assert not [str(x.message) for x in recwarn if issubclass(x.category, ResourceWarning)]


def test_collected_in_another_thread(bk):
    """__del__ may run in any thread; it must not block or switch there."""
    import threading

    r, w = gpipe.pipe(backend=bk.name)  # not via bk: it would keep both alive
    task = bk.go(r.read1, 1)
    bk.wait_blocked(r)
    holder = [w]
    del w

    def drop():
        with pytest.warns(ResourceWarning):
            holder.clear()

    t = threading.Thread(target=drop)
    t.start()
    t.join(10)
    assert not t.is_alive()
    with pytest.raises(
        gpipe.WriterAbortedError, match="the writer was garbage-collected without being closed"
    ):
        task.get()
    r.close()


# -- 12. raising a stored error again and again ---------------------------------------------


def test_reraising_close_error_does_not_grow(bk):
    r, w = bk.pipe()
    try:
        raise Boom("with a traceback")
    except Boom as exc:
        err = exc
    w.close_with_error(err)

    def depth():
        with pytest.raises(Boom) as info:
            r.read1(1)
        return len(traceback.extract_tb(info.value.__traceback__))

    first = depth()
    for _ in range(200):
        depth()
    assert depth() == first
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            depth()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 2000 raises"


# -- io integration ---------------------------------------------------------------------------


def test_is_buffered_io(bk):
    import io

    r, w = bk.pipe()
    assert isinstance(r, io.BufferedIOBase) and isinstance(w, io.BufferedIOBase)
    assert not isinstance(r, io.RawIOBase) and not isinstance(w, io.RawIOBase)
    assert r.readable() and not r.writable() and not r.seekable()
    assert w.writable() and not w.readable() and not w.seekable()
    with pytest.raises(io.UnsupportedOperation):
        r.fileno()


def test_lines_and_text(bk):
    import io

    r, w = bk.pipe()

    def produce():
        with io.TextIOWrapper(io.BufferedWriter(w), encoding="utf-8") as text:
            text.write("first line\nsecond line\nthird")

    task = bk.go(produce)
    assert r.readline() == b"first line\n"
    assert r.readline(3) == b"sec"
    assert r.readlines() == [b"ond line\n", b"third"]
    task.get()


def test_buffered_reader_and_copyfileobj(bk):
    import io
    import shutil

    r, w = bk.pipe()
    payload = bytes(range(256)) * 1000

    def produce():
        with w:
            for i in range(0, len(payload), 1000):
                w.write(payload[i : i + 1000])

    task = bk.go(produce)
    out = io.BytesIO()
    with io.BufferedReader(r) as buffered:
        shutil.copyfileobj(buffered, out)
    task.get()
    assert out.getvalue() == payload


def test_iteration_yields_lines(bk):
    r, w = bk.pipe()

    def produce():
        with w:
            w.write(b"a\nb\n")
            w.write(b"c")

    task = bk.go(produce)
    assert list(r) == [b"a\n", b"b\n", b"c"]
    task.get()


def test_context_managers_close(bk):
    r, w = bk.pipe()
    with r, w:
        assert not r.closed and not w.closed
    assert r.closed and w.closed
    with pytest.raises(ValueError):
        with r:
            pass


def test_repr(bk):
    r, w = bk.pipe()
    build = "compiled" if COMPILED else "pure"
    assert repr(r) == (
        f"<gpipe.PipeReader open backend='{bk.name}' {build} waiting=0 reader=open writer=open>"
    )
    task = bk.go(w.write, b"x")
    bk.wait_blocked(w)
    assert "waiting=1" in repr(w)
    r.read1(1)
    task.get()
    w.close()
    assert repr(w).startswith("<gpipe.PipeWriter closed")
    assert "writer=closed" in repr(r)
    r.close()


def test_backend_attribute(bk):
    r, w = bk.pipe()
    assert r.backend == w.backend == bk.name


# -- bad input at the API's edge ----------------------------------------------------------------


def test_bad_read_sizes(bk):
    r, w = bk.pipe()
    with pytest.raises(TypeError):
        r.read("3")
    with pytest.raises(TypeError):
        r.read1(1.5)
    with pytest.raises(ValueError, match=r"read\(\) size must be >= 0 or -1, not -2"):
        r.read(-2)
    with pytest.raises(ValueError, match=r"read1\(\) size must be >= 0 or -1, not -2"):
        r.read1(-2)


def test_bad_write_data(bk):
    r, w = bk.pipe()
    with pytest.raises(
        TypeError, match="write\\(\\) argument must be a bytes-like object, not 'str'"
    ):
        w.write("text")
    with pytest.raises(TypeError, match="not 'int'"):
        w.write(3)
    with pytest.raises(TypeError, match="readinto\\(\\) argument must be a writable"):
        r.readinto(b"read-only")
    with pytest.raises(TypeError, match="readinto1\\(\\) argument must be a writable"):
        r.readinto1(b"read-only")


def test_bad_backend():
    with pytest.raises(
        ValueError, match="backend must be None, 'gevent' or 'threading', not 'asyncio'"
    ):
        gpipe.pipe(backend="asyncio")
    with pytest.raises(TypeError, match="backend must be None, 'gevent' or 'threading', not int"):
        gpipe.pipe(backend=1)


def test_ends_are_the_public_classes(bk):
    r, w = bk.pipe()
    assert type(r) is PipeReader is gpipe.PipeReader
    assert type(w) is PipeWriter is gpipe.PipeWriter
    assert issubclass(gpipe.ClosedPipeError, BrokenPipeError)
    assert issubclass(gpipe.ClosedPipeError, ValueError)
    assert sys.modules["gpipe"].__version__


def test_callers_memoryview_is_left_as_it_was(bk):
    """A flat byte memoryview is used as it is: not released by the pipe,
    and no export of the pipe's own outlives the call."""
    r, w = bk.pipe()
    source = bytearray(b"from a view")
    out = bytearray(32)
    src_view, out_view = memoryview(source), memoryview(out)
    task = bk.go(r.readinto1, out_view)
    bk.wait_blocked(r)
    assert w.write(src_view) == 11
    assert task.get() == 11
    assert out_view[:11] == b"from a view"  # both views still usable
    assert src_view[:4] == b"from"
    src_view.release()
    out_view.release()
    source.extend(b"!")  # BufferError if the pipe still held an export
    out.extend(b"!")
