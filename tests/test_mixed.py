"""The gevent backend across native threads: one end in a native OS
thread (running its own hub when it blocks), the other in a greenlet."""

from __future__ import annotations

import hashlib
import threading

import gevent
import pytest

import gpipe

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
CHUNK = 4096


def write_all(w: gpipe.PipeWriter) -> None:
    with w:
        for i in range(0, len(PAYLOAD), CHUNK):
            w.write(PAYLOAD[i : i + CHUNK])


def read_all(r: gpipe.PipeReader, out: list[bytes]) -> None:
    with r:
        out.append(r.readall())


def run_in_thread(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def join_thread(t: threading.Thread) -> None:
    # The greenlet side may need the hub: wait in a way that yields to it.
    with gevent.Timeout(30, AssertionError("native thread did not finish")):
        while t.is_alive():
            gevent.sleep(0.001)


def test_native_thread_writer_greenlet_reader():
    r, w = gpipe.pipe(backend="gevent")
    t = run_in_thread(write_all, w)
    out: list[bytes] = []
    gevent.spawn(read_all, r, out).get(timeout=30)
    join_thread(t)
    assert hashlib.sha256(out[0]).digest() == hashlib.sha256(PAYLOAD).digest()


def test_greenlet_writer_native_thread_reader():
    r, w = gpipe.pipe(backend="gevent")
    out: list[bytes] = []
    t = run_in_thread(read_all, r, out)
    gevent.spawn(write_all, w).get(timeout=30)
    join_thread(t)
    assert out[0] == PAYLOAD


def test_close_from_greenlet_wakes_native_thread():
    r, w = gpipe.pipe(backend="gevent")
    errors: list[BaseException] = []

    def blocked_read() -> None:
        try:
            r.read1(10)
        except BaseException as exc:
            errors.append(exc)

    t = run_in_thread(blocked_read)
    with gevent.Timeout(10, AssertionError("reader never blocked")):
        while r._pipe.waiting(True) < 1:
            gevent.sleep(0.001)
    r.close()
    join_thread(t)
    assert len(errors) == 1 and type(errors[0]) is ValueError, errors
    assert str(errors[0]) == "read from a closed PipeReader"
    w.close()


@pytest.mark.parametrize("threads", [2, 4])
def test_many_native_threads_and_greenlets(threads):
    """Writers in native threads and greenlets at once: each write contiguous."""
    r, w = gpipe.pipe(backend="gevent")
    records = 200

    def writer(tag: int) -> None:
        for _ in range(records):
            w.write(bytes([tag]) * 64)

    ts = [run_in_thread(writer, k) for k in range(threads)]
    gs = [gevent.spawn(writer, threads + k) for k in range(threads)]
    total = 2 * threads * records * 64
    buf = bytearray()
    while len(buf) < total:
        buf += r.read1(64)
    gevent.joinall(gs, timeout=30, raise_error=True)
    for t in ts:
        join_thread(t)
    counts = {}
    for i in range(0, total, 64):
        rec = buf[i : i + 64]
        assert rec == bytes([rec[0]]) * 64  # never interleaved
        counts[rec[0]] = counts.get(rec[0], 0) + 1
    assert counts == dict.fromkeys(range(2 * threads), records)
    r.close()
    w.close()
