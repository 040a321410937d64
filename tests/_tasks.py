"""Concurrency helpers for the reliability tests.

* :class:`NativeThread`: an OS thread, even in a process that called
  :func:`gevent.monkey.patch_all` (``threading.Thread`` is a greenlet
  there, which would deadlock a threading-backend pipe).
* :class:`Call`: one pipe call running concurrently, as a greenlet on the
  gevent backend and as an OS thread on the threading backend, that
  records what it returned or raised (and the ``consumed`` count of a
  raising write) and drops every reference to the pipe once done.
* :class:`Ledger`: the byte-stream invariants, checked from the write
  records and the read stream alone.
* :func:`hypothesis_settings`: example counts; ``GPIPE_STRESS=soak``
  selects bigger ones.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent import monkey

# The unpatched primitives: with these a thread is a thread and a lock
# blocks the OS thread, whether or not the process was monkey-patched.
start_new_thread = monkey.get_original("_thread", "start_new_thread")
allocate_lock = monkey.get_original("_thread", "allocate_lock")
native_sleep = monkey.get_original("time", "sleep")

# Upper bound for anything a test waits for; far above what a passing
# run needs, so that only a deadlock reaches it.
WAIT = 10.0


def hypothesis_settings(examples: int, soak_examples: int, **kw: Any) -> Any:
    """Settings for one property test: *soak_examples* when GPIPE_STRESS=soak."""
    from hypothesis import HealthCheck, settings

    soak = os.environ.get("GPIPE_STRESS") == "soak"
    return settings(
        max_examples=soak_examples if soak else examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        **kw,
    )


class NativeThread:
    """A daemon OS thread running ``fn(*args)``; ``join`` is bounded."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._done = allocate_lock()
        self._done.acquire()
        start_new_thread(self._run, (fn, args))

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:
            self.error = exc
        finally:
            del fn, args
            self._done.release()

    def is_alive(self) -> bool:
        return bool(self._done.locked())

    def join(self, timeout: float = WAIT) -> bool:
        """Wait up to *timeout* seconds; return True if the thread ended."""
        if self._done.acquire(True, timeout):
            self._done.release()
            return True
        return False

    def get(self, timeout: float = WAIT) -> Any:
        """The result, or the exception raised here; AssertionError on timeout."""
        if not self.join(timeout):
            raise AssertionError(f"thread still running after {timeout}s (deadlock?)")
        if self.error is not None:
            raise self.error
        return self.result


class Call:
    """``fn(*args)`` running concurrently on *backend*; records its outcome.

    ``outcome`` is ``None`` while it runs, then ``("ret", value)`` or
    ``("raise", exc, consumed)``, where *consumed* is the exception's
    ``consumed`` attribute read at once (a stored close error is raised
    again later, which rewrites the attribute).
    """

    def __init__(self, backend: str, fn: Callable[..., Any], *args: Any) -> None:
        self.backend = backend
        self.outcome: tuple[Any, ...] | None = None
        if backend == "gevent":
            self._greenlet: Any = gevent.spawn(self._run, fn, args)
        else:
            self._thread = NativeThread(self._run, fn, args)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            value = fn(*args)
        except BaseException as exc:
            # The traceback holds the frames of the call, hence the pipe's
            # ends: drop it so that an end can be garbage-collected.
            exc.__traceback__ = None
            self.outcome = ("raise", exc, getattr(exc, "consumed", None))
        else:
            self.outcome = ("ret", value)
        finally:
            del fn, args

    def kill(self, exc: BaseException) -> None:
        """Schedule *exc* to be raised in the (gevent) call; do not wait."""
        assert self.backend == "gevent"
        self._greenlet.kill(exc, block=False)

    @property
    def done(self) -> bool:
        return self.outcome is not None


def pause(backend: str, spin: int) -> None:
    """Let other tasks run a little: the hub, or other OS threads."""
    if backend == "gevent":
        gevent.sleep(0 if spin < 20 else 0.0005)
    else:
        native_sleep(0 if spin < 20 else 0.0002)


