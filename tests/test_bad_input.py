"""Bad input to every public function and method, on both backends.

Each case must raise TypeError or ValueError with a message naming the
argument, and leave the pipe usable: a transfer afterwards succeeds.
``docs/bad_input.rst`` lists the same cases; a test checks the table
and this file agree.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gpipe

# (call as shown in the docs, exception, exact message, the call itself)
Case = tuple[str, type, str, Callable[[Any, Any], Any]]

BACKENDS = "backend must be None, 'gevent' or 'threading', not "
TIMEOUT_TYPE = "timeout must be None or a number of seconds, not "
TIMEOUT_VALUE = "timeout must be None or >= 0, not "
CLOSE_ERROR = "close_with_error() takes an exception instance or None, not "


def _released() -> memoryview:
    view = memoryview(bytearray(8))
    view.release()
    return view


CASES: list[Case] = [
    (
        'pipe(backend="fast")',
        ValueError,
        BACKENDS + "'fast'",
        lambda r, w: gpipe.pipe(backend="fast"),
    ),
    (
        "pipe(backend=1)",
        TypeError,
        BACKENDS + "int",
        lambda r, w: gpipe.pipe(backend=1),
    ),
    (
        'pipe(backend=b"gevent")',
        TypeError,
        BACKENDS + "bytes",
        lambda r, w: gpipe.pipe(backend=b"gevent"),
    ),
    (
        'pipe("gevent")',
        TypeError,
        "bufsize must be an int, not 'str'",
        lambda r, w: gpipe.pipe("gevent"),
    ),
    ("pipe(1.5)", TypeError, "bufsize must be an int, not 'float'", lambda r, w: gpipe.pipe(1.5)),
    ("pipe(True)", TypeError, "bufsize must be an int, not 'bool'", lambda r, w: gpipe.pipe(True)),
    ("pipe(-1)", ValueError, "bufsize must be >= 0, not -1", lambda r, w: gpipe.pipe(-1)),
    (
        "reader.read(-2)",
        ValueError,
        "read() size must be >= 0 or -1, not -2",
        lambda r, w: r.read(-2),
    ),
    (
        "reader.read(1.5)",
        TypeError,
        "read() size must be an integer or None, not 'float'",
        lambda r, w: r.read(1.5),
    ),
    (
        'reader.read("3")',
        TypeError,
        "read() size must be an integer or None, not 'str'",
        lambda r, w: r.read("3"),
    ),
    (
        'reader.readinto(b"abc")',
        TypeError,
        "readinto() argument must be a writable bytes-like object",
        lambda r, w: r.readinto(b"abc"),
    ),
    (
        'reader.readinto("abc")',
        TypeError,
        "readinto() argument must be a bytes-like object, not 'str'",
        lambda r, w: r.readinto("abc"),
    ),
    (
        "reader.readinto(5)",
        TypeError,
        "readinto() argument must be a bytes-like object, not 'int'",
        lambda r, w: r.readinto(5),
    ),
    (
        "reader.readinto(None)",
        TypeError,
        "readinto() argument must be a bytes-like object, not 'NoneType'",
        lambda r, w: r.readinto(None),
    ),
    (
        "reader.readinto(memoryview(bytearray(8))[::2])",
        TypeError,
        "readinto() argument must be a C-contiguous buffer",
        lambda r, w: r.readinto(memoryview(bytearray(8))[::2]),
    ),
    (
        "reader.readinto(released_view)",
        ValueError,
        "readinto() argument: operation forbidden on released memoryview object",
        lambda r, w: r.readinto(_released()),
    ),
    (
        "writer.write(released_view)",
        ValueError,
        "write() argument: operation forbidden on released memoryview object",
        lambda r, w: w.write(_released()),
    ),
    (
        "reader.readline(-1.0)",
        TypeError,
        "readline() size must be an integer or None, not 'float'",
        lambda r, w: r.readline(-1.0),
    ),
    (
        "reader.iter_chunks(0)",
        ValueError,
        "iter_chunks() size must be > 0, not 0",
        lambda r, w: r.iter_chunks(0),
    ),
    (
        "reader.iter_chunks(-1)",
        ValueError,
        "iter_chunks() size must be > 0, not -1",
        lambda r, w: r.iter_chunks(-1),
    ),
    (
        "reader.iter_chunks(1.5)",
        TypeError,
        "iter_chunks() size must be an integer, not 'float'",
        lambda r, w: r.iter_chunks(1.5),
    ),
    (
        "reader.iter_chunks(True)",
        TypeError,
        "iter_chunks() size must be an integer, not 'bool'",
        lambda r, w: r.iter_chunks(True),
    ),
    (
        'writer.write("abc")',
        TypeError,
        "write() argument must be a bytes-like object, not 'str'",
        lambda r, w: w.write("abc"),
    ),
    (
        "writer.write(5)",
        TypeError,
        "write() argument must be a bytes-like object, not 'int'",
        lambda r, w: w.write(5),
    ),
    (
        "writer.write(None)",
        TypeError,
        "write() argument must be a bytes-like object, not 'NoneType'",
        lambda r, w: w.write(None),
    ),
    (
        "writer.write([1, 2])",
        TypeError,
        "write() argument must be a bytes-like object, not 'list'",
        lambda r, w: w.write([1, 2]),
    ),
    (
        'end.settimeout("1")',
        TypeError,
        TIMEOUT_TYPE + "'str'",
        lambda r, w: r.settimeout("1"),
    ),
    (
        "end.settimeout(True)",
        TypeError,
        TIMEOUT_TYPE + "'bool'",
        lambda r, w: w.settimeout(True),
    ),
    (
        "end.settimeout(1j)",
        TypeError,
        TIMEOUT_TYPE + "'complex'",
        lambda r, w: r.settimeout(1j),
    ),
    (
        "end.settimeout(-1)",
        ValueError,
        TIMEOUT_VALUE + "-1",
        lambda r, w: w.settimeout(-1),
    ),
    (
        'end.settimeout(float("nan"))',
        ValueError,
        TIMEOUT_VALUE + "nan",
        lambda r, w: r.settimeout(math.nan),
    ),
    (
        'end.settimeout(float("-inf"))',
        ValueError,
        TIMEOUT_VALUE + "-inf",
        lambda r, w: w.settimeout(-math.inf),
    ),
    (
        'end.close_with_error("error")',
        TypeError,
        CLOSE_ERROR + "'str'",
        lambda r, w: r.close_with_error("error"),
    ),
    (
        "end.close_with_error(ValueError)",
        TypeError,
        CLOSE_ERROR + "'type'",
        lambda r, w: w.close_with_error(ValueError),
    ),
    (
        "end.close_with_error(5)",
        TypeError,
        CLOSE_ERROR + "'int'",
        lambda r, w: r.close_with_error(5),
    ),
    (
        "spawn_producer(5)",
        TypeError,
        "fn must be callable, not 'int'",
        lambda r, w: gpipe.spawn_producer(5),
    ),
    (
        "spawn_consumer(None)",
        TypeError,
        "fn must be callable, not 'NoneType'",
        lambda r, w: gpipe.spawn_consumer(None),
    ),
    (
        'consumer_writer.join("x")',
        TypeError,
        TIMEOUT_TYPE + "'str'",
        lambda r, w: consumer_join("x"),
    ),
    (
        "consumer_writer.join(-1)",
        ValueError,
        TIMEOUT_VALUE + "-1",
        lambda r, w: consumer_join(-1),
    ),
    (
        'consumer_writer.join(float("nan"))',
        ValueError,
        TIMEOUT_VALUE + "nan",
        lambda r, w: consumer_join(math.nan),
    ),
]


def consumer_join(timeout: Any) -> None:
    """A bad join() leaves the consumer's writer open and usable."""
    cw = gpipe.spawn_consumer(lambda reader: reader.read())
    try:
        cw.join(timeout)
    finally:
        assert not cw.closed, "a rejected join() closed the writer"
        assert cw.write(b"still usable") == 12
        assert cw.join(10) == b"still usable"


