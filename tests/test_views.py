"""A caller's buffer, argument or error misbehaving fails that caller's
call alone: the call on the other side of the pipe goes on unaffected.

* A memoryview its owner releases while a write or a ``readinto`` on it
  is blocked (another greenlet or thread leaves the ``with memoryview()``
  block that made it). The pipe works on a view of its own, which keeps
  the buffer alive: the release succeeds, and the call goes on as if
  nothing happened, its bytes intact; neither side fails.
* ``readline(size)`` with a size beyond ``sys.maxsize``: no limit, as
  :mod:`_pyio`'s ``BytesIO.readline`` has it (the C ``io`` classes raise
  :exc:`OverflowError`), and never an error in the writer's call; and
  so for ``read(size)`` and ``read1(size)``, on both builds.
* A close error whose class refuses attribute assignment: writers still
  get that very error (the pipe cannot tell them ``consumed`` on it).

Only the public API is used, so that these tests hold for any core.
"""

from __future__ import annotations

import re
import time
from typing import Any

import gevent
import pytest

from .conftest import Harness

# Short enough that a wedged call fails the test quickly, long enough
# that no passing call comes near it.
TIMEOUT = 5.0
QUICK = 2.0  # how long a call that must not wait for its timeout may take

pytestmark = pytest.mark.timeout(60)


def read1(reader: Any, n: int) -> bytes:
    """At most one write's bytes (``read1``; ``read`` where there is none)."""
    return bytes(getattr(reader, "read1", reader.read)(n))


def waiting(end: Any) -> int | None:
    """How many calls block on *end*'s side, as its ``repr`` says."""
    found = re.search(r"waiting=(\d+)", repr(end))
    return int(found.group(1)) if found else None


def wait_blocked(bk: Harness, end: Any) -> None:
    """Wait until a call blocks on *end*; fail after TIMEOUT seconds."""
    sleep = gevent.sleep if bk.name == "gevent" else time.sleep
    deadline = time.monotonic() + TIMEOUT
    while True:
        count = waiting(end)
        if count is None:  # a repr without the count: give the call time
            sleep(0.05)
            return
        if count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no call blocked on {end!r}")
        sleep(0.001)


def ends(bk: Harness) -> tuple[Any, Any]:
    r, w = bk.pipe()
    r.settimeout(TIMEOUT)
    w.settimeout(TIMEOUT)
    return r, w


def released_error(exc: BaseException) -> bool:
    """A clear error for a call whose buffer was released under it."""
    return isinstance(exc, (ValueError, BufferError)) and "released" in str(exc)


def outcome(task: Any) -> Any:
    """The task's result, or the exception it raised (returned, not raised)."""
    try:
        return task.get(QUICK)
    except BaseException as exc:
        return exc


# -- a memoryview released while a call on it waits --------------------------------------------


def test_a_write_view_released_while_blocked_is_written_whole(bk):
    r, w = ends(bk)
    with memoryview(bytearray(b"withdrawn")) as view:
        task = bk.go(w.write, view)
        wait_blocked(bk, w)
    assert "released" in repr(view)  # the caller's view is gone
    assert read1(r, 100) == b"withdrawn"
    assert task.get() == len(b"withdrawn")
    task = bk.go(w.write, b"next")
    assert read1(r, 100) == b"next"
    assert task.get() == 4


def test_a_readinto_target_released_while_blocked_is_filled(bk):
    r, w = ends(bk)
    target = bytearray(16)
    with memoryview(target) as view:
        task = bk.go(r.readinto1, view)
        wait_blocked(bk, r)
    assert "released" in repr(view)
    assert w.write(b"kept") == 4
    assert task.get() == 4
    assert target[:4] == b"kept"  # the buffer itself was filled
    task = bk.go(w.write, b"for the next read")
    assert read1(r, 100) == b"for the next read"
    assert task.get() == len(b"for the next read")


