"""Dead ends raise LoopExit; calls another native thread can end keep waiting.

The rule (docs/backends.rst): a blocked call on the gevent backend waits
in its thread's hub like any gevent primitive. If nothing in that hub can
run and no other native thread is alive, gevent ends the loop and the
call raises :exc:`gevent.exceptions.LoopExit`, with a note naming the pipe
call. While another native thread is alive (one that could still release
the call), the loop is held open and the call keeps waiting; once the
last such thread has exited, a call still blocked raises LoopExit.

A LoopExit leaves a hub that cannot be reused safely for such tests, and
the rule depends on which threads exist, so every program runs in a fresh
interpreter, bounded in time: a hang fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Far above what a passing program needs.
BOUND = 60

PRELUDE = """\
import sys, threading, time
import gevent
from gevent.exceptions import LoopExit
import gpipe

def expect_loopexit(fn, *args, note=None):
    start = time.monotonic()
    try:
        fn(*args)
    except LoopExit as exc:
        text = str(exc) + "".join(getattr(exc, "__notes__", ()))
        if note is not None:
            assert note in text, text
        print("LoopExit")
        print(round(time.monotonic() - start, 3))
    else:
        print("returned")
"""


def run(program: str) -> list[str]:
    """Run *program* (after PRELUDE) in a fresh interpreter; its stdout lines."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize(
    "call,note",
    [
        ("w.write(b'x')", "a write to a PipeWriter"),
        ("r.read1(1)", "a read from a PipeReader"),
        ("r.readall()", "a read from a PipeReader"),
        ("r.readinto1(bytearray(4))", "a read from a PipeReader"),
    ],
)
def test_blocked_call_with_nobody_on_the_other_side(call, note):
    out = run(
        f"""
        r, w = gpipe.pipe()
        expect_loopexit(lambda: {call}, note={note!r})
        """
    )
    assert out[0] == "LoopExit"
    assert float(out[1]) < 5  # gevent reports it at once, not after a timeout


def test_every_greenlet_blocked_on_pipes():
    out = run(
        """
        r1, w1 = gpipe.pipe()
        r2, w2 = gpipe.pipe()
        expect_loopexit(gevent.joinall, [gevent.spawn(r1.read, 1), gevent.spawn(w2.write, b"x")])
        """
    )
    assert out[0] == "LoopExit"


def test_write_then_read_in_one_greenlet():
    out = run(
        """
        r, w = gpipe.pipe()
        def same_greenlet():
            w.write(b"hello")
            return r.read1(5)
        expect_loopexit(same_greenlet, note="a write to a PipeWriter")
        """
    )
    assert out[0] == "LoopExit"


def test_tarfile_writing_into_a_pipe_its_own_greenlet_would_read():
    out = run(
        """
        import io, tarfile
        r, w = gpipe.pipe()
        def archive_then_read():
            with tarfile.open(fileobj=w, mode="w|gz") as tar:
                info = tarfile.TarInfo("a.txt")
                data = b"x" * 100000
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            return r.read()
        expect_loopexit(archive_then_read, note="a write to a PipeWriter")
        """
    )
    assert out[0] == "LoopExit"


def test_gevent_wait_returns_with_a_greenlet_blocked_on_a_pipe():
    out = run(
        """
        r, w = gpipe.pipe()
        g = gevent.spawn(w.write, b"x")
        gevent.wait()  # LoopExit is for blocking calls; wait() just returns
        print("wait-returned"); print(g.ready()); print(r._pipe.waiting(False))
        """
    )
    assert out == ["wait-returned", "False", "1"]


def test_from_a_loop_callback_a_pipe_call_refuses_to_block():
    out = run(
        """
        from gevent.exceptions import BlockingSwitchOutError
        r, w = gpipe.pipe()
        result = []
        def in_callback():
            try:
                r.read1(1)
            except BlockingSwitchOutError:
                result.append("refused")
        reader = gevent.spawn(r.read1, 1)
        gevent.sleep(0)  # the reader waits
        writer = gevent.spawn(w.write, b"ab")  # wakes it, then waits itself
        gevent.get_hub().loop.run_callback(in_callback)
        gevent.joinall([reader, writer], timeout=5)
        print(result[0] if result else "ran", reader.value)
        """
    )
    assert out == ["refused b'a'"]


