"""When a producer's failure reaches the HTTP client as an error (docs/framing.rst).

Real servers on 127.0.0.1 (``python -m gpipe serve``, the threaded
example server, a gevent.pywsgi application that sets a Content-Length),
each in its own process; real clients: raw sockets, :mod:`http.client`
and curl. A failing download of the example application is cut after
2 MiB of its data; whether the client can tell depends on the framing:

* chunked HTTP/1.1: the final chunk is missing, an error;
* a Content-Length: the body is short, an error;
* HTTP/1.0 (a client that asks for it, or the threaded server, which
  answers so whatever the request): a clean close, no error; only the
  body's own end (the gzip trailer, the ``SHA256SUMS`` member) tells.
"""

from __future__ import annotations

import gzip
import http.client
import io
import shutil
import socket
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_server import IO_TIMEOUT, Server, read_until_closed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAILING = "/download?size=8388608&level=0&fail_at=2097152"
WHOLE = "/download?size=3000000&level=0"
TIMEOUT = 60

# A gevent.pywsgi server whose application announces a Content-Length and
# fails after 1000 of its 100000 bytes.
CONTENT_LENGTH_APP = """\
import sys

from gevent.pywsgi import WSGIServer

import gpipe


def produce(writer):
    writer.write(b"x" * 1000)
    raise OSError("failed on purpose")


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "100000")])
    return gpipe.spawn_producer(produce).iter_chunks()


server = WSGIServer(("127.0.0.1", int(sys.argv[-1])), app, log=None)
server.start()
print(f"serving on http://127.0.0.1:{server.server_port}/", flush=True)
server.serve_forever()
"""


def get(srv: Server, path: str, version: str) -> tuple[list[bytes], bytes]:
    """GET *path* in HTTP/*version* on a raw socket: the head's lines and
    the body, read until the server closes the connection.

    :raises ConnectionResetError: the server reset the connection.
    """
    with socket.create_connection((srv.host, srv.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(
            f"GET {path} HTTP/{version}\r\nHost: {srv.host}\r\nConnection: close\r\n\r\n".encode()
        )
        reply = read_until_closed(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def header(head: list[bytes], name: bytes) -> bytes | None:
    for line in head[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def members(body: bytes) -> list[str]:
    """The names in a .tar.gz body.

    :raises EOFError: the gzip stream ends before its trailer.
    """
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return tar.getnames()


@pytest.fixture(scope="module")
def pywsgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("pywsgi") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("threaded") / "server.log"
    srv = Server(log, argv=[str(EXAMPLES / "threaded_server.py")])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def content_length(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("content-length")
    script = folder / "app.py"
    script.write_text(CONTENT_LENGTH_APP)
    srv = Server(folder / "server.log", argv=[str(script)])
    yield srv
    srv.stop()


@pytest.mark.timeout(TIMEOUT)
def test_chunked_http11_is_an_error(pywsgi):
    """gevent.pywsgi, HTTP/1.1: the body ends without its final chunk."""
    head, body = get(pywsgi, FAILING, "1.1")
    assert header(head, b"Transfer-Encoding") == b"chunked"
    assert len(body) > 2 << 20
    assert not body.endswith(b"0\r\n\r\n")
    conn = http.client.HTTPConnection(pywsgi.host, pywsgi.port, timeout=IO_TIMEOUT)
    try:
        conn.request("GET", FAILING)
        with pytest.raises(http.client.IncompleteRead):
            conn.getresponse().read()
    finally:
        conn.close()


@pytest.mark.timeout(TIMEOUT)
def test_http10_client_gets_a_clean_close(pywsgi):
    """gevent.pywsgi, HTTP/1.0: no chunks, no length; the failure is a clean
    close (no reset), like the end of a whole body. Only the body's own end
    tells: the gzip trailer is missing."""
    head, body = get(pywsgi, FAILING, "1.0")
    assert b" 200 " in head[0]
    assert header(head, b"Transfer-Encoding") is None
    assert header(head, b"Content-Length") is None
    assert len(body) > 2 << 20
    with pytest.raises(EOFError):
        members(body)
    # A whole download looks the same on the wire, and its end is there.
    head, body = get(pywsgi, WHOLE, "1.0")
    assert header(head, b"Transfer-Encoding") is None
    assert members(body)[-1] == "gpipe-download/SHA256SUMS"


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_content_length_is_an_error(content_length, version):
    """An announced Content-Length makes a cut body short, in HTTP/1.0 too."""
    head, body = get(content_length, "/", version)
    assert header(head, b"Content-Length") == b"100000"
    assert body == b"x" * 1000
    conn = http.client.HTTPConnection(content_length.host, content_length.port, timeout=IO_TIMEOUT)
    try:
        conn.request("GET", "/")
        with pytest.raises(http.client.IncompleteRead):
            conn.getresponse().read()
    finally:
        conn.close()


@pytest.mark.timeout(TIMEOUT)
def test_threaded_server_ends_a_failed_download_cleanly(threaded):
    """wsgiref answers an HTTP/1.1 request in HTTP/1.0 style: http.client
    reads the cut body to a clean end and raises nothing."""
    conn = http.client.HTTPConnection(threaded.host, threaded.port, timeout=IO_TIMEOUT)
    try:
        conn.request("GET", FAILING)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.version == 10
        assert resp.getheader("Transfer-Encoding") is None
        assert resp.getheader("Content-Length") is None
        body = resp.read()  # no IncompleteRead: nothing says it is cut
    finally:
        conn.close()
    assert len(body) > 2 << 20
    with pytest.raises(EOFError):
        members(body)


@pytest.mark.timeout(TIMEOUT)
def test_threaded_server_refuses_chunked_uploads(threaded):
    with socket.create_connection((threaded.host, threaded.port), timeout=IO_TIMEOUT) as sock:
        # The headers only: the server answers without reading a body.
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n"
        )
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.0 411 Length Required\r\n")


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize(
    "which, options, status",
    [
        ("pywsgi", [], 18),  # CURLE_PARTIAL_FILE
        ("pywsgi", ["--http1.0"], 0),
        ("threaded", [], 0),
        ("content_length", ["--http1.0"], 18),
    ],
)
def test_curl_exit_status(request, which, options, status):
    """What the docs say curl does, server by server."""
    srv = request.getfixturevalue(which)
    path = "/" if which == "content_length" else FAILING
    proc = subprocess.run(
        ["curl", "-s", "--max-time", "30", "-o", "/dev/null", *options, srv_url(srv, path)],
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == status


def srv_url(srv: Server, path: str) -> str:
    return f"http://{srv.host}:{srv.port}{path}"


def test_zipfile_exit_writes_a_whole_zip():
    """ZipFile.__exit__ writes the central directory even when its block
    raised: a failed producer's zip reads as a whole one, a member short."""
    body = io.BytesIO()
    with pytest.raises(OSError, match="the second part failed"):
        with zipfile.ZipFile(body, "w") as archive:
            archive.writestr("part-1.bin", b"x" * 1000)
            raise OSError("the second part failed")
    with zipfile.ZipFile(body) as archive:
        assert archive.namelist() == ["part-1.bin"]
        assert archive.testzip() is None


def test_gzip_checks_its_trailer():
    """The end marker the example's download relies on: a gzip stream cut
    anywhere before its last byte fails to decompress."""
    data = gzip.compress(b"x" * 100_000)
    for cut in (len(data) - 1, len(data) - 8, len(data) // 2):
        with pytest.raises(EOFError):
            gzip.decompress(data[:cut])
