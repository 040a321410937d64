"""The streaming application, and ``python -m gpipe serve`` that runs it.

``app`` is a plain WSGI application that uses only gpipe's public API
and imports no gevent: it runs unchanged under :mod:`gevent.pywsgi`
(``python -m gpipe serve``, ``examples/gevent_server.py``), under
``gunicorn -k gevent``, and under a threaded server without gevent
(``examples/threaded_server.py``), where :func:`gpipe.spawn_producer`
and :func:`gpipe.spawn_consumer` use threads. ``examples/streaming_app.py``
is this application. Its routes:

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
``GET /wait?seconds=S[&heartbeat=H]``
    A producer that waits (for a slow upstream, say) for ``S`` seconds
    before it writes its answer, ``{"waited": S}``; with ``heartbeat``,
    it writes a newline every ``H`` seconds meanwhile. A producer that
    is waiting learns that its client left only when it next writes:
    the heartbeat bounds that time.
``GET /stats``
    ``{"producers": ..., "consumers": ..., ...}``: the producers and
    upload consumers running now, the most producers there were, the
    live greenlets and threads, and the process id.

Memory stays constant whatever the sizes: each body crosses a pipe in
chunks of at most 64 KiB, with backpressure from the socket.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import gpipe

CHUNK = 64 * 1024
PART = 1 << 20
MAX_SIZE = 1 << 40
MAX_WAIT = 3600.0
ARCHIVE_DIR = "gpipe-download"

StartResponse = Callable[..., Any]


def part_data(index: int, size: int) -> bytes:
    """The content of part *index*: *size* bytes, the same on every run."""
    return random.Random(f"{ARCHIVE_DIR}/{index}").randbytes(size)


class _Counter:
    """How many tasks of one kind are running, and the most there were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # producers may be threads
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


PRODUCERS = _Counter()
CONSUMERS = _Counter()


# -- download: a writer API as a response body -------------------------------


class _GzipSink:
    """A file for :class:`tarfile.TarFile` that gzips into a pipe writer.

    Output is gathered into writes of about :data:`CHUNK` bytes. If the
    archive fails, what is gathered is dropped, never flushed: only
    :meth:`finish` completes the stream.
    """

    def __init__(self, writer: gpipe.PipeWriter, level: int) -> None:
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
    writer: gpipe.PipeWriter, size: int, level: int = 6, fail_at: int | None = None
) -> None:
    """Write the download archive of *size* data bytes to *writer*.

    It does not close *writer*: :func:`gpipe.spawn_producer` does, cleanly
    when this returns and with the error when it raises, so that a client
    never takes a cut archive for a whole one.

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
    reader = gpipe.spawn_producer(write_archive, size, 6 if level is None else level, fail_at)
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/gzip"),
            ("Content-Disposition", f'attachment; filename="{ARCHIVE_DIR}.tar.gz"'),
        ],
    )
    # The server closes this when the client goes away, which stops the producer.
    return reader.iter_chunks(CHUNK)


# -- wait: a producer that is not writing when its client leaves -------------


def write_after_wait(writer: gpipe.PipeWriter, seconds: float, heartbeat: float | None) -> None:
    """Wait *seconds* (standing for a slow upstream), then write the answer.

    With *heartbeat*, write a newline every *heartbeat* seconds while
    waiting: each one reaches the server, whose write to a client that
    left fails; the server then closes the body, and the next heartbeat
    raises :exc:`gpipe.ClosedPipeError`, which ends this producer.
    """
    if writer.backend == "gevent":
        from gevent import sleep
    else:
        sleep = time.sleep
    with PRODUCERS:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if heartbeat is None:
                sleep(left)
            else:
                sleep(min(left, heartbeat))
                writer.write(b"\n")
        writer.write(json.dumps({"waited": seconds}).encode() + b"\n")


def wait(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        seconds = _float_param(query, "seconds", 0, MAX_WAIT)
        if seconds is None:
            raise ValueError("seconds is required")
        heartbeat = _float_param(query, "heartbeat", 0.01, MAX_WAIT)
    except ValueError as exc:
        return _json(start_response, "400 Bad Request", {"error": str(exc)})
    reader = gpipe.spawn_producer(write_after_wait, seconds, heartbeat)
    start_response("200 OK", [("Content-Type", "application/x-ndjson")])
    return reader.iter_chunks(CHUNK)


# -- upload: a request body into a consumer ----------------------------------


def store_upload(reader: gpipe.PipeReader) -> dict[str, Any]:
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


def request_body(environ: dict[str, Any]) -> Iterator[bytes]:
    """Yield the request body in chunks, never reading past its end.

    Servers differ: :mod:`gevent.pywsgi` and gunicorn end ``wsgi.input``
    at the body's end, chunked or not; :mod:`wsgiref` hands over the
    socket itself, where reading past ``Content-Length`` waits forever.

    :raises OSError: the client sent less than its ``Content-Length``
        (or the server raised it for a chunked body cut short).
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        left = int(length)
        while left:
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                raise OSError("unexpected end of file: the client sent less than its length")
            left -= len(chunk)
            yield chunk
    elif environ.get("wsgi.input_terminated"):  # a chunked body
        yield from iter(lambda: stream.read(CHUNK), b"")


