"""Go's ``src/io/pipe_test.go``, ported test by test, on both backends.

Each test's docstring names the Go test it ports. Go's ``EOF`` is
``b""`` (or ``0`` from ``readinto``), ``ErrClosedPipe`` is
:exc:`gpipe.ClosedPipeError`, ``CloseWithError(nil)`` is
``close_with_error(None)``.
"""

from __future__ import annotations

import pytest

import gpipe


class ShortWriteError(Exception):
    """Stands in for Go's ErrShortWrite: any error value will do."""


def check_write(w: gpipe.PipeWriter, data: bytes) -> int:
    n = w.write(data)
    assert n == len(data)
    return n


def test_pipe1(bk):
    """TestPipe1: a single read/write pair."""
    r, w = bk.pipe()
    task = bk.go(check_write, w, b"hello, world")
    buf = bytearray(64)
    n = r.readinto1(buf)
    assert n == 12
    assert buf[:n] == b"hello, world"
    task.get()
    r.close()
    w.close()


def test_pipe2(bk):
    """TestPipe2: a sequence of read/write pairs."""
    r, w = bk.pipe()

    def reader():
        counts = []
        buf = bytearray(64)
        while True:
            n = r.readinto1(buf)
            counts.append(n)
            if n == 0:
                return counts

    task = bk.go(reader)
    buf = bytes(64)
    sizes = [5 + i * 10 for i in range(5)]
    for size in sizes:
        assert w.write(buf[:size]) == size
    w.close()
    # Every write was read by exactly one read of the same size; then EOF.
    assert task.get() == [*sizes, 0]


def test_pipe3(bk):
    """TestPipe3: a large write that requires multiple reads to satisfy."""
    r, w = bk.pipe()
    wdat = bytes(range(128))

    def writer():
        n = w.write(wdat)
        w.close()
        return n

    task = bk.go(writer)
    rdat = bytearray(1024)
    view = memoryview(rdat)
    tot = 0
    n = 1
    while n <= 256:
        nn = r.readinto1(view[tot : tot + n])
        # Only the final two reads are short: 1 byte, then 0 (EOF).
        expect = {128: 1, 256: 0}.get(n, n)
        assert nn == expect, f"read {n}: expected {expect}, got {nn}"
        tot += nn
        n *= 2
    assert task.get() == 128
    assert tot == 128
    assert rdat[:128] == wdat


# Go's pipeTests table: (async, err, closeWithError).
PIPE_TESTS = [
    (True, None, False),
    (True, None, True),
    (True, ShortWriteError("short write"), True),
    (False, None, False),
    (False, None, True),
    (False, ShortWriteError("short write"), True),
]
PIPE_TEST_IDS = [f"async={a}-err={e is not None}-withError={c}" for a, e, c in PIPE_TESTS]


def delay_close(bk, end, err, close_with_error, wait_for_call):
    """Close *end* once the other side's call is blocked (Go: sleep 1ms)."""
    if wait_for_call is not None:
        bk.wait_blocked(wait_for_call)
    if close_with_error:
        assert end.close_with_error(err) is None
    else:
        assert end.close() is None


@pytest.mark.parametrize("is_async,err,with_error", PIPE_TESTS, ids=PIPE_TEST_IDS)
def test_pipe_read_close(bk, is_async, err, with_error):
    """TestPipeReadClose: read after (sync) or during (async) writer close."""
    r, w = bk.pipe()
    if is_async:
        task = bk.go(delay_close, bk, w, err, with_error, r)
    else:
        delay_close(bk, w, err, with_error, None)
    buf = bytearray(64)
    if err is None:
        assert r.readinto1(buf) == 0  # EOF
    else:
        with pytest.raises(ShortWriteError) as info:
            r.readinto1(buf)
        assert info.value is err
    if is_async:
        task.get()
    assert r.close() is None


def test_pipe_read_close2(bk):
    """TestPipeReadClose2: close on the read side during a read."""
    r, w = bk.pipe()
    task = bk.go(delay_close, bk, r, None, False, r)
    with pytest.raises(ValueError, match="read from a closed PipeReader") as info:
        r.readinto1(bytearray(64))
    assert type(info.value) is ValueError  # Go's ErrClosedPipe, as a closed file's error
    task.get()
    w.close()