@pytest.mark.parametrize("method", ["readinto", "readinto1"])
def test_a_bytearray_cannot_be_resized_under_a_blocked_readinto(bk, method):
    """The call holds the bytearray as a memoryview of it would: resizing
    it meanwhile raises BufferError in the resizer, and the read goes on
    into the very same bytes; once the call has returned, it resizes."""
    r, w = ends(bk)
    target = bytearray(4)
    task = bk.go(getattr(r, method), target)
    wait_blocked(bk, r)
    with pytest.raises(BufferError):
        target.extend(b"more")
    with pytest.raises(BufferError):
        del target[:]
    assert w.write(b"kept") == 4
    assert task.get() == 4
    assert target == b"kept"
    target.extend(b"!")  # no longer held
    assert target == b"kept!"


def test_a_view_released_before_the_call_is_refused_at_once(bk):
    r, w = ends(bk)
    view = memoryview(bytearray(b"gone"))
    view.release()
    with pytest.raises(ValueError, match="released"):
        w.write(view)
    with pytest.raises(ValueError, match="released"):
        r.readinto(view)
    # Nothing was left behind: a transfer still works.
    task = bk.go(w.write, b"ok")
    assert read1(r, 10) == b"ok"
    assert task.get() == 2


# -- readline() with a size beyond sys.maxsize -------------------------------------------------


@pytest.mark.parametrize("size", [2**63, 2**70, 10**100])
def test_readline_beyond_maxsize_has_no_limit(bk, size):
    r, w = ends(bk)
    # A line spanning writes takes the slow path, a whole one the fast path.
    task = bk.go(lambda: (w.write(b"first"), w.write(b" line\nsecond line\n")))
    assert r.readline(size) == b"first line\n"
    assert r.readline(size) == b"second line\n"
    assert task.get() == (5, 18)


def test_readline_beyond_maxsize_never_fails_the_writer(bk):
    r, w = ends(bk)
    reading = bk.go(r.readline, 2**70)
    wait_blocked(bk, r)
    try:
        # The reader waits first: the writer serves its request.
        writing = bk.go(w.write, b"ab\ncd\n")
        assert outcome(reading) == b"ab\n"
        assert r.readline(2**70) == b"cd\n"
        assert outcome(writing) == 6
    except OverflowError as exc:
        pytest.fail(f"the reader's size failed the writer: {exc!r}")


@pytest.mark.parametrize("size", [2**63, 10**100])
def test_read_and_read1_beyond_maxsize_have_no_limit(bk, size):
    """As readline(): as -1, on both builds (no buffer holds that many)."""
    r, w = ends(bk)
    task = bk.go(lambda: (w.write(b"one"), w.write(b"two"), w.write(b"three"), w.close()))
    assert r.read1(size) == b"one"
    assert r.read(size) == b"twothree"
    assert task.get() == (3, 3, 5, None)


# -- a close error that refuses attributes ------------------------------------------------------


class Stubborn(Exception):
    """An error whose instances refuse every attribute assignment."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise RuntimeError(f"{type(self).__name__} takes no attribute {name!r}")


def test_a_stubborn_close_error_reaches_a_later_write(bk):
    r, w = ends(bk)
    error = Stubborn("reader gave up")
    r.close_with_error(error)
    with pytest.raises(Stubborn) as info:
        w.write(b"x")
    assert info.value is error
    with pytest.raises(Stubborn):
        w.write(b"again")


def test_a_stubborn_close_error_reaches_a_blocked_write(bk):
    r, w = ends(bk)
    error = Stubborn("reader gave up")
    task = bk.go(w.write, b"blocked")
    wait_blocked(bk, w)
    r.close_with_error(error)
    with pytest.raises(Stubborn) as info:
        task.get()
    assert info.value is error


def test_a_stubborn_close_error_reaches_a_partly_read_write(bk):
    """Readers took part of the write, then failed: the write raises that
    very error (which cannot carry ``consumed``), and so does the next."""
    r, w = ends(bk)
    error = Stubborn("reader gave up")
    task = bk.go(w.write, b"0123456789")
    wait_blocked(bk, w)
    assert read1(r, 4) == b"0123"
    r.close_with_error(error)
    result = outcome(task)
    assert result is error
    with pytest.raises(Stubborn):
        w.write(b"more")