def transfer(bk: Any, r: gpipe.PipeReader, w: gpipe.PipeWriter) -> None:
    """The pipe still works: a write meets a read."""
    task = bk.go(w.write, b"ok")
    assert r.read1(10) == b"ok"
    assert task.get() == 2


@pytest.mark.parametrize("call,exc,message,fn", CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    bk: Any, call: str, exc: type, message: str, fn: Callable[[Any, Any], Any]
) -> None:
    r, w = bk.pipe()
    r.settimeout(7.0)
    w.settimeout(None)
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        fn(r, w)
    # Nothing changed: the timeouts stand, both ends are open, data flows.
    assert r.gettimeout() == 7.0 and w.gettimeout() is None
    assert not r.closed and not w.closed
    transfer(bk, r, w)
    # A fresh pipe works too (a bad pipe() call left nothing behind).
    r2, w2 = bk.pipe()
    transfer(bk, r2, w2)


def test_bad_read_size_beside_a_pending_write(bk: Any) -> None:
    """A rejected read takes nothing from a write waiting in the pipe."""
    r, w = bk.pipe()
    task = bk.go(w.write, b"abcdef")
    bk.wait_blocked(w)
    for size in (-2, 1.5, "3"):
        with pytest.raises((TypeError, ValueError)):
            r.read1(size)
    assert r.read1(100) == b"abcdef"
    assert task.get() == 6


