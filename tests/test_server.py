"""``python -m gpipe serve`` on 127.0.0.1, driven by real HTTP clients.

Each server runs in its own process (it uses gevent; this process never
patches anything), started with ``--port 0``; it prints the address it
bound. Clients are :mod:`http.client` and raw sockets, in threads.

The tests marked ``integration`` move hundreds of MiB; tox runs them in
the ``integration`` env only (``pytest -m integration``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import random
import select
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MiB = 1 << 20
# Far above what a passing request needs; only a hang reaches it.
IO_TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/PID/status"
)


def expected_part(index: int, size: int) -> bytes:
    """The content the archive's part *index* must have (see gpipe._serve)."""
    return random.Random(f"gpipe-download/{index}").randbytes(size)


class Server:
    """One ``python -m gpipe serve --port 0`` process."""

    def __init__(self, log: Path, dev_mode: bool = True, argv: list[str] | None = None) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 -- closed in stop()
        # Development mode shows ResourceWarning: an unclosed pipe end in the
        # log means a body was not closed. Its allocator hooks would blur
        # memory measurements, so those run without it.
        mode = ["-X", "dev"] if dev_mode else []
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONMALLOC")}
        self.proc = subprocess.Popen(
            [sys.executable, *mode, *(argv or ["-m", "gpipe", "serve"]), "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,  # a file: the access log never fills a pipe
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], IO_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("serving on http://"):
            self.stop()
            pytest.fail(f"server did not start: {line!r} {log.read_text()}")
        self.banner = line
        host_port = line.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.pid = self.proc.pid  # the process that serves (see vmhwm)

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=IO_TIMEOUT)

    def get_json(self, path: str) -> Any:
        conn = self.conn()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            return json.loads(resp.read())
        finally:
            conn.close()

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.get_json("/stats")
        return result

    def vmhwm(self) -> int:
        """The serving process's peak resident set size so far, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/PID/status")

    def wait_for(self, predicate: Any, within: float, what: str) -> float:
        """Poll /stats until *predicate* holds; fail after *within* seconds."""
        start = time.monotonic()
        while True:
            stats = self.stats()
            if predicate(stats):
                return time.monotonic() - start
            if time.monotonic() - start > within:
                pytest.fail(f"{what} not within {within} s: {stats}")
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server") / "server.log")
    yield srv
    srv.stop()
    log = srv.log_path.read_text()
    assert "Traceback" not in unexpected_log(log)
    assert "ResourceWarning" not in log


def unexpected_log(text: str) -> str:
    """The server log without the tracebacks tests cause on purpose."""
    return "\n".join(
        block
        for block in text.split("\n\n")
        if "archive failed on purpose" not in block and "unexpected end of file" not in block
    )


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for a test that measures the server's memory."""
    srv = Server(tmp_path / "server.log", dev_mode=False)
    # Warm up: lazy imports and first-use allocations are not growth.
    upload(srv, chunks(MiB, MiB), chunked=True)
    check_download(srv, 2 * MiB, level=0)
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log_path.read_text()


def chunks(total: int, size: int) -> Iterator[bytes]:
    """*total* bytes in pieces of *size*; each piece differs from the others."""
    block = random.Random(total).randbytes(size)
    for i, start in enumerate(range(0, total, size)):
        n = min(size, total - start)
        yield (i.to_bytes(8, "big") + block[8:n]) if n >= 8 else block[:n]


def upload(srv: Server, body: Iterator[bytes], *, chunked: bool, length: int = 0) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for piece in body:
            digest.update(piece)
            size += len(piece)
            yield piece

    conn = srv.conn()
    try:
        if chunked:
            headers = {"Transfer-Encoding": "chunked"}
            conn.request("POST", "/upload", body=counted(), headers=headers, encode_chunked=True)
        else:
            headers = {"Content-Length": str(length)}
            conn.request("POST", "/upload", body=counted(), headers=headers)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        assert resp.status == 200, answer
    finally:
        conn.close()
    assert answer == {"size": size, "sha256": digest.hexdigest()}
    return dict(answer)


