"""No growth in live objects, greenlets, threads, hub callbacks or memory.

Each test runs its workload in a fresh interpreter (``python -m
tests.test_leaks BACKEND N``; monkey-patched first if this process
was): 10,000 pipes (100,000 in the soak env) are created, used in every way (handoffs in both
directions, timeouts, ``gevent.Timeout``, kills, closes with and
without an error, ends collected unclosed) and closed; and as many
``spawn_producer``/``spawn_consumer`` runs are cancelled midway. The child
measures after a warm-up and again at the end, after a full garbage
collection, and reports the growth as JSON. The bounds are far below
what a leak of one object, or of 8 bytes, per pipe would cause
(10,000 objects; 80 KB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

# 10,000 pipes in every test env; the soak env asks for 100,000.
PIPES = int(os.environ.get("GPIPE_LEAK_PIPES", "10000"))
WARMUP = 2000
# Growth over the second half of the pipes: the first half absorbs one-time
# costs (caches, interned names, a free list grown once), which are not
# leaks but could exceed a per-pipe bound on their own.
MAX_OBJECTS = 200  # growth of live GC-tracked objects, all types together
MAX_BYTES_PER_PIPE = 6  # growth of traced memory: a leak of 8 a pipe fails
MAX_BLOCKS = 1000  # growth of allocated memory blocks (one a pipe: 5,000)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure() -> dict[str, Any]:
    import gc
    import threading
    import tracemalloc
    from collections import Counter

    import gevent
    from greenlet import greenlet

    for _ in range(3):
        gevent.sleep(0)  # let finished greenlets be switched out for good
        gc.collect()
    loop = gevent.get_hub().loop
    objects = Counter(type(o).__qualname__ for o in gc.get_objects())
    return {
        "objects": objects,
        "greenlets": objects.get(greenlet.__qualname__, 0)
        + sum(n for name, n in objects.items() if name == "Greenlet"),
        "threads": len(sys._current_frames()) + threading.active_count(),
        "callbacks": len(getattr(loop, "_callbacks", ())),
        "watchers": getattr(loop, "activecnt", 0),
        "memory": tracemalloc.get_traced_memory()[0],
        "blocks": sys.getallocatedblocks(),
    }


class Killed(Exception):
    pass


def quietly(fn: Any, *args: Any) -> Any:
    """Call *fn*; return an expected exception rather than let a greenlet
    die with it (gevent would print each one)."""
    import gpipe

    try:
        return fn(*args)
    except (Killed, gpipe.ClosedPipeError, gpipe.WriterAbortedError, TimeoutError) as exc:
        exc.__traceback__ = None
        return exc


def gevent_workload(count: int) -> None:
    import gevent

    import gpipe

    for i in range(count):
        r, w = gpipe.pipe(backend="gevent")
        case = i % 8
        if case == 0:  # writer blocks, reader takes it in two reads, EOF
            g = gevent.spawn(w.write, b"x" * 100)
            assert r.read1(60) and r.read1(60)
            g.join()
            w.close()
            assert r.read() == b""
        elif case == 1:  # reader blocks, writer fills it
            g = gevent.spawn(r.read1, 10)
            gevent.sleep(0)
            w.write(b"y" * 10)
            assert g.get() == b"y" * 10
        elif case == 2:  # a blocked write killed
            g = gevent.spawn(quietly, w.write, b"z" * 10)
            gevent.sleep(0)
            g.kill(Killed(), block=True)
        elif case == 3:  # timeouts
            r.settimeout(0)
            w.settimeout(0.0)
            for call in (lambda r=r: r.read1(1), lambda w=w: w.write(b"t")):
                try:
                    call()
                except TimeoutError:
                    pass
        elif case == 4:  # gevent.Timeout on a blocked read
            try:
                with gevent.Timeout(0):
                    r.read1(5)
            except gevent.Timeout:
                pass
        elif case == 5:  # close with an error while a read and a write wait
            g = gevent.spawn(quietly, r.read1, 5)
            gevent.sleep(0)
            w.close_with_error(Killed("bye"))
            assert isinstance(g.get(), Killed)
        elif case == 6:  # ends dropped unclosed
            g = gevent.spawn(quietly, r.read1, 5)
            gevent.sleep(0)
            del w
            assert isinstance(g.get(), gpipe.WriterAbortedError)
            del r
            continue
        else:  # gated parallel writers, a reader closing on them
            gs = [gevent.spawn(quietly, w.write, b"q" * 3) for _ in range(3)]
            gevent.sleep(0)
            r.read1(3)
            r.close_with_error(Killed())
            gevent.joinall(gs)
        r.close()
        w.close()


def threading_workload(count: int) -> None:
    import gpipe
    from tests._tasks import NativeThread, allocate_lock

    # One OS thread serves every pipe in turn; the main thread is the
    # other side. Handing a pipe over is done with two OS locks.
    todo = allocate_lock()
    todo.acquire()
    box: list[Any] = []

    def server() -> None:
        while True:
            todo.acquire()
            job = box.pop()
            if job is None:
                return
            job()

    t = NativeThread(server)

    def serve(fn: Any) -> None:
        box.append(fn)
        todo.release()

    for i in range(count):
        r, w = gpipe.pipe(backend="threading")
        case = i % 5
        if case == 0:  # the server writes, the main thread reads
            serve(lambda w=w: (w.write(b"x" * 100), w.close()))
            assert r.read() == b"x" * 100
        elif case == 1:  # the server reads, the main thread writes
            serve(lambda r=r: r.read1(1000))
            w.write(b"y" * 10)
        elif case == 2:  # timeouts
            r.settimeout(0)
            w.settimeout(0)
            for call in (lambda r=r: r.read1(1), lambda w=w: w.write(b"t")):
                try:
                    call()
                except TimeoutError:
                    pass
        elif case == 3:  # the main thread's blocked read is closed with an error
            serve(lambda w=w: w.close_with_error(Killed()))
            try:
                r.read1(5)
            except Killed:
                pass
        else:  # ends dropped unclosed
            del r, w
            continue
        r.close()
        w.close()
    serve(None)
    t.get()


def spawn_workload(count: int) -> None:
    """spawn_producer and spawn_consumer runs, each cancelled midway."""
    import gevent

    import gpipe

    def produce(w: gpipe.PipeWriter) -> None:
        while True:
            w.write(b"p" * 100)

    def consume(r: gpipe.PipeReader) -> int:
        return len(r.read())

    for i in range(count):
        if i % 2:
            # The reader gives up: the producer's blocked write raises and
            # the producer ends quietly.
            r = gpipe.spawn_producer(produce)
            assert r.read1(50) == b"p" * 50
            r.close()
        else:
            # The writer aborts: the consumer's read raises, join re-raises.
            cw = gpipe.spawn_consumer(consume)
            assert cw.write(b"c" * 10) == 10
            cw.close_with_error(Killed())
            assert isinstance(quietly(cw.join, 10), Killed)
    gevent.sleep(0)


def child(backend: str, count: int) -> None:
    import gc
    import tracemalloc
    import warnings

    warnings.simplefilter("ignore", ResourceWarning)  # from the dropped ends
    work = {
        "gevent": gevent_workload,
        "threading": threading_workload,
        "spawn": spawn_workload,
    }[backend]
    work(WARMUP)
    gc.collect()
    tracemalloc.start()
    before = measure()
    work(count // 2)
    middle = measure()
    work(count - count // 2)
    after = measure()
    grown = after["objects"] - middle["objects"]
    report = {
        "pipes": count,
        "measured": count - count // 2,  # the second half's pipes
        "objects": sum(grown.values()),
        "objects_by_type": dict(grown.most_common(10)),
        # Any growth at all of these is a leak: over all the pipes.
        **{k: after[k] - before[k] for k in ("greenlets", "threads", "callbacks", "watchers")},
        # These over the second half only (see MAX_BYTES_PER_PIPE).
        **{k: after[k] - middle[k] for k in ("memory", "blocks")},
    }
    print(json.dumps(report))


# The child of a monkey-patched test process is patched first, too.
PATCHED_CHILD = (
    "from gevent import monkey; monkey.patch_all(); import runpy; "
    "runpy.run_module('tests.test_leaks', run_name='__main__', alter_sys=True)"
)


def patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def run_child(backend: str) -> dict[str, Any]:
    args = [sys.executable]
    if patched():
        args += ["-c", PATCHED_CHILD]
    else:
        args += ["-m", "tests.test_leaks"]
    proc = subprocess.run(
        [*args, backend, str(PIPES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        env={
            **os.environ,
            "PYTHONDEVMODE": "0",
            "PYTHONWARNINGS": "ignore::ResourceWarning",
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nleaks[{backend}]: {report}")
    return report


@pytest.mark.parametrize("backend", ["gevent", "threading", "spawn"])
def test_no_growth_after_many_pipes(backend: str) -> None:
    """*backend* "spawn": cancelled spawn_producer/spawn_consumer runs."""
    report = run_child(backend)
    assert report["pipes"] == PIPES
    assert report["objects"] < MAX_OBJECTS, report["objects_by_type"]
    assert report["greenlets"] <= 0
    assert report["threads"] <= 0
    assert report["callbacks"] <= 0
    assert report["watchers"] <= 0
    assert report["blocks"] < MAX_BLOCKS
    bound = MAX_BYTES_PER_PIPE * report["measured"]
    assert report["memory"] < bound, (
        f"{report['memory']} bytes more after {report['measured']} more pipes"
    )


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
