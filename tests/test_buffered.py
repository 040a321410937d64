"""pipe(bufsize=N): writers run ahead by up to N bytes; every close and
error rule of the unbuffered pipe still holds."""

from __future__ import annotations

import random

import pytest

import gpipe
from gpipe._core import BufferedPipe
from gpipe._pipe import PipeReader, PipeWriter

from .test_interrupt import Interrupt, InterruptAfterWake, spawn, wait_reader_blocked


class Boom(Exception):
    pass


@pytest.fixture
def buffered(bk):
    def make(bufsize):
        r, w = gpipe.pipe(bufsize, backend=bk.name)
        bk._ends += (r, w)
        return r, w

    return make


def test_writes_return_while_they_fit(bk, buffered):
    r, w = buffered(10)
    assert w.write(b"abc") == 3  # no reader: buffered
    assert w.write(b"defg") == 4
    # A read may return bytes of several writes, as from an OS pipe.
    assert r.read1(100) == b"abcdefg"


def test_write_blocks_when_buffer_full(bk, buffered):
    r, w = buffered(4)
    assert w.write(b"ab") == 2  # fits: buffered
    # Does not fit in the free room: not split into the buffer, it waits
    # as an unbuffered write until readers took all of it.
    task = bk.go(w.write, b"0123456789")
    bk.wait_blocked(w)
    assert not task.ready()
    assert r.read1(100) == b"ab"  # the buffered bytes first
    assert not task.ready()
    assert r.read1(2) == b"01"  # room in the buffer now: still not split
    assert not task.ready()
    assert r.read1(100) == b"23456789"
    assert task.get() == 10
    assert w.write(b"cd") == 2  # the buffer is free again
    w.close()
    assert r.readall() == b"cd"


def test_read_spans_buffer_and_a_waiting_write(bk, buffered):
    r, w = buffered(4)
    assert w.write(b"ab") == 2
    task = bk.go(w.write, b"0123456789")
    bk.wait_blocked(w)
    assert r.read(5) == b"ab012"  # read(n) waits across writes for n bytes
    assert not task.ready()
    assert r.read(7) == b"3456789"
    assert task.get() == 10


def test_reader_waiting_gets_data_directly(bk, buffered):
    r, w = buffered(8)
    task = bk.go(r.read1, 100)
    bk.wait_blocked(r)
    assert w.write(b"direct") == 6
    assert task.get() == b"direct"


def test_a_write_a_waiting_reader_takes_part_of_is_not_split(bk, buffered):
    """As documented: the rest is not buffered, though it would fit."""
    r, w = buffered(64)
    task = bk.go(r.read1, 2)
    bk.wait_blocked(r)
    writing = bk.go(w.write, b"hello")
    assert task.get() == b"he"
    bk.wait_blocked(w)
    assert not writing.ready()
    assert r.read1(10) == b"llo"
    assert writing.get() == 5


def test_writer_close_delivers_buffer_then_eof(bk, buffered):
    r, w = buffered(16)
    w.write(b"last words")
    w.close()
    assert r.read(0) == b""
    assert r.read1(4) == b"last"
    assert r.readall() == b" words"
    assert r.read1(1) == b""


def test_writer_error_after_buffer(bk, buffered):
    r, w = buffered(16)
    w.write(b"partial")
    err = Boom()
    w.close_with_error(err)
    assert r.read(0) == b""  # data still pending: no error yet
    assert r.read1(100) == b"partial"
    with pytest.raises(Boom) as info:
        r.read1(1)
    assert info.value is err


def test_reader_close_discards_buffer_and_fails_writer(bk, buffered):
    r, w = buffered(4)
    assert w.write(b"ab") == 2  # buffered
    task = bk.go(w.write, b"0123456789")
    bk.wait_blocked(w)
    r.close()
    with pytest.raises(gpipe.ClosedPipeError, match="reader was closed") as info:
        task.get()
    assert info.value.consumed == 0  # the buffer took none of it
    with pytest.raises(ValueError, match="read from a closed PipeReader") as rinfo:
        r.read1(1)
    assert type(rinfo.value) is ValueError
    with pytest.raises(gpipe.ClosedPipeError, match="reader was closed"):
        w.write(b"x")  # fits, but the buffer is gone with the reader


def test_timed_out_write_reports_what_readers_took(bk, buffered):
    r, w = buffered(3)
    assert w.write(b"ab") == 2  # buffered
    # The buffered bytes, then one byte of the write that does not fit
    # (whichever of the two calls comes first).
    task = bk.go(r.read, 3)
    w.settimeout(0.2)
    with pytest.raises(TimeoutError, match="write timed out") as info:
        w.write(b"cdef")
    assert info.value.consumed == 1  # what readers took of it; none was buffered
    assert task.get() == b"abc"
    w.settimeout(None)
    # The withdrawn "def" is never read.
    assert w.write(b"XY") == 2
    w.close()
    assert r.readall() == b"XY"


def test_timed_out_write_that_does_not_fit_is_withdrawn_whole(bk, buffered):
    r, w = buffered(3)
    w.settimeout(0.05)
    with pytest.raises(TimeoutError, match="write timed out") as info:
        w.write(b"abcdef")
    assert info.value.consumed == 0  # never split into the buffer
    w.settimeout(None)
    assert w.write(b"XY") == 2
    w.close()
    assert r.readall() == b"XY"


@pytest.mark.parametrize("bufsize", [1, 7, 4096])
def test_stream_integrity(bk, buffered, bufsize):
    r, w = buffered(bufsize)
    rng = random.Random(bufsize)
    chunks = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))) for _ in range(200)]

    def produce():
        with w:
            for chunk in chunks:
                assert w.write(chunk) == len(chunk)

    task = bk.go(produce)
    out = bytearray()
    buf = bytearray(97)
    while True:
        if rng.random() < 0.5:
            n = r.readinto1(buf)
            out += buf[:n]
        else:
            data = r.read1(rng.randrange(1, 500))
            n = len(data)
            out += data
        if not n:
            break
    task.get()
    assert bytes(out) == b"".join(chunks)


@pytest.mark.parametrize(
    "value,exc,match",
    [
        (-1, ValueError, "bufsize must be >= 0, not -1"),
        (1.5, TypeError, "bufsize must be an int, not 'float'"),
        ("8", TypeError, "bufsize must be an int, not 'str'"),
        (True, TypeError, "bufsize must be an int, not 'bool'"),
    ],
)
def test_bad_bufsize(value, exc, match):
    with pytest.raises(exc, match=match):
        gpipe.pipe(value)


@pytest.mark.parametrize("backend_name", ["gevent", "threading"])
def test_interrupted_read_goes_before_buffered_data(backend_name):
    from gpipe._backends import get_backend

    backend = InterruptAfterWake(get_backend(backend_name))
    core = BufferedPipe(backend, 16)
    r, w = PipeReader(core), PipeWriter(core)
    backend.armed = True
    get = spawn(backend_name, r.read1, 3)
    wait_reader_blocked(backend_name, r)
    assert w.write(b"abc") == 3  # straight into the waiting read
    assert w.write(b"def") == 3  # buffered behind it
    with pytest.raises(Interrupt):
        get()
    assert r.read1(100) == b"abcdef"
    r.close()
    w.close()