# -- the other side of the rule: another native thread is alive -----------------


@pytest.mark.parametrize("how", ["write", "close", "close_with_error"])
def test_a_live_thread_that_has_not_touched_the_pipe_yet_can_end_the_wait(how):
    out = run(
        f"""
        r, w = gpipe.pipe()
        go = threading.Event()
        def later():
            go.wait()
            time.sleep(0.2)  # the main greenlet has long been waiting
            if {how!r} == "write":
                w.write(b"from a thread")
            elif {how!r} == "close":
                w.close()
            else:
                w.close_with_error(KeyError("thread"))
        t = threading.Thread(target=later)
        t.start()
        go.set()
        try:
            print(repr(r.read1(100)))
        except KeyError as exc:
            print("KeyError")
        t.join()
        """
    )
    expected = {"write": "b'from a thread'", "close": "b''", "close_with_error": "KeyError"}
    assert out == [expected[how]]


def test_a_greenlet_reader_and_a_threadpool_writer():
    out = run(
        """
        import hashlib
        r, w = gpipe.pipe()
        data = bytes(range(256)) * 4000
        def produce():
            with w:
                for i in range(0, len(data), 1000):
                    time.sleep(0) if i % 100000 else time.sleep(0.01)
                    w.write(data[i : i + 1000])
        result = gevent.get_hub().threadpool.spawn(produce)
        got = r.readall()
        result.get()
        print(hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest())
        """
    )
    assert out == ["True"]


def test_a_thread_that_exits_without_waking_the_call_lets_it_raise():
    out = run(
        """
        r, w = gpipe.pipe()
        t = threading.Thread(target=time.sleep, args=(0.3,))
        t.start()
        expect_loopexit(r.read1, 1, note="a read from a PipeReader")
        t.join()
        """
    )
    assert out[0] == "LoopExit"
    # Not before the thread exited (0.3 s), and soon after it.
    assert 0.25 < float(out[1]) < 5


def test_greenlets_of_two_native_threads_with_their_own_hubs_on_one_pipe():
    out = run(
        """
        r, w = gpipe.pipe()
        got = []
        def reader_thread():
            # A hub of its own: two reading greenlets there.
            readers = [gevent.spawn(r.read1, 5) for _ in range(2)]
            gevent.joinall(readers, raise_error=True)
            got.extend(g.value for g in readers)
        t = threading.Thread(target=reader_thread)
        t.start()
        writers = [gevent.spawn(w.write, b"%05d" % i) for i in range(2)]
        gevent.joinall(writers, raise_error=True)
        t.join()
        print(sorted(got) == [b"00000", b"00001"])
        """
    )
    assert out == ["True"]


def test_a_greenlet_left_waiting_in_an_exited_thread_is_not_written_into():
    out = run(
        """
        r, w = gpipe.pipe()
        started = threading.Event()
        def orphan_reader():
            gevent.spawn(r.read1, 10)  # blocks in this thread's hub...
            gevent.sleep(0)
            started.set()
            # ...and the thread ends without ever running its hub again.
        t = threading.Thread(target=orphan_reader)
        t.start()
        t.join()
        assert started.is_set() and r._pipe.waiting(True) == 1
        w.settimeout(1)
        try:
            w.write(b"lost?")
        except TimeoutError:
            print("write-timed-out")  # nobody alive took it: correct
        else:
            print("write-succeeded")
        # A later read is not queued behind the orphan either.
        reader = gevent.spawn(r.read1, 10)
        print(w.write(b"found") if not reader.ready() else "?")
        print(reader.get(timeout=5))
        """
    )
    assert out == ["write-timed-out", "5", "b'found'"]


