"""Real consumers and producers of files through a pipe, bytes checked end to end.

Each runs on both backends: greenlets on the gevent backend, OS threads
on the threading backend. The ``patched`` tox env runs this module
again in a process that called :func:`gevent.monkey.patch_all` first
(``tests/patched.py``). The HTTP clients (requests, urllib3) send a
reader as a request body to a :mod:`gevent.pywsgi` server on 127.0.0.1
that hashes it.
"""

from __future__ import annotations

import bz2
import csv
import email.parser
import email.policy
import gzip
import hashlib
import io
import json
import lzma
import pickle
import random
import shutil
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
import requests
import urllib3
from gevent import monkey
from gevent.pywsgi import WSGIServer

import gpipe

from .conftest import WAIT, Harness

UNDER_PATCHING = monkey.is_module_patched("threading")

# Incompressible enough that the compressors write many times.
PAYLOAD = random.Random(7).randbytes(300_000) * 2 + b"the end\n"


def through(
    bk: Harness, produce: Callable[[gpipe.PipeWriter], Any]
) -> tuple[gpipe.PipeReader, Any]:
    """A reader, and the task running ``produce(writer)`` on bk's backend.

    The producer closes the writer as its own code does (``with``
    blocks); a producer that returns with it open leaves it for
    close_all(), and the reader's checks below never see a clean EOF.
    """
    r, w = bk.pipe()
    return r, bk.go(produce, w)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- archives -----------------------------------------------------------------

FILES = {"a.txt": b"hello\n", "big.bin": PAYLOAD, "empty": b""}


def write_tar(w: gpipe.PipeWriter, mode: str) -> None:
    with w, tarfile.open(fileobj=w, mode=mode) as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("mode", ["w|gz", "w|", "w|bz2", "w|xz"])