def check_archive(fileobj: Any, size: int, extract_to: Path | None = None) -> None:
    """Read a download archive of *size* data bytes and check every byte."""
    parts = (size + MiB - 1) // MiB
    names = [f"gpipe-download/part-{i:05d}.bin" for i in range(parts)]
    seen = []
    unzipped = gzip.GzipFile(fileobj=fileobj, mode="rb")
    with tarfile.open(fileobj=unzipped, mode="r|") as tar:
        for member in tar:
            seen.append(member.name)
            if extract_to is not None:
                tar.extract(member, extract_to, **EXTRACT_ARGS)
                data = (extract_to / member.name).read_bytes()
            else:
                extracted = tar.extractfile(member)
                assert extracted is not None
                data = extracted.read()
            if member.name.endswith(".bin"):
                index = names.index(member.name)
                expected = expected_part(index, min(MiB, size - index * MiB))
                assert data == expected, f"{member.name} differs"
            else:
                sums = [
                    f"{hashlib.sha256(expected_part(i, min(MiB, size - i * MiB))).hexdigest()}"
                    f"  {name.split('/')[1]}\n"
                    for i, name in enumerate(names)
                ]
                assert data.decode() == "".join(sums)
    assert seen == [*names, "gpipe-download/SHA256SUMS"]
    # After the end-of-archive marker only zero padding is left; reading it
    # to the end checks the gzip trailer (CRC and length) too.
    rest = unzipped.read()
    assert rest == bytes(len(rest))


# tarfile's extraction filters (3.12, and security releases of older ones).
EXTRACT_ARGS: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def check_download(
    srv: Server, size: int, level: int | None = None, *, chunked: bool = True
) -> None:
    conn = srv.conn()
    try:
        query = f"/download?size={size}" + ("" if level is None else f"&level={level}")
        conn.request("GET", query)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/gzip"
        # wsgiref speaks HTTP/1.0 here: the body ends when the connection does.
        assert resp.getheader("Transfer-Encoding") == ("chunked" if chunked else None)
        check_archive(resp, size)
        assert resp.read() == b""  # the archive's end is the body's end
    finally:
        conn.close()


def raw_get(srv: Server, path: str) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=IO_TIMEOUT)
    # "Connection: close": a complete response ends the connection, so that
    # reading until it closes takes no longer than the response.
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {srv.host}\r\nConnection: close\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = bytearray()
    while True:
        got = sock.recv(1 << 16)
        if not got:
            return bytes(data)
        data += got


# -- light: every env ---------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload(server, chunked):
    upload(server, chunks(3 * MiB + 5, 64 * 1024), chunked=chunked, length=3 * MiB + 5)
    assert server.stats()["consumers"] == 0


@pytest.mark.timeout(60)
def test_upload_empty(server):
    assert upload(server, iter([]), chunked=False, length=0)["size"] == 0


@pytest.mark.timeout(60)
def test_upload_cut_short_is_refused(server):
    """A body shorter than its Content-Length is an error, not a short upload."""
    sock = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    with sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000
        )
        sock.shutdown(socket.SHUT_WR)
        reply = read_until_closed(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"unexpected end of file" in body
    server.wait_for(lambda s: s["consumers"] == 0, 2.0, "the consumer ends")


@pytest.mark.timeout(60)
def test_download_extracted(server, tmp_path):
    conn = server.conn()
    try:
        conn.request("GET", f"/download?size={3 * MiB + 77}")
        resp = conn.getresponse()
        assert resp.status == 200
        check_archive(resp, 3 * MiB + 77, extract_to=tmp_path)
    finally:
        conn.close()
    files = sorted(p.name for p in (tmp_path / "gpipe-download").iterdir())
    assert files == [
        "SHA256SUMS",
        "part-00000.bin",
        "part-00001.bin",
        "part-00002.bin",
        "part-00003.bin",
    ]
    assert server.stats()["producers"] == 0


@pytest.mark.timeout(60)
def test_download_empty(server):
    check_download(server, 0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/download", 400),
        ("GET", "/download?size=ten", 400),
        ("GET", "/download?size=-1", 400),
        ("GET", "/download?size=1&level=10", 400),
        ("GET", "/download?size=1&fail_at=x", 400),
        ("GET", "/wait", 400),
        ("GET", "/wait?seconds=nan", 400),
        ("GET", "/wait?seconds=1&heartbeat=0", 400),
        ("POST", "/download?size=1", 405),
        ("GET", "/upload", 405),
        ("GET", "/nowhere", 404),
    ],
)
def test_bad_requests(server, method, path, status):
    conn = server.conn()
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        assert resp.status == status
        assert "error" in json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.timeout(60)
