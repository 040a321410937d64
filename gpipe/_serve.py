"""``python -m gpipe serve``: stream request and response bodies through pipes.

A WSGI application, run on :class:`gevent.pywsgi.WSGIServer`:

``POST /upload``
    Streams the request body (``Content-Length`` or chunked) into a
    consumer that hashes it with SHA-256 while writing it to a temporary
    file; answers ``{"size": N, "sha256": "..."}``.
``GET /download?size=N[&level=L][&fail_at=M]``
    Streams a ``.tar.gz`` archive that :mod:`tarfile` writes on the fly
    into a pipe: ``N`` bytes of pseudo-random data in 1 MiB parts named
    ``gpipe-download/part-NNNNN.bin``, then ``gpipe-download/SHA256SUMS``.
    ``level`` is the gzip level (0-9, default 6); ``fail_at`` makes the
    archive writer raise once it wrote ``M`` bytes of data, to show that
    a failed download ends without the response's final chunk.
``GET /stats``
    ``{"producers": ..., "consumers": ..., "greenlets": ...}``: the
    archive writers and upload consumers running now, and the live
    greenlets of the process.

Memory stays constant whatever the sizes: each body crosses a pipe in
chunks of at most 64 KiB, with backpressure from the socket.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from ._pipe import PipeReader, PipeWriter
from ._spawn import spawn_consumer, spawn_producer

CHUNK = 64 * 1024
PART = 1 << 20
MAX_SIZE = 1 << 40
ARCHIVE_DIR = "gpipe-download"

StartResponse = Callable[..., Any]


def part_data(index: int, size: int) -> bytes:
    """The content of part *index*: *size* bytes, the same on every run."""
    return random.Random(f"{ARCHIVE_DIR}/{index}").randbytes(size)


class _Counter:
    """How many tasks of one kind are running, and the most there were."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


PRODUCERS = _Counter()
CONSUMERS = _Counter()


class _GzipSink:
    """A file for :class:`tarfile.TarFile` that gzips into a pipe writer.

    Output is gathered into writes of about :data:`CHUNK` bytes. If the
    archive fails, what is gathered is dropped, never flushed: only
    :meth:`finish` completes the stream.
    """

    def __init__(self, writer: PipeWriter, level: int) -> None:
        self._writer = writer
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._out = bytearray()
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def write(self, data: bytes) -> int:
        self._pos += len(data)
        self._out += self._zip.compress(data)
        if len(self._out) >= CHUNK:
            self._writer.write(self._out)
            del self._out[:]
        return len(data)

    def finish(self) -> None:
        self._out += self._zip.flush()
        self._writer.write(self._out)
        del self._out[:]


def write_archive(
    writer: PipeWriter, size: int, level: int = 6, fail_at: int | None = None
) -> None:
    """Write the download archive of *size* data bytes to *writer*.

    :raises RuntimeError: *fail_at* bytes of data were written.
    """
    with PRODUCERS:
        sink = _GzipSink(writer, level)
        # Not a stream ("w|"): TarFile then writes nothing from a finaliser,
        # and leaving the block by an error adds no end-of-archive marker.
        with tarfile.open(fileobj=sink, mode="w", copybufsize=CHUNK) as tar:  # type: ignore[call-overload]
            sums = []
            done = 0
            index = 0
            while done < size:
                if fail_at is not None and done >= fail_at:
                    raise RuntimeError(f"archive failed on purpose after {done} bytes")
                data = part_data(index, min(PART, size - done))
                name = f"part-{index:05d}.bin"
                _add(tar, name, data)
                sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
                done += len(data)
                index += 1
            _add(tar, "SHA256SUMS", "".join(sums).encode())
        sink.finish()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"{ARCHIVE_DIR}/{name}")
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # the same archive, byte for byte, on every run
    tar.addfile(info, io.BytesIO(data))


def store_upload(reader: PipeReader) -> dict[str, Any]:
    """Hash what *reader* yields into a temporary file; its size and SHA-256."""
    with CONSUMERS:
        digest = hashlib.sha256()
        size = 0
        with tempfile.TemporaryFile(prefix="gpipe-upload-") as file:
            for chunk in reader.iter_chunks(CHUNK):
                digest.update(chunk)
                file.write(chunk)
                size += len(chunk)
            file.flush()
        return {"size": size, "sha256": digest.hexdigest()}


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode() + b"\n"
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _int_param(query: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    values = query.get(name)
    if not values:
        return None
    try:
        value = int(values[-1])
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def download(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        size = _int_param(query, "size", 0, MAX_SIZE)
        if size is None:
            raise ValueError("size is required")
        level = _int_param(query, "level", 0, 9)
        fail_at = _int_param(query, "fail_at", 0, MAX_SIZE)
    except ValueError as exc:
        return _json(start_response, "400 Bad Request", {"error": str(exc)})
    reader = spawn_producer(write_archive, size, 6 if level is None else level, fail_at)
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/gzip"),
            ("Content-Disposition", f'attachment; filename="{ARCHIVE_DIR}.tar.gz"'),
        ],
    )
    # The server closes this when the client goes away, which stops the producer.
    return reader.iter_chunks(CHUNK)


def upload(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"]
    writer = spawn_consumer(store_upload)
    try:
        with writer:  # leaving it by an error hands the error to the consumer
            while True:
                chunk = body.read(CHUNK)
                if not chunk:
                    break
                writer.write(chunk)
    except OSError as exc:  # the client sent less than it announced
        return _json(start_response, "400 Bad Request", {"error": str(exc)})
    return _json(start_response, "200 OK", writer.join())


def stats(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    import gc

    from greenlet import greenlet

    live = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and not obj.dead)
    return _json(
        start_response,
        "200 OK",
        {
            "producers": PRODUCERS.now,
            "producers_peak": PRODUCERS.peak,
            "consumers": CONSUMERS.now,
            "greenlets": live,
        },
    )


ROUTES = {
    ("POST", "/upload"): upload,
    ("GET", "/download"): download,
    ("GET", "/stats"): stats,
}


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application of ``python -m gpipe serve``."""
    path = environ.get("PATH_INFO", "")
    route = ROUTES.get((environ["REQUEST_METHOD"], path))
    if route is not None:
        return route(environ, start_response)
    if any(p == path for _, p in ROUTES):
        return _json(start_response, "405 Method Not Allowed", {"error": "method not allowed"})
    return _json(start_response, "404 Not Found", {"error": "not found"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to bind; 0 picks a free one (8080)"
    )


def run(args: argparse.Namespace) -> int:
    import signal

    import gevent
    from gevent.pywsgi import WSGIServer

    if not 0 <= args.port <= 65535:
        print("--port must be between 0 and 65535", file=sys.stderr)
        return 2
    server = WSGIServer((args.host, args.port), application, backlog=1024)
    server.start()
    host, port = server.address[:2]
    # Tests and scripts read the bound address from this line.
    print(f"serving on http://{host}:{port}/", flush=True)
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(server.stop, 5))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(5)
    return 0
