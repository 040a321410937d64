"""The pipe's mutex: the compiled build's C-level Mutex behaves as the
pure build's :class:`_thread.RLock`, for every way the core uses it
(``with``, ``acquire()``, ``release()``, ``_is_owned()``).

Each test runs on both locks; the Mutex where the extension was built.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from gpipe._backends import _original

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 5.0  # a thread that must finish does so well within this


def _mutex_class() -> Any:
    try:
        return importlib.import_module("gpipe._gpipe_c_mutex").Mutex
    except ImportError:
        return None


MUTEX = _mutex_class()


@pytest.fixture(
    params=[
        pytest.param(_original("_thread", "RLock"), id="RLock"),
        pytest.param(
            MUTEX,
            id="Mutex",
            marks=pytest.mark.skipif(MUTEX is None, reason="the extension was not built"),
        ),
    ]
)
def lock(request: pytest.FixtureRequest) -> Any:
    return request.param()


# Native threads and locks, even in a monkey-patched process.
_start_thread = _original("_thread", "start_new_thread")
_native_lock = _original("_thread", "allocate_lock")


def start(fn: Any) -> Any:
    """Run *fn* in a native thread; a lock that is released once it returned."""
    finished = _native_lock()
    finished.acquire()

    def run() -> None:
        try:
            fn()
        finally:
            finished.release()

    _start_thread(run, ())
    return finished


def in_thread(fn: Any) -> Any:
    """Run *fn* in a native thread, return its result."""
    box: list[Any] = []
    finished = start(lambda: box.append(fn()))
    assert finished.acquire(True, TIMEOUT), "the thread is stuck"
    return box[0]


def test_the_holder_can_take_it_again_and_gives_it_back_as_often(lock):
    assert not lock._is_owned()
    lock.acquire()
    with lock:
        assert lock._is_owned()
        lock.acquire()
        lock.release()
    assert lock._is_owned()  # still held once
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError):
        lock.release()


def test_another_thread_neither_owns_nor_releases_it(lock):
    with lock:
        assert in_thread(lock._is_owned) is False

        def release() -> str:
            try:
                lock.release()
            except RuntimeError:
                return "refused"
            return "released"

        assert in_thread(release) == "refused"
        assert lock._is_owned()


def test_another_thread_waits_until_it_is_free(lock):
    order: list[str] = []
    started = _native_lock()
    started.acquire()

    def take() -> None:
        started.release()
        with lock:
            order.append("other")

    lock.acquire()
    finished = start(take)
    assert started.acquire(True, TIMEOUT)
    # It is blocked on the lock: not finished a while later.
    assert not finished.acquire(True, 0.05)
    order.append("holder")
    lock.release()
    assert finished.acquire(True, TIMEOUT), "the thread is stuck"
    assert order == ["holder", "other"]
    assert lock.acquire()  # free again
    lock.release()


def test_an_error_in_a_with_block_releases_it(lock):
    with pytest.raises(KeyError):
        with lock:
            raise KeyError("x")
    assert not lock._is_owned()
    assert in_thread(lambda: lock.acquire() and (lock.release() or True))


def test_threads_that_contend_for_it_take_turns(lock):
    """Native threads take it many times over, each letting the others
    run while it holds it (the GIL is released, as a finaliser's Python
    code may): never two inside at once, and none left waiting."""
    threads, rounds = 4, 300
    sleep = _original("time", "sleep")
    inside: list[int] = []
    overlaps: list[int] = []
    done: list[int] = []

    def work() -> None:
        for _ in range(rounds):
            with lock:
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                with lock:  # again, as a finaliser's close may
                    sleep(0)  # the others run, and find it held
                inside.pop()
        done.append(1)

    finished = [start(work) for _ in range(threads)]
    for each in finished:
        assert each.acquire(True, TIMEOUT * 4), "a thread is stuck"
    assert overlaps == []
    assert len(done) == threads
    assert not lock._is_owned()
    assert in_thread(lambda: lock.acquire() and (lock.release() or True))


@pytest.mark.skipif(MUTEX is None, reason="the extension was not built")
def test_the_compiled_core_uses_the_mutex():
    import gpipe

    if not gpipe.COMPILED:
        pytest.skip("the pure build runs")
    r, w = gpipe.pipe()
    assert type(r._pipe._mutex) is MUTEX