def test_tarfile_stream_both_ways(bk, mode):
    r, task = through(bk, lambda w: write_tar(w, mode))
    got = {}
    with r.makefile("rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            got[member.name] = extracted.read() if extracted else None
        f.read()  # the padding after the end-of-archive marker
    task.get()
    assert got == FILES


def test_tarfile_stream_read_from_the_reader_itself(bk):
    """tarfile's r|* expects full reads: read(n) waits across writes for
    n bytes, so a 2-byte first write does not break it."""

    def produce(w):
        buf = io.BytesIO()
        write_tar_to(buf)
        data = buf.getvalue()
        with w:
            w.write(data[:2])
            w.write(data[2:])

    def write_tar_to(fileobj):
        with tarfile.open(fileobj=fileobj, mode="w|gz") as tar:
            info = tarfile.TarInfo("a.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))

    r, task = through(bk, produce)
    with r, tarfile.open(fileobj=r, mode="r|*") as tar:
        assert tar.extractfile(tar.next()).read() == b"hello\n"
        r.read()
    task.get()

    r, task = through(bk, produce)
    with r.makefile("rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        assert tar.extractfile(tar.next()).read() == b"hello\n"
        f.read()
    task.get()


def test_zipfile_writes_to_the_writer(bk):
    def produce(w):
        with w.makefile("wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in FILES.items():
                z.writestr(name, data)
            with z.open("streamed.bin", "w") as member:
                for i in range(0, len(PAYLOAD), 65536):
                    member.write(PAYLOAD[i : i + 65536])

    r, task = through(bk, produce)
    with r:
        archive = r.readall()
    task.get()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert z.testzip() is None
        got = {name: z.read(name) for name in z.namelist()}
    assert got == {**FILES, "streamed.bin": PAYLOAD}


# -- compressors --------------------------------------------------------------

# Each side is opened in a with block by the tests.
COMPRESSORS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "gzip": (lambda w: gzip.GzipFile(fileobj=w, mode="wb"), lambda r: gzip.GzipFile(fileobj=r)),
    "bz2": (lambda w: bz2.BZ2File(w, "wb"), lambda r: bz2.BZ2File(r, "rb")),
    "lzma": (lambda w: lzma.LZMAFile(w, "wb"), lambda r: lzma.LZMAFile(r, "rb")),  # noqa: SIM115
}


def test_gzip_picks_its_direction_from_the_mode(bk):
    r, w = bk.pipe()
    task = bk.go(r.readall)
    with warnings.catch_warnings():
        # Python 3.11 on warns that the default may change: the guess is the point.
        warnings.simplefilter("ignore", FutureWarning)
        with w, gzip.GzipFile(fileobj=w) as gz:  # would guess "rb" without w.mode
            assert gz.mode == gzip.WRITE
            gz.write(b"guessed")
    assert gzip.decompress(task.get()) == b"guessed"
    with gzip.GzipFile(fileobj=r) as gz:
        assert gz.mode == gzip.READ


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_compressors_both_ways(bk, name):
    compressing, decompressing = COMPRESSORS[name]

    def produce(w):
        with w, compressing(w) as out:
            for i in range(0, len(PAYLOAD), 10_000):
                out.write(PAYLOAD[i : i + 10_000])

    r, task = through(bk, produce)
    with r, decompressing(r) as f:
        got = f.read()
    task.get()
    assert got == PAYLOAD


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_compressor_cut_short_is_an_error(bk, name):
    """The producer fails halfway: the decompressor raises, never a short result."""
    compressing, decompressing = COMPRESSORS[name]
    boom = OSError("source went away")

    def produce(w):
        with w, compressing(w) as out:
            out.write(PAYLOAD[:100_000])
            raise boom

    r, task = through(bk, produce)
    with r, decompressing(r) as f, pytest.raises(OSError, match="source went away"):
        f.read()
    with pytest.raises(OSError):
        task.get()


# -- text formats through makefile() --------------------------------------------

ROWS = [[str(i), f"name {i}", 'Grüße, "quoted"\nand a newline'] for i in range(5000)]


def test_csv_through_makefile(bk):
    def produce(w):
        with w.makefile("w", newline="") as f:
            csv.writer(f).writerows(ROWS)

    r, task = through(bk, produce)
    with r.makefile("r", newline="") as f:
        got = list(csv.reader(f))
    task.get()
    assert got == ROWS


DOC = {"rows": ROWS[:1000], "pi": 3.14159, "ok": True, "none": None}


def test_json_through_makefile(bk):
    def produce(w):
        with w.makefile("w") as f:
            json.dump(DOC, f)

    r, task = through(bk, produce)
    with r.makefile("r") as f:
        got = json.load(f)
    task.get()
    assert got == DOC


def test_pickle_through_makefile(bk):
    obj = {"payload": PAYLOAD, "rows": ROWS[:100], "n": list(range(10_000))}

    def produce(w):
        with w.makefile("wb") as f:  # 64 KiB writes
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)

    r, task = through(bk, produce)
    with r.makefile("rb") as f:
        got = pickle.load(f)
        assert f.read() == b""
    task.get()
    assert got == obj


def test_pickle_from_the_reader_itself(bk):
    """pickle.load expects read(n) to return n bytes: the reader's read(n)
    waits across writes, so no buffer is needed."""
    obj = {"payload": PAYLOAD}
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def produce(w):
        with w:
            for i in range(0, len(data), 65536):
                w.write(data[i : i + 65536])

    r, task = through(bk, produce)
    with r:
        assert pickle.load(r) == obj
        assert r.read() == b""
    task.get()


# -- readers of binary files ------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="hashlib.file_digest is new in 3.11")
def test_hashlib_file_digest(bk):
    def produce(w):
        with w:
            for i in range(0, len(PAYLOAD), 50_000):
                w.write(PAYLOAD[i : i + 50_000])

    r, task = through(bk, produce)
    with r:
        digest = hashlib.file_digest(r, "sha256").hexdigest()
    task.get()
    assert digest == sha(PAYLOAD)


def test_email_bytes_parser(bk):
    message = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: pipes\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"line of the body\r\n" * 5000
    )

    def produce(w):
        with w:
            for i in range(0, len(message), 4096):
                w.write(message[i : i + 4096])

    r, task = through(bk, produce)
    with r:
        parsed = email.parser.BytesParser(policy=email.policy.default).parse(r)
    task.get()
    assert parsed["Subject"] == "pipes"
    assert parsed.get_content() == "line of the body\n" * 5000


def test_shutil_copyfileobj_both_ways(bk):
    def produce(w):
        with w:
            shutil.copyfileobj(io.BytesIO(PAYLOAD), w, 65536)

    r, task = through(bk, produce)
    out = io.BytesIO()
    with r:
        shutil.copyfileobj(r, out)
    task.get()
    assert out.getvalue() == PAYLOAD


# -- a reader as an HTTP request body ---------------------------------------------------


def hashing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    while chunk := body.read(65536):
        digest.update(chunk)
        size += len(chunk)
    result = json.dumps(
        {"sha256": digest.hexdigest(), "size": size, "te": environ.get("HTTP_TRANSFER_ENCODING")}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [result]


@pytest.fixture
def hashing_server() -> Iterator[str]:
    server = WSGIServer(("127.0.0.1", 0), hashing_app, log=None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.stop(timeout=WAIT)


def client_call(fn: Callable[[], Any]) -> Any:
    """Run a blocking client call while the server's hub keeps running.

    Unpatched, the client's sockets would block the hub: it runs in a
    native thread of gevent's pool. Patched, its sockets cooperate, and
    it runs in a greenlet.
    """
    if UNDER_PATCHING:
        return gevent.spawn(fn).get(timeout=WAIT * 3)
    return gevent.get_hub().threadpool.spawn(fn).get(timeout=WAIT * 3)


def produce_body(w: gpipe.PipeWriter) -> None:
    with w:
        for i in range(0, len(PAYLOAD), 32768):
            w.write(PAYLOAD[i : i + 32768])


def test_requests_sends_a_reader(bk, hashing_server):
    r, task = through(bk, produce_body)

    def post() -> Any:
        with r:
            response = requests.post(hashing_server, data=r, timeout=WAIT * 3)
        response.raise_for_status()
        return response.json()

    result = client_call(post)
    task.get()
    assert result == {"sha256": sha(PAYLOAD), "size": len(PAYLOAD), "te": "chunked"}


def test_urllib3_sends_a_reader(bk, hashing_server):
    r, task = through(bk, produce_body)

    def post() -> Any:
        with urllib3.PoolManager() as http, r:
            response = http.request("POST", hashing_server, body=r, chunked=True, timeout=WAIT * 3)
        assert response.status == 200, response.data
        return json.loads(response.data)

    result = client_call(post)
    task.get()
    assert result == {"sha256": sha(PAYLOAD), "size": len(PAYLOAD), "te": "chunked"}


def test_requests_body_of_a_failing_producer_is_incomplete(bk, hashing_server):
    """The producer fails halfway: the request fails, no 200 for half a body."""
    boom = OSError("source went away")

    def produce(w):
        with w:
            w.write(PAYLOAD[:100_000])
            raise boom

    r, task = through(bk, produce)

    def post() -> Any:
        with r, pytest.raises(OSError, match="source went away"):
            requests.post(hashing_server, data=r, timeout=WAIT * 3)

    client_call(post)
    with pytest.raises(OSError):
        task.get()