def test_a_read_is_not_queued_forever_behind_an_orphaned_reader():
    out = run(
        """
        r, w = gpipe.pipe()
        def orphan_reader():
            gevent.spawn(r.read1, 10)
            gevent.sleep(0)
        t = threading.Thread(target=orphan_reader)
        t.start()
        t.join()
        r.settimeout(5)
        writer = gevent.spawn(w.write, b"to the live reader")
        print(r.read1(100))
        writer.get(timeout=5)
        """
    )
    assert out == ["b'to the live reader'"]


def test_a_call_queued_at_a_gate_names_itself_in_loopexit():
    out = run(
        """
        r, w = gpipe.pipe()
        first = gevent.spawn(r.read1, 1)
        gevent.sleep(0)  # owns the read gate, waiting
        expect_loopexit(r.read1, 1, note="a read from a PipeReader")
        """
    )
    assert out[0] == "LoopExit"


@pytest.mark.parametrize(
    "call, data",
    [
        ("r.readinto, bytearray(10)", "hello"),  # still pending: needs 10 bytes
        ("r.read1, 10", "hell\\n"),  # filled and woken, but never run
    ],
)
def test_bytes_given_to_an_orphaned_read_are_kept_for_the_next_read(call, data):
    out = run(
        f"""
        import _thread
        r, w = gpipe.pipe()
        go = _thread.allocate_lock(); go.acquire()
        waiting = _thread.allocate_lock(); waiting.acquire()
        def orphan():
            gevent.spawn({call})
            gevent.sleep(0)         # it waits, owning the read gate
            waiting.release()
            go.acquire()            # blocks this thread, not its hub
        t = threading.Thread(target=orphan)
        t.start()
        waiting.acquire()
        print(w.write(b"{data}"))    # fills the waiting read
        go.release()
        t.join()                    # its greenlet never runs again
        gevent.spawn(lambda: (w.write(b"XY"), w.close()))
        print(r.read())
        """
    )
    assert out == ["5", repr(data.replace("\\n", "\n").encode() + b"XY")]


@pytest.mark.parametrize("side", ["read", "write"])
def test_a_close_wakes_a_call_queued_behind_an_orphaned_owner(side):
    """Closing wakes every blocked call, even one queued behind a call
    whose thread exited while it owned the gate (it raised LoopExit)."""
    out = run(
        f"""
        r, w = gpipe.pipe()
        reading = {side == "read"!r}
        parked, go = threading.Event(), threading.Event()
        def orphan():
            gevent.spawn(r.read1, 10) if reading else gevent.spawn(w.write, b"o")
            gevent.sleep(0)        # it waits, owning the gate
            parked.set()
            go.wait()              # blocks this thread, not its hub
        t = threading.Thread(target=orphan)
        t.start()
        parked.wait()
        def close_once_queued():
            while r._pipe.waiting(reading) < 2:
                gevent.sleep(0.001)
            go.set()
            t.join()               # the gate's owner can never run again
            (w if reading else r).close()
        closer = gevent.spawn(close_once_queued)
        try:
            print(repr(r.read1(10) if reading else w.write(b"live")))
        except gpipe.ClosedPipeError as exc:
            print("ClosedPipeError", exc.consumed)
        closer.get()
        """
    )
    assert out == (["b''"] if side == "read" else ["ClosedPipeError 0"])


def test_a_pipe_keeps_working_after_its_threads_hub_was_replaced():
    out = run(
        """
        r, w = gpipe.pipe()
        g = gevent.spawn(w.write, b"1")
        print(r.read1(1)); g.join()
        gevent.get_hub().destroy(destroy_loop=True)  # the next wait makes a new hub
        g = gevent.spawn(w.write, b"2")
        print(r.read1(1)); g.join()
        g = gevent.spawn(r.read1, 1)
        print(w.write(b"3"), g.get())
        """
    )
    assert out == ["b'1'", "b'2'", "1 b'3'"]