def test_client_disconnect_stops_producer(server):
    """The client leaves after 1 MiB: the producer stops within 2 s."""
    before = server.stats()
    assert before["producers"] == 0
    sock = raw_get(server, f"/download?size={1 << 40}&level=0")
    got = 0
    with sock:
        while got < MiB:
            data = sock.recv(1 << 16)
            assert data, "the server closed first"
            got += len(data)
        assert server.stats()["producers"] == 1  # still streaming, with backpressure
        # Unread data in the receive buffer: the close resets the connection.
    took = server.wait_for(lambda s: s["producers"] == 0, 2.0, "the producer stops")
    print(f"producer stopped {took:.3f} s after the client left")
    # No greenlet leaked: the connection's and the producer's are gone.
    server.wait_for(
        lambda s: s["greenlets"] <= before["greenlets"],
        2.0,
        "the greenlets are back to before",
    )
    check_download(server, MiB)  # and the server keeps serving
    # The server closed the body: the reader was not left to the collector.
    assert "ResourceWarning" not in server.log_path.read_text()


@pytest.mark.timeout(60)
def test_producer_error_aborts_response(server):
    """No clean chunked terminator after a failure: never a truncated success."""
    size, fail_at = 8 * MiB, 2 * MiB
    sock = raw_get(server, f"/download?size={size}&level=0&fail_at={fail_at}")
    with sock:
        reply = read_until_closed(sock)  # the server closes the connection
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Transfer-Encoding: chunked" in head
    assert len(body) > fail_at  # the stream was well under way
    assert not body.endswith(b"0\r\n\r\n")

    conn = server.conn()
    try:
        conn.request("GET", f"/download?size={size}&level=0&fail_at={fail_at}")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
    server.wait_for(lambda s: s["producers"] == 0, 2.0, "the failed producers end")
    log = server.log_path.read_text()
    assert log.count("RuntimeError: archive failed on purpose after 2097152 bytes") == 2


def concurrent_downloads(srv: Server, count: int, size: int) -> dict[str, int]:
    """*count* clients each hold a response open, then all read; check every byte."""
    barrier = threading.Barrier(count + 1, timeout=IO_TIMEOUT)
    errors: list[BaseException] = []

    def client() -> None:
        conn = srv.conn()
        try:
            conn.request("GET", f"/download?size={size}&level=0")
            resp = conn.getresponse()
            assert resp.status == 200
            barrier.wait()  # every response has begun before any is read
            check_archive(resp, size)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    at_once = srv.stats()
    for thread in threads:
        thread.join(IO_TIMEOUT * 2)
        assert not thread.is_alive(), "a download hung"
    if errors:
        raise errors[0]
    srv.wait_for(lambda s: s["producers"] == 0, 2.0, "all producers end")
    return at_once


@pytest.mark.timeout(120)
def test_concurrent_downloads_light(server):
    # Every response has begun before any is read (the barrier); whether
    # producers are still running then depends on socket buffer sizes, so
    # only the content is checked here.
    concurrent_downloads(server, 20, MiB + 3)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "script, backend",
    [("gevent_server.py", "gevent"), ("threaded_server.py", "threading")],
)
def test_examples(tmp_path, script, backend):
    """The example application, unchanged, on gevent.pywsgi and on threads."""
    srv = Server(tmp_path / "server.log", argv=[str(EXAMPLES / script)])
    try:
        assert srv.banner.endswith(f"(backend {backend})\n")
        check_download(srv, 2 * MiB + 5, level=1, chunked=backend == "gevent")
        data = random.Random(0).randbytes(3 * MiB + 1)
        upload(srv, iter([data]), chunked=False, length=len(data))
        if backend == "gevent":
            upload(srv, chunks(3 * MiB + 1, 100_000), chunked=True)
        else:  # wsgiref takes no chunked request bodies, and says so
            conn = srv.conn()
            # The headers only: the server answers without reading a body,
            # and may close before one would have been sent.
            conn.putrequest("POST", "/upload")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            resp = conn.getresponse()
            assert resp.status == 411
            assert "Content-Length" in json.loads(resp.read())["error"]
            conn.close()
        stats = srv.stats()
        assert (stats["producers"], stats["consumers"]) == (0, 0)
        if backend == "threading":
            assert stats["greenlets"] == 0
    finally:
        srv.stop()
    log = srv.log_path.read_text()
    assert "Traceback" not in log
    assert "ResourceWarning" not in log


