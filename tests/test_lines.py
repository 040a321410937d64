"""Lines from the raw reader: readline, readlines and iteration behave as
for io.BytesIO over the same bytes, however the writes cut the stream,
and mixing them with other reads loses and reorders nothing."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import WAIT, Harness

# Small alphabets make lines of every length, empty ones, and lines that
# span writes.
chunks = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"\n")), max_size=12)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("readline"), st.integers(-2, 9)),
        st.tuples(st.just("read"), st.integers(1, 9)),
        st.tuples(st.just("iter"), st.integers(0, 5)),
        st.tuples(st.just("readlines"), st.integers(-1, 20)),
    ),
    max_size=12,
)


def apply(f, op):
    kind, arg = op
    if kind == "readline":
        return f.readline(arg)
    if kind == "read":
        return f.read(arg)
    if kind == "readlines":
        return f.readlines(arg)
    # Take up to *arg* lines from a fresh iterator, then drop it.
    return list(itertools.islice(iter(f), arg))


@pytest.mark.parametrize("backend", ["gevent", "threading"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=chunks, steps=ops)
def test_lines_behave_as_for_bytesio(backend, writes, steps):
    bk = Harness(backend)
    r, w = bk.pipe()
    r.settimeout(WAIT)
    w.settimeout(WAIT)

    def produce():
        for chunk in writes:
            w.write(chunk)
        w.close()

    task = bk.go(produce)
    model = io.BytesIO(b"".join(writes))
    try:
        for step in steps:
            got = apply(r, step)
            if step[0] == "read":
                # A read returns bytes of one write at most: the model gives
                # the same number of bytes, and EOF only at EOF.
                assert got == model.read(len(got)) and (got or not model.read(1)), step
            else:
                assert got == apply(model, step), step
        # Whatever is left, in order, then EOF.
        assert r.read() == model.read()
        task.get()
    finally:
        bk.close_all()


def write_all(bk, w, data: bytes, size: int):
    def produce():
        for i in range(0, len(data), size):
            w.write(data[i : i + size])
        w.close()

    return bk.go(produce)


def test_iteration_over_many_writes(bk):
    r, w = bk.pipe()
    lines = [b"%d %s\n" % (i, b"x" * (i % 97)) for i in range(3000)]
    data = b"".join(lines) + b"no newline at the end"
    task = write_all(bk, w, data, 4096)
    assert list(r) == [*lines, b"no newline at the end"]
    task.get()


def test_writes_of_memoryview_slices(bk):
    r, w = bk.pipe()
    data = b"".join(b"line %d\n" % i for i in range(500))
    big = memoryview(bytearray(b"#" * 10 + data + b"#" * 10))

    def produce():
        view = big[10 : 10 + len(data)]
        for i in range(0, len(data), 333):
            w.write(view[i : i + 333])
        w.close()

    task = bk.go(produce)
    assert b"".join(r) == data
    task.get()


def test_breaking_out_of_a_loop_loses_nothing(bk):
    r, w = bk.pipe()
    data = b"".join(b"%d\n" % i for i in range(1000))
    task = write_all(bk, w, data, 1000)
    seen = []
    for line in r:
        seen.append(line)
        if len(seen) == 10:
            break
    # The lines the loop took ahead came back, in front.
    assert b"".join(seen) + r.read() == data
    task.get()


def test_reading_inside_the_loop_keeps_the_order(bk):
    r, w = bk.pipe()
    data = b"".join(b"%03d\n" % i for i in range(300))
    task = write_all(bk, w, data, 2000)
    out = []
    for line in r:
        out.append(line)
        out.append(r.read1(4))  # the next line, by another kind of read
    assert b"".join(out) == data
    task.get()


def test_readline_limits_and_eof_in_the_middle_of_a_line(bk):
    r, w = bk.pipe()
    task = write_all(bk, w, b"abcdef\ngh", 3)
    assert r.readline(2) == b"ab"
    assert r.readline(None) == b"cdef\n"
    assert r.readline(0) == b""
    assert r.readline() == b"gh"  # EOF in the middle of a line
    assert r.readline() == b""
    task.get()


def test_readline_checks_its_argument(bk):
    r, w = bk.pipe()
    with pytest.raises(TypeError, match="readline\\(\\) size must be an integer or None"):
        r.readline("3")


def test_an_interrupted_readline_consumes_nothing(bk):
    r, w = bk.pipe()
    task = bk.go(w.write, b"first half, ")
    r.settimeout(0.2)
    with pytest.raises(TimeoutError):
        r.readline()  # the line never ends within the timeout
    task.get()
    r.settimeout(WAIT)
    task = write_all(bk, w, b"second half\n", 5)
    assert r.readline() == b"first half, second half\n"
    task.get()


def test_the_reader_closed_during_iteration(bk):
    r, w = bk.pipe()
    task = bk.go(w.write, b"one\ntwo\nthree\n")
    bk.wait_blocked(w)
    it = iter(r)
    assert next(it) == b"one\n"
    assert task.get() == 14  # the iterator took all three lines at once
    r.close()  # the lines taken ahead are dropped with the rest
    with pytest.raises(ValueError, match="read from a closed PipeReader") as info:
        next(it)
    assert type(info.value) is ValueError


def test_readlines_stops_once_the_hint_is_reached(bk):
    """As io.BytesIO, which stops at ``total >= hint`` (IOBase's default
    goes one line further)."""
    r, w = bk.pipe()
    data = b"\na\nbc\nd"
    task = write_all(bk, w, data, 2)
    model = io.BytesIO(data)
    for hint in (1, 2, 1, 0):
        assert r.readlines(hint) == model.readlines(hint), hint
    assert r.read() == b""
    task.get()
    with pytest.raises(TypeError, match="readlines\\(\\) hint must be an integer or None"):
        r.readlines("1")


def test_an_interrupted_readlines_consumes_nothing(bk):
    r, w = bk.pipe()
    task = bk.go(w.writelines, [b"a\n", b"b\n"])  # two writes, and no close
    r.settimeout(0.2)
    with pytest.raises(TimeoutError):
        r.readlines()  # got two lines, then waited for more
    task.get()
    r.settimeout(WAIT)
    task = write_all(bk, w, b"c\n", 1)
    assert r.readlines() == [b"a\n", b"b\n", b"c\n"]
    task.get()


def test_readlines_cut_off_by_an_error_leaves_the_bytes(bk):
    r, w = bk.pipe()
    boom = LookupError("boom")

    def produce():
        w.writelines([b"a\n", b"b\npart"])
        w.close_with_error(boom)

    task = bk.go(produce)
    with pytest.raises(LookupError) as info:
        r.readlines()
    assert info.value is boom
    task.get()
    # As after read(): the bytes written before the error are still there.
    assert r.read1(100) == b"a\nb\npart"


def test_iteration_goes_on_after_a_step_raised(bk):
    """As a file's: a timeout does not end the iterator (which ended
    quietly, as if at EOF, with the rest of the stream unread)."""
    r, w = bk.pipe()
    task = bk.go(w.write, b"first\n")
    it = iter(r)
    assert next(it) == b"first\n"
    task.get()
    r.settimeout(0.2)
    with pytest.raises(TimeoutError):
        next(it)
    r.settimeout(WAIT)
    task = write_all(bk, w, b"second\n", 3)
    assert list(it) == [b"second\n"]
    task.get()


def test_iteration_raises_a_close_error_at_every_step(bk):
    r, w = bk.pipe()
    boom = LookupError("boom")

    def produce():
        w.write(b"a\nb")
        w.close_with_error(boom)

    task = bk.go(produce)
    it = iter(r)
    assert next(it) == b"a\n"
    for _ in range(2):  # never a StopIteration: the stream was cut off
        with pytest.raises(LookupError) as info:
            next(it)
        assert info.value is boom
    task.get()


def test_iteration_raises_a_writers_own_pep_479_error_as_it_is(bk):
    """A RuntimeError from a generator that let StopIteration out is the
    writer's error, not one that the iteration makes of a StopIteration."""
    r, w = bk.pipe()

    def rows():
        it = iter([b"a\n"])
        while True:
            yield next(it)  # RuntimeError at the end, by PEP 479

    def produce():
        with w:
            for row in rows():
                w.write(row)

    task = bk.go(produce)
    lines = []
    with pytest.raises(RuntimeError) as info:
        for line in r:
            lines.append(line)
    assert lines == [b"a\n"]
    with pytest.raises(RuntimeError) as own:
        task.get()
    assert info.value is own.value