def wait_until(backend: str, predicate: Callable[[], bool], what: str) -> None:
    """Wait until *predicate* holds; AssertionError after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    spin = 0
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        pause(backend, spin)
        spin += 1


def reader_blocked(core: Any) -> bool:
    """A read is waiting in the pipe for a write (the pending ``_Read``:
    a writer that fills it withdraws it, a readall stays until EOF)."""
    return core._read is not None


def writer_blocked(core: Any) -> bool:
    """A write is published in the pipe, not yet used up by readers."""
    return core._write is not None


class Ledger:
    """What was written and what was read, for the byte-stream invariants.

    Writes are recorded in the order they ran (calls on one end are
    gated, so this is the order of the stream) with the number of bytes
    each contributed: all of them for a write that returned, the
    ``consumed`` count for one that raised. Reads are recorded in stream
    order. Bytes taken from the pipe but delivered to no caller (a
    ``readall`` that raised, bytes held for the next read when the
    reader closed) are recorded as dropped at their place in the stream.
    """

    def __init__(self) -> None:
        self.writes: list[tuple[bytes, int | None]] = []
        self.stream: list[tuple[str, bytes]] = []

    def wrote(self, data: bytes) -> int:
        self.writes.append((data, None))
        return len(self.writes) - 1

    def write_result(self, index: int, contributed: int) -> None:
        data, old = self.writes[index]
        assert old is None, "write resolved twice"
        assert 0 <= contributed <= len(data), (contributed, len(data))
        self.writes[index] = (data, contributed)

    def read(self, chunk: bytes) -> None:
        if chunk:
            self.stream.append(("read", bytes(chunk)))

    def dropped(self, chunk: bytes) -> None:
        if chunk:
            self.stream.append(("dropped", bytes(chunk)))

    def check(self, pending: tuple[int, int] | None = None, held: bytes = b"") -> None:
        """Every byte taken out was written, once, in order, contiguously.

        *pending* is ``(write index, bytes taken so far)`` for a write
        still in progress; *held* the bytes taken from writes but not yet
        returned to a caller (kept for the next read, or gathered by a
        ``readall`` still running).
        """
        expected = []
        for i, (data, contributed) in enumerate(self.writes):
            if contributed is None:
                assert pending is not None and pending[0] == i, f"write {i} unresolved"
                contributed = pending[1]
            expected.append(data[:contributed])
        taken = b"".join(chunk for _, chunk in self.stream) + held
        assert taken == b"".join(expected)


# -- distinguishable records ---------------------------------------------
#
# A write is made of 16-byte cells, each naming the writer, the write's
# sequence number and the cell's index, with a check field; writes and
# reads are whole numbers of cells, so every chunk a read returns is
# cell-aligned and every byte of it can be traced back to its write.

CELL = 16
_CELL = struct.Struct(">HIHQ")
_MASK = (1 << 64) - 1


def cell(wid: int, seq: int, idx: int) -> bytes:
    check = ((((wid << 32) | seq) << 16 | idx) * 0x9E3779B97F4A7C15) & _MASK
    return _CELL.pack(wid, seq, idx, check)


def payload(wid: int, seq: int, ncells: int) -> bytes:
    """The bytes of write *seq* of writer *wid*: *ncells* cells."""
    return b"".join(cell(wid, seq, i) for i in range(ncells))


class Records:
    """The writes and reads of many writers and readers on one pipe.

    Appends are single list operations, safe from any thread.
    """

    def __init__(self) -> None:
        # (wid, seq, ncells, bytes contributed), in the order recorded.
        self.writes: list[tuple[int, int, int, int]] = []
        # (reader id, chunk), in the order recorded.
        self.chunks: list[tuple[int, bytes]] = []

    def wrote(self, wid: int, seq: int, ncells: int, contributed: int) -> None:
        self.writes.append((wid, seq, ncells, contributed))

    def read(self, rid: int, chunk: bytes) -> None:
        if chunk:
            self.chunks.append((rid, bytes(chunk)))

    @property
    def bytes_read(self) -> int:
        return sum(len(chunk) for _, chunk in self.chunks)

    def check(self, ordered: bool) -> None:
        """Nothing lost, duplicated, reordered or invented.

        * every cell read is a cell some write wrote (nothing invented);
        * a read's cells are consecutive cells of one write (contiguity);
        * no cell is read twice;
        * each write's cells that were read are exactly its first
          ``contributed`` bytes: all of it if it returned, the prefix it
          reported as ``consumed`` if it raised (nothing lost, nothing
          withdrawn delivered);
        * each reader saw each writer's writes, and each write's cells,
          in order (writes of one writer are sequential);
        * if *ordered* (one OS thread: records are made in stream
          order), the whole stream is the writes' prefixes, in order.
        """
        writes = {}
        for wid, seq, ncells, contributed in self.writes:
            assert (wid, seq) not in writes, f"write {(wid, seq)} recorded twice"
            assert 0 <= contributed <= ncells * CELL
            assert contributed % CELL == 0, (
                f"write {(wid, seq)} consumed {contributed}: not whole cells"
            )
            writes[wid, seq] = contributed
        seen: dict[tuple[int, int], set[int]] = {}
        last: dict[tuple[int, int], tuple[int, int]] = {}  # (reader, writer) -> (seq, idx)
        for rid, chunk in self.chunks:
            assert len(chunk) % CELL == 0, f"read of {len(chunk)} bytes: not whole cells"
            prev = None
            for off in range(0, len(chunk), CELL):
                raw = chunk[off : off + CELL]
                wid, seq, idx, _ = _CELL.unpack(raw)
                assert raw == cell(wid, seq, idx), f"invented bytes: {raw!r}"
                assert (wid, seq) in writes, f"cell of unknown write {(wid, seq)}"
                if prev is not None:
                    assert (wid, seq, idx) == (prev[0], prev[1], prev[2] + 1), (
                        f"read not contiguous: {prev} then {(wid, seq, idx)}"
                    )
                prev = (wid, seq, idx)
                got = seen.setdefault((wid, seq), set())
                assert idx not in got, f"cell {(wid, seq, idx)} read twice"
                got.add(idx)
                order = last.get((rid, wid))
                assert order is None or (seq, idx) > order, (
                    f"reader {rid} saw {(wid, seq, idx)} after {order}"
                )
                last[rid, wid] = (seq, idx)
        for key, contributed in writes.items():
            cells = sorted(seen.get(key, ()))
            assert seen.get(key, set()) == set(range(contributed // CELL)), (
                f"write {key} contributed {contributed} bytes, readers got cells {cells}"
            )
        if ordered:
            stream = b"".join(chunk for _, chunk in self.chunks)
            expected = b"".join(
                payload(wid, seq, ncells)[:c] for wid, seq, ncells, c in self.writes
            )
            assert stream == expected, "stream out of order"