def upload(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    length = environ.get("CONTENT_LENGTH") or ""
    if length and not length.isdigit():
        return _json(start_response, "400 Bad Request", {"error": "bad Content-Length"})
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if chunked and not environ.get("wsgi.input_terminated"):  # wsgiref
        return _json(
            start_response,
            "411 Length Required",
            {"error": "this server takes no chunked bodies: send a Content-Length"},
        )
    try:
        # Leaving the block by an error hands the error to the consumer.
        with gpipe.spawn_consumer(store_upload) as writer:
            for chunk in request_body(environ):
                writer.write(chunk)
    except OSError as exc:  # the client sent less than it announced
        return _json(start_response, "400 Bad Request", {"error": str(exc)})
    return _json(start_response, "200 OK", writer.join())


# -- stats and routing -------------------------------------------------------


def stats(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    greenlets = 0
    if "gevent" in sys.modules:
        from greenlet import greenlet

        greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and not obj.dead)
    return _json(
        start_response,
        "200 OK",
        {
            "producers": PRODUCERS.now,
            "producers_peak": PRODUCERS.peak,
            "consumers": CONSUMERS.now,
            "greenlets": greenlets,
            "threads": threading.active_count(),
            "pid": os.getpid(),
        },
    )


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


def _float_param(query: dict[str, list[str]], name: str, low: float, high: float) -> float | None:
    values = query.get(name)
    if not values:
        return None
    try:
        value = float(values[-1])
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not low <= value <= high:  # NaN fails too
        raise ValueError(f"{name} must be between {low:g} and {high:g}")
    return value


ROUTES = {
    ("POST", "/upload"): upload,
    ("GET", "/download"): download,
    ("GET", "/wait"): wait,
    ("GET", "/stats"): stats,
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The streaming WSGI application (the routes are in the module's docstring)."""
    path = environ.get("PATH_INFO", "")
    route = ROUTES.get((environ["REQUEST_METHOD"], path))
    if route is not None:
        return route(environ, start_response)
    if any(p == path for _, p in ROUTES):
        return _json(start_response, "405 Method Not Allowed", {"error": "method not allowed"})
    return _json(start_response, "404 Not Found", {"error": "not found"})


application = app  # the name some servers look for by default


# -- the command -------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on *parser*."""
    parser.description = (
        "Serve the streaming application on gevent.pywsgi: POST /upload hashes the"
        " request body while it streams into a temporary file; GET /download?size=N"
        " streams a tar.gz built on the fly (add &fail_at=M to see a failed"
        " download); GET /wait?seconds=S&heartbeat=H waits before answering;"
        " GET /stats counts the running producers and consumers. The first line"
        " printed is the address served. Stop it with Ctrl-C."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port", type=_port, default=8080, help="port to listen on; 0 picks a free one (8080)"
    )


def _listen(host: str, port: int) -> Any:
    """A listening gevent socket on *host* and *port*, closed again on failure.

    :raises OSError: the address is unusable (:exc:`socket.gaierror` for
        an unknown host).
    """
    from gevent import socket

    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM); 2 if the address is unusable."""
    import signal

    import gevent
    from gevent.pywsgi import WSGIServer

    try:
        listener = _listen(args.host, args.port)
    except OSError as exc:  # a busy port, an unknown host, no permission...
        reason = exc.strerror or str(exc)
        args.fail(f"cannot listen on {args.host} port {args.port}: {reason}")
    server = WSGIServer(listener, app)
    server.start()
    host, port = server.address[:2]
    if ":" in host:  # IPv6
        host = f"[{host}]"
    # Tests and scripts read the bound address from this line.
    print(f"serving on http://{host}:{port}/", flush=True)
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(server.stop, 5))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(5)
    return 0
