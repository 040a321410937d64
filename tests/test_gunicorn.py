"""examples/streaming_app.py under a real ``gunicorn -k gevent`` worker.

gunicorn runs as a subprocess on 127.0.0.1, on a free port it picks
itself (``-b 127.0.0.1:0``, read back from its log), with one gevent
worker, which monkey-patches the worker process: there gpipe runs on its
gevent backend. Clients are :mod:`http.client` and raw sockets, in
threads of this (unpatched) process. Every wait is bounded.

All of it is in the ``integration`` env (``pytest -m integration``),
which installs gunicorn (and ``packaging``, which its gevent worker
imports).
"""

from __future__ import annotations

import functools
import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_server import (
    BIG,
    RSS_BOUND,
    MiB,
    Server,
    check_download,
    chunks,
    concurrent_downloads,
    raw_get,
    read_until_closed,
    report,
    upload,
)

pytest.importorskip("gunicorn", reason="the integration env installs gunicorn")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status"),
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
START_TIMEOUT = 30.0


@functools.cache
def _gunicorn_options() -> tuple[str, ...]:
    """Options for this gunicorn: no control socket where it has one.

    Newer gunicorns open a control socket in the home folder by default,
    which concurrent test servers would share.
    """
    usage = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"],
        check=True,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    ).stdout
    return ("--no-control-socket",) if "--no-control-socket" in usage else ()


class Gunicorn(Server):
    """``gunicorn -k gevent`` serving examples/streaming_app.py:app."""

    def __init__(self, log: Path, *options: str, dev_mode: bool = True) -> None:
        # Its own start (not Server.__init__): gunicorn prints no banner.
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 -- closed in stop()
        # Development mode shows ResourceWarning (an unclosed pipe end); its
        # allocator hooks would blur memory measurements, so those run without.
        mode = ["-X", "dev"] if dev_mode else []
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONMALLOC")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *mode,
                "-m",
                "gunicorn",
                "-k",
                "gevent",
                "--workers",
                "1",
                "-b",
                "127.0.0.1:0",
                "--chdir",
                str(EXAMPLES),
                "--graceful-timeout",
                "5",
                *_gunicorn_options(),
                *options,
                "streaming_app:app",
            ],
            env=env,
            stdout=self._log,
            stderr=self._log,  # a file: the logs never fill a pipe
        )
        deadline = time.monotonic() + START_TIMEOUT
        found = None
        while found is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start: {log.read_text()}")
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
            time.sleep(0.05)
        self.host, self.port = "127.0.0.1", int(found.group(1))
        # The master listens before its worker runs: wait for the worker.
        while True:
            try:
                self.pid = self.stats()["pid"]
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"gunicorn's worker did not answer: {log.read_text()}")
                time.sleep(0.05)
        assert self.pid != self.proc.pid  # the worker answered, not the master

    # conn(), get_json(), stats(), vmhwm() (of the worker: self.pid),
    # wait_for(), log() and stop() are Server's.


def _tracebacks(log: str) -> list[str]:
    """The tracebacks in *log* that no test caused on purpose."""
    return [
        block
        for block in re.split(r"\n(?=\[\d{4}-)", log)
        if "Traceback" in block and "archive failed on purpose" not in block
    ]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    srv = Gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield srv
    srv.stop()
    log = srv.log()
    assert not _tracebacks(log), log
    assert "ResourceWarning" not in log


@pytest.fixture
def fresh_gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    """A server of its own, for a test that measures the worker's memory."""
    srv = Gunicorn(tmp_path / "gunicorn.log", dev_mode=False)
    # Warm up: lazy imports and first-use allocations are not growth.
    upload(srv, chunks(MiB, MiB), chunked=True)
    check_download(srv, 2 * MiB, level=0)
    yield srv
    srv.stop()
    assert not _tracebacks(srv.log())


@pytest.mark.timeout(120)
def test_worker_runs_the_gevent_backend(gunicorn):
    check_download(gunicorn, 3 * MiB + 7, level=1)
    upload(gunicorn, chunks(3 * MiB + 7, 100_000), chunked=True)
    upload(gunicorn, chunks(3 * MiB + 7, 100_000), chunked=False, length=3 * MiB + 7)
    stats = gunicorn.stats()
    assert stats["greenlets"] > 0  # the app saw gevent loaded: a patched worker
    assert (stats["producers"], stats["consumers"]) == (0, 0)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload_256mib_constant_memory(fresh_gunicorn, chunked):
    before = fresh_gunicorn.vmhwm()
    start = time.monotonic()
    upload(fresh_gunicorn, chunks(BIG, MiB), chunked=chunked, length=BIG)
    took = time.monotonic() - start
    growth = fresh_gunicorn.vmhwm() - before
    report(
        f"gunicorn upload 256 MiB {'chunked' if chunked else 'content-length'}",
        f"worker VmHWM {before / MiB:.1f} MiB, grew by {growth / MiB:.2f} MiB; {took:.1f} s",
    )
    assert growth < RSS_BOUND