# makefile() arguments that the io classes reject after gpipe's own checks
# passed: (end, args, kwargs, exception). The messages are CPython's own.
MAKEFILE_REJECTED = [
    ("r", ("r",), {"newline": "x"}, ValueError),
    ("w", ("w",), {"newline": "x"}, ValueError),
    ("r", ("r",), {"newline": 5}, TypeError),
    ("r", ("r",), {"encoding": "bogus"}, LookupError),
    ("w", ("w",), {"encoding": "bogus"}, LookupError),
    ("r", ("r",), {"encoding": "rot13"}, LookupError),  # not a text encoding
    ("r", ("r",), {"encoding": 5}, TypeError),
    ("w", ("w",), {"errors": 5}, TypeError),
    ("w", ("wb", 2**62), {}, MemoryError),
    ("w", ("w", 2**62), {}, MemoryError),
    ("w", ("wb", 2**64), {}, OverflowError),
    # Rejected by gpipe before any file is built.
    ("r", ("w",), {}, ValueError),
    ("w", ("wb",), {"encoding": "utf-8"}, ValueError),
    ("r", ("r", 0), {}, ValueError),
    ("w", ("wb", 1.5), {}, TypeError),
]


@contextlib.contextmanager
def nothing_reported() -> Iterator[None]:
    """Fail if the block emits a warning or an "Exception ignored" report.

    Warnings are errors inside; a finaliser's warning or error reaches
    sys.unraisablehook, which records it here instead of printing it.
    """
    reported: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = reported.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not [(u.exc_type, u.exc_value, u.object) for u in reported]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "end,args,kwargs,exc",
    MAKEFILE_REJECTED,
    ids=[f"{e}.makefile{a!r}{k or ''}" for e, a, k, _ in MAKEFILE_REJECTED],
)
def test_rejected_makefile_leaves_the_end_open(
    bk: Any, end: str, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type
) -> None:
    """As socket.makefile: a makefile() that raises takes nothing from the end.

    The half-built file is collected at once (the exception's traceback
    is dropped in the block): it neither closes the end nor warns.
    """
    r, w = bk.pipe()
    with nothing_reported():
        try:
            (r if end == "r" else w).makefile(*args, **kwargs)
        except exc:
            pass
        else:
            pytest.fail(f"makefile{args!r} {kwargs} did not raise {exc.__name__}")
    assert not r.closed and not w.closed
    transfer(bk, r, w)
    # The end still makes files, which still carry the pipe's data.
    with nothing_reported():
        rf, wf = r.makefile("rb"), w.makefile("w")
        task = bk.go(lambda: wf.write("still usable") and wf.close())
        assert rf.read() == b"still usable"
        task.get()
        rf.close()


def test_reader_makefile_takes_any_buffer_size(bk: Any) -> None:
    """A reader is a binary file already: makefile("rb") is the reader
    itself and makefile("r") wraps it with no buffer, so no buffer is built and
    no size is too large (a writer's makefile() rejects these sizes)."""
    r, w = bk.pipe()
    with nothing_reported():
        for size in (2**62, 2**64):
            assert r.makefile("rb", size) is r
        text = r.makefile("r", 2**62)
        assert text.buffer is r
        task = bk.go(w.write, b"still usable\n")
        assert text.readline() == "still usable\n"
        assert task.get() == 13
        text.close()
    assert r.closed


DOC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "bad_input.rst"
)


def test_docs_table_lists_every_case() -> None:
    """docs/bad_input.rst has one row per case, with the same text."""
    with open(DOC, encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("   * - ``")]
    listed = {row[len("   * - ") :].strip() for row in rows}
    expected = {f"``{call}``" for call, *_ in CASES}
    assert listed == expected
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    for _, exc, message, _ in CASES:
        assert f"     - ``{exc.__name__}``\n     - ``{message}``\n" in text, message