@pytest.mark.parametrize("is_async,err,with_error", PIPE_TESTS, ids=PIPE_TEST_IDS)
def test_pipe_write_close(bk, is_async, err, with_error):
    """TestPipeWriteClose: write after (sync) or during (async) reader close."""
    r, w = bk.pipe()
    if is_async:
        task = bk.go(delay_close, bk, r, err, with_error, w)
    else:
        delay_close(bk, r, err, with_error, None)
    expect = ShortWriteError if err is not None else gpipe.ClosedPipeError
    with pytest.raises(expect) as info:
        w.write(b"hello, world")
    if err is not None:
        assert info.value is err
    # Go checks n == 0: no reader took any of it.
    assert info.value.consumed == 0
    if is_async:
        task.get()
    assert w.close() is None


def read_full(r: gpipe.PipeReader, size: int) -> bytes:
    """Go's io.ReadFull: read until *size* bytes or EOF."""
    out = b""
    while len(out) < size:
        chunk = r.read1(size - len(out))
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize(
    "empty", [b"", bytearray(), memoryview(b"")], ids=["bytes", "bytearray", "memoryview"]
)
def test_write_empty(bk, empty):
    """TestWriteEmpty / TestWriteNil: an empty write, then close, gives EOF."""
    r, w = bk.pipe()

    def writer():
        n = w.write(empty)
        w.close()
        return n

    task = bk.go(writer)
    assert read_full(r, 2) == b""
    assert task.get() == 0
    r.close()


def test_write_after_writer_close(bk):
    """TestWriteAfterWriterClose: a write after the writer's own close fails."""
    r, w = bk.pipe()

    def writer():
        w.write(b"hello")
        w.close()
        with pytest.raises(gpipe.ClosedPipeError, match="write to a closed PipeWriter"):
            w.write(b"world")

    task = bk.go(writer)
    assert read_full(r, 100) == b"hello"
    task.get()


class TestError1(Exception):
    __test__ = False


class TestError2(Exception):
    __test__ = False


def test_pipe_close_error(bk):
    """TestPipeCloseError: the first close error wins, on both ends."""
    r, w = bk.pipe()
    e1 = TestError1()
    r.close_with_error(e1)
    with pytest.raises(TestError1) as info:
        w.write(b"")
    assert info.value is e1
    r.close_with_error(TestError2())
    with pytest.raises(TestError1) as info:
        w.write(b"x")
    assert info.value is e1

    r, w = bk.pipe()
    w.close_with_error(e1)
    with pytest.raises(TestError1) as info:
        r.read(0)
    assert info.value is e1
    w.close_with_error(TestError2())
    with pytest.raises(TestError1):
        r.read1(1)


INPUT = b"0123456789abcdef"
COUNT = 8
READ_SIZE = 2


def test_pipe_concurrent_write(bk):
    """TestPipeConcurrent/Write: each write is gated, so it stays contiguous."""
    r, w = bk.pipe()
    tasks = [bk.go(w.write, INPUT) for _ in range(COUNT)]
    buf = bytearray(COUNT * len(INPUT))
    view = memoryview(buf)
    for i in range(0, len(buf), READ_SIZE):
        assert r.readinto1(view[i : i + READ_SIZE]) == READ_SIZE
    for task in tasks:
        assert task.get() == len(INPUT)
    assert bytes(buf) == INPUT * COUNT


def sort_in_groups(data: bytes, size: int) -> list[bytes]:
    return sorted(data[i : i + size] for i in range(0, len(data), size))


def test_pipe_concurrent_read(bk):
    """TestPipeConcurrent/Read: parallel reads each get a whole group."""
    r, w = bk.pipe()
    readers = [bk.go(r.read1, READ_SIZE) for _ in range(COUNT * len(INPUT) // READ_SIZE)]
    for _ in range(COUNT):
        assert w.write(INPUT) == len(INPUT)
    got = b"".join(task.get() for task in readers)
    # Reads are independent: the output is a permutation of the input in
    # READ_SIZE groups.
    assert sort_in_groups(got, READ_SIZE) == sort_in_groups(INPUT * COUNT, READ_SIZE)
