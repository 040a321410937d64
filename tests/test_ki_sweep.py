"""KeyboardInterrupt right after every call gpipe's pure-Python code makes.

A KeyboardInterrupt can land at any bytecode, and in particular right
after a call returned and before its result was used: a lock acquired
but not yet covered by a ``try``, a wakeup taken but not yet counted,
bytes copied but not yet reported. This sweep raises one there, at every
such point of a few scenarios in turn, with :func:`sys.setprofile`:

* at the ``c_return`` event of a C function called from a gpipe frame
  (raising from the profile function discards the call's result and
  makes the call raise instead);
* at the ``return`` event of a Python function called from a gpipe frame
  (gpipe's own helpers, and gevent's waits when gevent is pure Python):
  the same, for Python callees. (Calls to Cython-compiled functions,
  such as gevent's compiled ``Semaphore.acquire``, report no event on
  Python 3.11 and older: the point after them is reached through the
  gpipe function that made the call, when it returns.)

Each scenario is run once to count its points, then once per point,
raising at that point. Both sides of the pipe catch the interrupt and
retry the interrupted call, as the contract allows (an interrupted read
consumed nothing; an interrupted write's ``consumed`` says what readers
took). After each run it is *required* that:

* nothing hung: every task finished (every call has a timeout, so a
  lost wakeup shows as a :exc:`TimeoutError` that bytes did not explain;
  a point where one does is run once more, and fails if it does again:
  a busy machine may not run the process for as long as the timeout);
* no call raised anything but the injected interrupt and the errors the
  scenario expects (a failed internal assertion, a lock released twice);
* no lock or gate is left held: ``repr()`` of both ends returns in
  another OS thread, and a new write/read pair on the same pipe (or, on
  a closed pipe, a read and a write that fail at once) completes.

Whether bytes were lost or duplicated is *reported* (printed, and in
the test's ``record_property``), not required: Python code cannot make a
call and the bookkeeping after it atomic against an asynchronous
exception.

Compiled builds have no Python frames to inject in: the module is
skipped when ``gpipe.COMPILED`` is true, and where ``sys.setprofile``
cannot make a call raise (checked at import).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.hub
import greenlet
import pytest

import gpipe

GPIPE_DIR = os.path.dirname(os.path.abspath(gpipe.__file__)) + os.sep
CALL_TIMEOUT = 0.25  # each end's settimeout: far above a handoff in this test
JOIN = 1.0  # how long a task may take before it counts as hung
MAX_RUNS = 400  # points of one scenario swept at most (evenly sampled beyond)


def _profile_can_inject() -> bool:
    """Whether raising in a profile function makes the call raise."""

    def probe() -> int:
        return len("ab")

    def raiser(frame: Any, event: str, arg: Any) -> None:
        if event == "c_return" and frame.f_code is probe.__code__:
            raise KeyboardInterrupt

    old = sys.getprofile()
    sys.setprofile(raiser)
    try:
        probe()
    except KeyboardInterrupt:
        return True
    finally:
        sys.setprofile(old)
    return False


pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        getattr(gpipe, "COMPILED", False), reason="a compiled build has no Python frames"
    ),
    pytest.mark.skipif(
        not _profile_can_inject(), reason="sys.setprofile cannot make a call raise here"
    ),
]


def _ours(frame: Any) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(GPIPE_DIR)


def _in_a_hub() -> bool:
    """True if a gevent hub runs now: a callback of its loop (the keepalive's
    timer, while a call waits with another thread alive), not a pipe call.
    gevent raises what a callback raised in the main greenlet, wherever it
    is, for any callback: not a point of this sweep."""
    return isinstance(greenlet.getcurrent(), gevent.hub.Hub)


class Injector:
    """A profile function that raises KeyboardInterrupt at its *at*-th
    point (0: never), counting the points of every thread it runs in."""

    def __init__(self, at: int) -> None:
        self.at = at
        self._counter = itertools.count(1)  # next() is atomic: threads share it
        self.points = 0
        self.fired: str | None = None

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "c_return":
            if not _ours(frame):
                return
            callee = getattr(arg, "__qualname__", None) or repr(arg)
            where = frame
        elif event == "return":
            if not _ours(frame.f_back):
                return
            callee = frame.f_code.co_name
            where = frame.f_back
        else:
            return
        if _in_a_hub():
            return
        self.points = next(self._counter)
        if self.points == self.at:
            self.fired = (
                f"after {callee}() in {where.f_code.co_name} "
                f"({os.path.basename(where.f_code.co_filename)}:{where.f_lineno})"
            )
            # Said at once: if this hangs the process, the sweep says where.
            sys.stderr.write(f"injected {self.fired}\n")
            sys.stderr.flush()
            raise KeyboardInterrupt(self.fired)


def read1(reader: Any, n: int) -> bytes:
    return bytes(getattr(reader, "read1", reader.read)(n))


def readinto1(reader: Any, buf: bytearray) -> bytes:
    return bytes(buf[: getattr(reader, "readinto1", reader.readinto)(buf)])


def waiting(end: Any) -> int | None:
    found = re.search(r"waiting=(\d+)", repr(end))
    return int(found.group(1)) if found else None


class Run:
    """One run of a scenario on one pipe, with *injector* profiling both sides."""

    def __init__(self, backend: str, injector: Injector) -> None:
        self.backend = backend
        self.injector = injector
        self.r, self.w = gpipe.pipe(backend=backend)
        self.r.settimeout(CALL_TIMEOUT)
        self.w.settimeout(CALL_TIMEOUT)
        self.sent: list[bytes] = []  # what each write reported delivered
        self.got = bytearray()
        self.errors: list[str] = []  # unexpected exceptions
        self.timeouts = 0
        self.notes: list[str] = []
        self.closed = False  # the scenario closes the pipe
        self._tasks: list[Any] = []

    # -- running the two sides -------------------------------------------------------------

    def _guarded(self, fn: Callable[[Run], None]) -> None:
        try:
            fn(self)
        except TimeoutError:
            self.timeouts += 1
        except BaseException as exc:
            self.errors.append(f"{fn.__name__}: {exc!r}")

    def _profiled(self, fn: Callable[[Run], None]) -> None:
        sys.setprofile(self.injector)
        try:
            self._guarded(fn)
        finally:
            sys.setprofile(None)

    def go(self, fn: Callable[[Run], None]) -> None:
        """Run *fn* as the other side: a greenlet, or an OS thread."""
        if self.backend == "gevent":
            self._tasks.append(gevent.spawn(self._guarded, fn))
        else:
            thread = threading.Thread(target=self._profiled, args=(fn,), daemon=True)
            thread.start()
            self._tasks.append(thread)

    def wait_blocked(self, end: Any) -> None:
        """Let the other side run until it blocks on *end* (or gave up)."""
        if self.backend == "gevent":
            gevent.idle()  # the greenlet runs until it waits
            return
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            count = waiting(end)
            if count is None:
                time.sleep(0.01)
                return
            if count or not self._tasks[-1].is_alive():
                return
            time.sleep(0.0005)

    def scenario(self, other: Callable[[Run], None], mine: Callable[[Run], None], end: str) -> None:
        """*other* in a task, *mine* here once it blocks on the *end* side."""
        if self.backend == "gevent":
            sys.setprofile(self.injector)  # every greenlet of this thread
            try:
                self.go(other)
                self.wait_blocked(getattr(self, end))
                self._guarded(mine)
                self._join()
            finally:
                sys.setprofile(None)
        else:
            self.go(other)
            self.wait_blocked(getattr(self, end))
            self._profiled(mine)
            self._join()

    def _join(self) -> None:
        deadline = time.monotonic() + JOIN
        for task in self._tasks:
            try:
                task.join(max(0.0, deadline - time.monotonic()))
            except BaseException as exc:  # thrown into this greenlet's join
                self.errors.append(f"joining the other side raised {exc!r}")
            alive = not task.dead if self.backend == "gevent" else task.is_alive()
            if alive:
                self.errors.append(f"a task still runs after {JOIN}s: hung")

    # -- the checks after a run ------------------------------------------------------------

    def check_unlocked(self) -> None:
        """No lock left held: ``repr()`` returns in another OS thread, and
        the pipe still moves bytes (or, closed, fails at once)."""
        results: list[Any] = []

        def elsewhere() -> None:
            results.append((repr(self.r), repr(self.w)))
            if self.closed:
                for call in (lambda: self.r.read(1), lambda: self.w.write(b"x")):
                    try:
                        call()
                    except (ValueError, OSError, TimeoutError) as exc:
                        results.append(exc)

        thread = threading.Thread(target=elsewhere, daemon=True)
        thread.start()
        thread.join(JOIN)
        if thread.is_alive():
            self.errors.append("a call from another thread is blocked: a lock stays held")
            return
        if any(isinstance(x, TimeoutError) for x in results):
            self.errors.append(f"a call on the closed pipe waited: {results}")
        if not self.closed:
            self._probe()

    def _probe(self) -> None:
        """A new write/read pair completes; bytes left over before it are
        the stream's (a duplicate the reader never asked for)."""
        box: list[Any] = []

        def write() -> None:
            try:
                box.append(self.w.write(b"#probe"))
            except BaseException as exc:
                box.append(exc)

        if self.backend == "gevent":
            task: Any = gevent.spawn(write)
        else:
            task = threading.Thread(target=write, daemon=True)
            task.start()
        late = bytearray()
        try:
            while not late.endswith(b"#probe"):
                data = read1(self.r, 100)
                if not data:
                    break
                late += data
        except BaseException as exc:
            self.errors.append(f"the probe read failed: {exc!r}")
        task.join(JOIN)
        if box != [6]:
            self.errors.append(f"the probe write did not complete: {box}")
        self.got += late.removesuffix(b"#probe")

    def finish(self) -> None:
        self.check_unlocked()
        self.r.close()
        self.w.close()

    @property
    def intact(self) -> bool:
        return bytes(self.got) == b"".join(self.sent)