def test_example_module_is_the_served_app():
    """examples/streaming_app.py and python -m gpipe serve share one application."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import streaming_app, gpipe._serve as s;"
        "assert streaming_app.app is streaming_app.application is s.app;"
        "assert 'gevent' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code, str(EXAMPLES)], check=True, timeout=60)


@pytest.mark.timeout(60)
def test_waiting_producer_ends_when_client_leaves(server):
    """A producer that waits, with a heartbeat, ends soon after its client left.

    The producer writes nothing but a newline every 0.1 s while it waits
    for an upstream that never answers (an hour here). Each heartbeat
    reaches the server, whose write to the departed client fails; the
    server closes the body, and the next heartbeat ends the producer.
    """
    sock = raw_get(server, "/wait?seconds=3600&heartbeat=0.1")
    with sock:
        head = b""
        while b"\r\n\r\n" not in head:
            got = sock.recv(4096)
            assert got, "the server closed first"
            head += got
        assert head.startswith(b"HTTP/1.1 200 ")
        server.wait_for(lambda s: s["producers"] == 1, 5.0, "the producer waits")
    took = server.wait_for(lambda s: s["producers"] == 0, 5.0, "the waiting producer ends")
    print(f"waiting producer ended {took:.3f} s after the client left")


@pytest.mark.timeout(60)
def test_wait_answers(server):
    conn = server.conn()
    try:
        conn.request("GET", "/wait?seconds=0.3&heartbeat=0.1")
        resp = conn.getresponse()
        assert resp.status == 200
        body = resp.read()
    finally:
        conn.close()
    assert body.endswith(b'{"waited": 0.3}\n')
    assert set(body[: -len(b'{"waited": 0.3}\n')]) <= {ord("\n")}


# -- heavy: the integration env -----------------------------------------------

BIG = 256 * MiB
RSS_BOUND = 32 * MiB


def report(name: str, value: str) -> None:
    # Shown with pytest -s, and kept in the log of the integration env.
    print(f"\n[{name}] {value}", file=sys.stderr)


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload_256mib_constant_memory(fresh_server, chunked):
    before = fresh_server.vmhwm()
    start = time.monotonic()
    upload(fresh_server, chunks(BIG, MiB), chunked=chunked, length=BIG)
    took = time.monotonic() - start
    growth = fresh_server.vmhwm() - before
    report(
        f"upload 256 MiB {'chunked' if chunked else 'content-length'}",
        f"VmHWM {before / MiB:.1f} MiB, grew by {growth / MiB:.2f} MiB; {took:.1f} s",
    )
    assert growth < RSS_BOUND


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_download_256mib_constant_memory(fresh_server):
    before = fresh_server.vmhwm()
    start = time.monotonic()
    check_download(fresh_server, BIG, level=0)
    took = time.monotonic() - start
    growth = fresh_server.vmhwm() - before
    report(
        "download 256 MiB",
        f"VmHWM {before / MiB:.1f} MiB, grew by {growth / MiB:.2f} MiB; {took:.1f} s",
    )
    assert growth < RSS_BOUND


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_200_concurrent_downloads(fresh_server):
    before = fresh_server.stats()
    start = time.monotonic()
    at_once = concurrent_downloads(fresh_server, 200, 4 * MiB)
    took = time.monotonic() - start
    report("200 x 4 MiB", f"{at_once['producers']} producers at once; {took:.1f} s")
    assert at_once["producers"] >= 1
    fresh_server.wait_for(
        lambda s: s["greenlets"] <= before["greenlets"],
        2.0,
        "the greenlets are back to before",
    )