@pytest.mark.timeout(240)
def test_download_256mib_constant_memory(fresh_gunicorn):
    before = fresh_gunicorn.vmhwm()
    start = time.monotonic()
    check_download(fresh_gunicorn, BIG, level=0)
    took = time.monotonic() - start
    growth = fresh_gunicorn.vmhwm() - before
    report(
        "gunicorn download 256 MiB",
        f"worker VmHWM {before / MiB:.1f} MiB, grew by {growth / MiB:.2f} MiB; {took:.1f} s",
    )
    assert growth < RSS_BOUND


@pytest.mark.timeout(120)
def test_client_leaves_mid_download(gunicorn):
    """The producer stops within a few seconds; no traceback; the next request is served."""
    log_before = gunicorn.log()
    assert gunicorn.stats()["producers"] == 0
    sock = raw_get(gunicorn, f"/download?size={1 << 40}&level=0")
    got = 0
    with sock:
        while got < MiB:
            data = sock.recv(1 << 16)
            assert data, "the server closed first"
            got += len(data)
        assert gunicorn.stats()["producers"] == 1  # still streaming, with backpressure
        # Unread data in the receive buffer: the close resets the connection.
    took = gunicorn.wait_for(lambda s: s["producers"] == 0, 5.0, "the producer stops")
    report("gunicorn client left", f"producer stopped {took:.3f} s after")
    check_download(gunicorn, MiB)  # the next request is served
    new = gunicorn.log()[len(log_before) :]
    assert not _tracebacks(new), new
    assert "ResourceWarning" not in new


@pytest.mark.timeout(120)
def test_waiting_producer_ends_when_client_leaves(gunicorn):
    """A producer waiting with a heartbeat ends soon after its client left."""
    sock = raw_get(gunicorn, "/wait?seconds=3600&heartbeat=0.1")
    with sock:
        head = b""
        while b"\r\n\r\n" not in head:
            got = sock.recv(4096)
            assert got, "the server closed first"
            head += got
        assert head.startswith(b"HTTP/1.1 200 ")
        gunicorn.wait_for(lambda s: s["producers"] == 1, 5.0, "the producer waits")
    took = gunicorn.wait_for(lambda s: s["producers"] == 0, 5.0, "the waiting producer ends")
    report("gunicorn waiting producer", f"ended {took:.3f} s after the client left")


@pytest.mark.timeout(120)
def test_failing_producer_cuts_the_body(gunicorn):
    """The client sees an incomplete body, never a whole-looking one."""
    size, fail_at = 8 * MiB, 2 * MiB
    sock = raw_get(gunicorn, f"/download?size={size}&level=0&fail_at={fail_at}")
    with sock:
        reply = read_until_closed(sock)  # the worker closes the connection
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"chunked" in head.lower()
    assert len(body) > fail_at  # the stream was well under way
    assert not body.endswith(b"0\r\n\r\n")

    conn = gunicorn.conn()
    try:
        conn.request("GET", f"/download?size={size}&level=0&fail_at={fail_at}")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
    gunicorn.wait_for(lambda s: s["producers"] == 0, 5.0, "the failed producers end")
    assert gunicorn.log().count("RuntimeError: archive failed on purpose after 2097152") == 2
    check_download(gunicorn, MiB)  # and the worker keeps serving


@pytest.mark.timeout(300)
def test_100_concurrent_downloads(tmp_path):
    srv = Gunicorn(tmp_path / "gunicorn.log", "--worker-connections", "100")
    try:
        start = time.monotonic()
        at_once = concurrent_downloads(srv, 100, 2 * MiB + 1)
        took = time.monotonic() - start
        report(
            "gunicorn 100 x 2 MiB",
            f"{at_once['producers']} producers when all had begun,"
            f" at most {at_once['producers_peak']} at once; {took:.1f} s",
        )
        # Every response had begun before any was read (the barrier): 100
        # connections at once. Their producers overlapped too.
        assert at_once["producers_peak"] >= 2
    finally:
        srv.stop()
    log = srv.log()
    assert not _tracebacks(log), log
    assert "ResourceWarning" not in log