# -- the two sides' loops: retry what an interrupt stopped ------------------------------------


def write_all(run: Run, data: bytes) -> None:
    rest = memoryview(data)
    while rest:
        try:
            n = run.w.write(rest)
        except KeyboardInterrupt as exc:
            n = getattr(exc, "consumed", None)
            if n is None:
                run.notes.append("an interrupted write without consumed")
                n = 0
        except gpipe.ClosedPipeError as exc:
            if not run.closed:
                raise
            run.sent.append(bytes(rest[: getattr(exc, "consumed", 0)]))
            return
        run.sent.append(bytes(rest[:n]))
        rest = rest[n:]


def read_until_bang(run: Run, how: str = "read1", size: int = 7) -> None:
    """Read until a ``!`` (the scenario's last byte) or EOF."""
    buf = bytearray(size)
    while True:
        try:
            data = read1(run.r, size) if how == "read1" else readinto1(run.r, buf)
        except KeyboardInterrupt:
            continue  # consumed nothing
        run.got += data
        if not data or b"!" in data:
            return


def close_end(end: Any) -> None:
    while not end.closed:
        try:
            end.close()
        except KeyboardInterrupt:
            pass


# -- the scenarios ------------------------------------------------------------------------------


def blocked_read_then_write(run: Run) -> None:
    """A blocked read (read1) completed by writes."""

    def mine(run: Run) -> None:
        write_all(run, b"hello ")
        write_all(run, b"world!")

    run.scenario(read_until_bang, mine, "r")


