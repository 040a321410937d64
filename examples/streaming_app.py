"""A WSGI application that streams both ways through gpipe.

It imports no gevent: :func:`gpipe.spawn_producer` and
:func:`gpipe.spawn_consumer` start a greenlet when the server runs on
gevent (``gevent_server.py``) and a thread otherwise
(``threaded_server.py``).

``GET /squares.csv?rows=N``
    A CSV table written row by row by :mod:`csv` into a pipe: the
    writer API becomes the response body, one 64 KiB chunk at a time.
``POST /sha256``
    The request body is read by a consumer that hashes it: the request
    body becomes the input of code that wants to read a file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import gpipe

CHUNK = 64 * 1024


def write_squares(writer, rows):
    """Write a CSV table of *rows* squares to the pipe *writer*.

    It does not close *writer*: returning does (EOF), raising closes it
    with the error, so the client never takes a cut table for a whole one.
    """
    text = io.StringIO()
    table = csv.writer(text)
    table.writerow(["n", "square"])
    for n in range(rows):
        table.writerow([n, n * n])
        if text.tell() >= CHUNK:
            writer.write(text.getvalue().encode())
            text.seek(0)
            text.truncate()
    writer.write(text.getvalue().encode())


def sha256_of(reader):
    """Hash everything *reader* yields; return its size and hex digest."""
    digest = hashlib.sha256()
    size = 0
    for chunk in reader.iter_chunks(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest(), "backend": reader.backend}


def request_body(environ):
    """Yield the request body in chunks, never reading past its end."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        left = int(length)
        while left:
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                raise OSError("the client sent less than its Content-Length")
            left -= len(chunk)
            yield chunk
    elif environ.get("wsgi.input_terminated"):  # a chunked body (gevent.pywsgi)
        yield from iter(lambda: stream.read(CHUNK), b"")


def reply(start_response, status, body):
    data = json.dumps(body).encode() + b"\n"
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def application(environ, start_response):
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    if (method, path) == ("GET", "/squares.csv"):
        query = dict(p.partition("=")[::2] for p in environ.get("QUERY_STRING", "").split("&"))
        try:
            rows = int(query.get("rows", "10"))
        except ValueError:
            return reply(start_response, "400 Bad Request", {"error": "rows must be an integer"})
        reader = gpipe.spawn_producer(write_squares, rows)
        start_response("200 OK", [("Content-Type", "text/csv")])
        return reader.iter_chunks(CHUNK)  # the server closes it, which stops the producer
    if (method, path) == ("POST", "/sha256"):
        if not environ.get("CONTENT_LENGTH") and not environ.get("wsgi.input_terminated"):
            return reply(
                start_response,
                "411 Length Required",
                {"error": "Content-Length required"},
            )
        try:
            with gpipe.spawn_consumer(sha256_of) as writer:
                for chunk in request_body(environ):
                    writer.write(chunk)
        except OSError as exc:
            return reply(start_response, "400 Bad Request", {"error": str(exc)})
        return reply(start_response, "200 OK", writer.join())
    return reply(start_response, "404 Not Found", {"error": "not found"})