def write_to_a_waiting_readinto(run: Run) -> None:
    """A write that finds a reader waiting in readinto1 and fills it."""
    run.scenario(
        lambda run: read_until_bang(run, "readinto", 5),
        lambda run: write_all(run, b"0123456789abc!"),
        "r",
    )


def blocked_write_then_read(run: Run) -> None:
    """A blocked write completed by reads, in parts."""
    run.scenario(lambda run: write_all(run, b"0123456789" * 2 + b"!"), read_until_bang, "w")


# A line across writes, two lines in one write, a line that ends in the next.
LINES_WRITES = [b"ab", b"cd\nef\ng", b"h\n!\n"]


def _write_lines(run: Run) -> None:
    for data in LINES_WRITES:
        write_all(run, data)


def readline_across_writes(run: Run) -> None:
    def mine(run: Run) -> None:
        while True:
            try:
                line = run.r.readline()
            except KeyboardInterrupt:
                continue  # an interrupted readline consumes nothing
            run.got += line
            if not line or b"!" in line:
                return

    run.scenario(_write_lines, mine, "w")


def line_iteration(run: Run) -> None:
    def mine(run: Run) -> None:
        while True:
            try:
                for line in run.r:
                    run.got += line
                    if b"!" in line:
                        return
                return
            except KeyboardInterrupt:
                continue  # lines taken ahead went back: iterate again

    run.scenario(_write_lines, mine, "w")


def close_during_a_blocked_read(run: Run) -> None:
    run.closed = True
    run.scenario(read_until_bang, lambda run: close_end(run.w), "r")


def close_during_a_blocked_write(run: Run) -> None:
    run.closed = True

    def mine(run: Run) -> None:
        while True:
            try:
                run.got += read1(run.r, 3)
                break
            except KeyboardInterrupt:
                continue
        close_end(run.r)

    run.scenario(lambda run: write_all(run, b"abcdef!"), mine, "w")


SCENARIOS = [
    blocked_read_then_write,
    write_to_a_waiting_readinto,
    blocked_write_then_read,
    readline_across_writes,
    line_iteration,
    close_during_a_blocked_read,
    close_during_a_blocked_write,
]


# -- the sweep: a process per scenario, started again after a hang -------------------------------


def sweep(backend: str, name: str, start: int) -> int:
    """Print the points of scenario *name*, then one JSON line per point
    from *start* on. Exits with RESTART after a point that left a task
    hung (it would change the code paths of the points after it), and is
    killed by its watchdog if the main thread itself hangs."""
    import faulthandler
    import json

    scenario = next(f for f in SCENARIOS if f.__name__ == name)
    dry = Injector(0)
    run = Run(backend, dry)
    scenario(run)
    run.finish()
    if run.errors or run.timeouts or not run.intact:
        print(json.dumps({"dry run failed": run.errors, "timeouts": run.timeouts}), flush=True)
        return 1
    points = dry.points
    print(json.dumps({"points": points}), flush=True)
    if points <= MAX_RUNS:
        ats: Any = range(start, points + 1)
    else:
        step = (points - 1) / (MAX_RUNS - 1)
        ats = sorted({round(1 + i * step) for i in range(MAX_RUNS)} - set(range(start)))
    for at in ats:
        for _attempt in (1, 2):
            faulthandler.dump_traceback_later(POINT_LIMIT, exit=True)
            injector = Injector(at)
            run = Run(backend, injector)
            before = set(threading.enumerate())
            scenario(run)
            run.finish()
            hung = [t for t in threading.enumerate() if t not in before and t.is_alive()]
            # Only a call that timed out, with no byte lost: a wakeup was
            # lost, or the process did not run for CALL_TIMEOUT (a busy
            # machine). The point again tells them apart: a lost wakeup is
            # lost again.
            if hung or run.errors or not (run.intact and run.timeouts):
                break
        if run.intact:
            broken = None
        else:
            broken = f"sent {b''.join(run.sent)!r}, read {bytes(run.got)!r}"
            if run.timeouts:
                run.notes.append("timed out waiting for bytes that were lost")
        if run.intact and run.timeouts:
            run.errors.append(f"{run.timeouts} call(s) timed out with no byte lost")
        print(
            json.dumps(
                {
                    "at": at,
                    "fired": injector.fired,
                    "errors": run.errors,
                    "broken": broken,
                    "notes": sorted(set(run.notes)),
                }
            ),
            flush=True,
        )
        if hung or any("hung" in e for e in run.errors):
            return RESTART
    faulthandler.cancel_dump_traceback_later()
    return 0


RESTART = 3
POINT_LIMIT = 5.0  # seconds one point may take before its process is killed
PROCESS_LIMIT = 240  # seconds one process may take


def _lines(text: Any) -> list[dict[str, Any]]:
    import json

    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    found = []
    for line in (text or "").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("backend", ["gevent", "threading"])
def test_keyboard_interrupt_after_every_call(backend, scenario, record_property):
    import subprocess

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.pop("PYTHONDEVMODE", None)
    points = None
    results: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    start = 1
    began = time.monotonic()
    deadline = began + 500
    while time.monotonic() < deadline:
        command = [sys.executable, __file__, backend, scenario.__name__, str(start)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PROCESS_LIMIT, env=env
            )
            out, err, status = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as exc:
            out, err, status = exc.stdout, exc.stderr, None
        lines = _lines(out)
        if not lines or "points" not in lines[0]:
            pytest.fail(f"the sweep did not start (status {status}):\n{out}\n{err}")
        points = points or lines[0]["points"]
        for line in lines[1:]:
            results[line["at"]] = line
        if status == 0:
            break
        last = max(results, default=start - 1)
        if status != RESTART:
            # Killed by its watchdog or the timeout: the next point hung the
            # main thread itself.
            tail = err if isinstance(err, str) else (err or b"").decode(errors="replace")
            fired = [x for x in tail.splitlines() if x.startswith("injected ")]
            where = fired[-1][len("injected ") :] if fired else f"point {last + 1}"
            failures.append(f"{where}: the process hung (killed by its watchdog)")
            last += 1
        start = last + 1
        if start > points:
            break
    else:
        failures.append("the sweep did not finish in time")
    assert points is not None and points >= 5, f"only {points} injection points"
    fired = sum(r["fired"] is not None for r in results.values())
    broken = [r for r in results.values() if r["broken"]]
    for r in results.values():
        if r["errors"]:
            where = r["fired"] or f"point {r['at']} (not reached)"
            failures.append(f"{where}: {'; '.join(r['errors'])}")
    record_property("points", points)
    record_property("lost_or_duplicated", len(broken))
    print(
        f"\n{backend}/{scenario.__name__}: {points} points, {len(results)} run, {fired} fired, "
        f"{len(failures)} failed, {len(broken)} lost or duplicated bytes "
        f"({time.monotonic() - began:.1f} s)"
    )
    for r in broken:
        print(f"  bytes: {r['fired']}: {r['broken']} {' '.join(r['notes'])}")
    # Thread scheduling moves the points a little between runs: most fired.
    assert fired >= len(results) * 0.8, f"only {fired} of {len(results)} points fired"
    assert not failures, f"{len(failures)} of {points} points:\n" + "\n".join(failures)


if __name__ == "__main__":
    sys.exit(sweep(sys.argv[1], sys.argv[2], int(sys.argv[3])))
