"""Real clients reading a :class:`~gpipe.PipeReader` itself, against local servers.

- requests, urllib3 and httpx send a reader as a chunked request body
  to a :mod:`gevent.pywsgi` server on 127.0.0.1 that this process
  starts, while the producer -- a greenlet writing with ``with writer:``
  -- is killed, timed out (:class:`gevent.Timeout`) or fails halfway:
  the request must fail within 2 s and the server must never read a
  complete body. Each client runs in a native thread of the hub's pool
  (this process is not monkey-patched), the pipe on the gevent backend.
- boto3's ``upload_fileobj(reader, ...)`` stores a 64 MiB tar stream
  into a local S3 server (moto's, a subprocess) as a multipart upload,
  in a monkey-patched subprocess of its own (``tests/_s3_upload.py``)
  that measures its memory; a producer that fails leaves no object.

All of it is in the ``integration`` env (``pytest -m integration``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
import requests
import urllib3
from gevent.pywsgi import WSGIServer

import gpipe

httpx = pytest.importorskip("httpx", reason="the integration env installs httpx")
boto3 = pytest.importorskip("boto3", reason="the integration env installs boto3")
# Not imported here: moto hooks into botocore as it is imported. Its
# server runs in a process of its own.
if importlib.util.find_spec("moto") is None:
    pytest.skip("the integration env installs moto[server]", allow_module_level=True)

from botocore.config import Config  # noqa: E402 -- after the skip
from botocore.exceptions import ClientError  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status"),
]

KiB = 1 << 10
MiB = 1 << 20
# Far above what a passing test needs; only a hang reaches it.
WAIT = 20.0

# -- a reader as a request body, its producer cut off halfway ------------------

CHUNK = b"x" * (64 * KiB)
HALF = MiB  # the server has read this much when the producer is cut off
# A failed request must end this soon after its producer was cut off.
FAIL_WITHIN = 2.0
# The clients' read timeout: above FAIL_WITHIN, so that a client that
# waits for a response to a body it never finished trips the bound, yet
# its thread ends on its own.
CLIENT_READ_TIMEOUT = 5.0


class Body:
    """What the server read of one request body, and how its reading ended."""

    def __init__(self, transfer_encoding: str | None) -> None:
        self.transfer_encoding = transfer_encoding
        self.size = 0
        self.complete = False  # read to the final chunk of a chunked body
        self.error: OSError | None = None
        self.halfway = gevent.event.Event()
        self.ended = gevent.event.Event()


class RecordingServer:
    """A :mod:`gevent.pywsgi` server on 127.0.0.1 that reads bodies to their end."""

    def __init__(self) -> None:
        self.bodies: list[Body] = []
        self.first = gevent.event.Event()  # a request came in
        self._server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self._server.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/"

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = Body(environ.get("HTTP_TRANSFER_ENCODING"))
        self.bodies.append(body)
        self.first.set()
        stream = environ["wsgi.input"]
        try:
            while chunk := stream.read(65536):
                body.size += len(chunk)
                if body.size >= HALF:
                    body.halfway.set()
            # pywsgi returns b"" from a chunked body only after its final
            # zero-length chunk: the client said that the body was whole.
            body.complete = True
        except OSError as exc:  # "unexpected end of file ...": the client left
            body.error = exc
        finally:
            body.ended.set()
        start_response("200 OK" if body.complete else "400 Bad Request", [])
        return [b"%d\n" % body.size]

    def stop(self) -> None:
        self._server.stop(timeout=WAIT)


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.stop()


def post_with_requests(url: str, reader: gpipe.PipeReader) -> int:
    # A file without a length: requests sends it chunked, read by read(8192).
    response = requests.post(url, data=reader, timeout=(WAIT, CLIENT_READ_TIMEOUT))
    return response.status_code


def post_with_urllib3(url: str, reader: gpipe.PipeReader) -> int:
    # retries=False: a pipe cannot be sent twice. (With its default retries,
    # urllib3 raises UnrewindableBodyError instead, as soon.)
    with urllib3.PoolManager(retries=False) as http:
        response = http.request(
            "POST",
            url,
            body=reader,
            chunked=True,
            timeout=urllib3.Timeout(connect=WAIT, read=CLIENT_READ_TIMEOUT),
        )
    return response.status


def post_with_httpx(url: str, reader: gpipe.PipeReader) -> int:
    # httpx reads a file passed as content with read(65536), chunked.
    with httpx.Client(timeout=httpx.Timeout(CLIENT_READ_TIMEOUT, connect=WAIT)) as client:
        response = client.post(url, content=reader)
    return response.status_code


CLIENTS: dict[str, Callable[[str, gpipe.PipeReader], int]] = {
    "requests": post_with_requests,
    "urllib3": post_with_urllib3,
    "httpx": post_with_httpx,
}


def produce(writer: gpipe.PipeWriter, how: str, cut_at: list[float]) -> BaseException | None:
    """Write 64 KiB chunks until cut off as *how* says; return how it ended.

    ``kill``: until the test kills this greenlet. ``timeout``: past HALF,
    an upstream that never answers, bounded by a gevent.Timeout.
    ``error``: past HALF, an OSError; ``broken-pipe``: a BrokenPipeError
    (of a pipe the producer reads from, say), which readers must get as a
    WriterAbortedError. The time of the cut goes to *cut_at*.
    """
    upstream = gevent.event.Event()  # never set
    sent = 0
    try:
        with writer:
            while True:
                writer.write(CHUNK)
                sent += len(CHUNK)
                if sent < HALF or how == "kill":
                    continue
                if how in ("error", "broken-pipe"):
                    cut_at.append(time.monotonic())
                    raise (OSError if how == "error" else BrokenPipeError)("the source went away")
                try:
                    with gevent.Timeout(0.2):
                        upstream.wait()
                except gevent.Timeout:
                    cut_at.append(time.monotonic())
                    raise
    except (gevent.Timeout, OSError) as exc:  # the reader has it: the test checks
        return exc


def send(client: Callable[[str, gpipe.PipeReader], int], url: str, reader: gpipe.PipeReader) -> Any:
    """Run in a native thread: the client's outcome and when it came."""
    try:
        with reader:
            outcome: Any = client(url, reader)
    except Exception as exc:  # the outcome under test
        outcome = exc
    return outcome, time.monotonic()


def causes(exc: BaseException) -> list[BaseException]:
    """*exc* and every exception it was raised from or wraps (clients wrap)."""
    found: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__, *item.args]
    return found


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["kill", "timeout", "error", "broken-pipe"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_fails_when_the_producer_is_cut_off(recording_server, client, how):
    server = recording_server
    reader, writer = gpipe.pipe(backend="gevent")
    cut_at: list[float] = []
    producer = gevent.spawn(produce, writer, how, cut_at)
    request = gevent.get_hub().threadpool.spawn(send, CLIENTS[client], server.url, reader)

    assert server.first.wait(WAIT), "no request reached the server"
    body = server.bodies[0]
    assert body.halfway.wait(WAIT), f"the server read {body.size} bytes only"
    if how == "kill":
        cut_at.append(time.monotonic())
        producer.kill(timeout=WAIT)
    producer.join(WAIT)
    assert producer.dead and cut_at

    try:
        outcome, ended_at = request.get(timeout=WAIT)
    except gevent.Timeout:
        pytest.fail(f"{client} still sending after {WAIT} s")
    assert isinstance(outcome, Exception), f"{client} got a response: {outcome}"
    took = ended_at - cut_at[0]
    assert took < FAIL_WITHIN, f"{client} failed {took:.1f} s after the cut: {outcome!r}"

    # The server: one chunked body, never read to its end.
    for each in server.bodies:
        assert each.ended.wait(WAIT), "the server still reads a body"
    assert body.transfer_encoding == "chunked"
    assert not any(each.complete for each in server.bodies)
    assert body.error is not None and body.size >= HALF

    # What the reader raised reached the caller, in the client's wrapping.
    if how == "error":
        assert producer.value in causes(outcome)
    else:
        aborted = [e for e in causes(outcome) if isinstance(e, gpipe.WriterAbortedError)]
        assert aborted, f"no WriterAbortedError in {causes(outcome)!r}"
        assert not isinstance(aborted[0], (BrokenPipeError, ConnectionError))
        # httpcore re-raises what the body raised "from None", which clears
        # the __cause__ of that very exception: only the others keep it.
        if client != "httpx":
            cause = aborted[0].__cause__
            if how == "kill":
                assert isinstance(cause, gevent.GreenletExit)
            else:
                assert cause is producer.value


# -- boto3: upload_fileobj(reader) into a local S3 server ------------------------

UPLOAD_SCRIPT = Path(__file__).resolve().parent / "_s3_upload.py"
START_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 120.0
RSS_BOUND = 32 * MiB


def report(name: str, value: str) -> None:
    # Shown with pytest -s, and kept in the log of the integration env.
    print(f"\n[{name}] {value}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def aws_env() -> dict[str, str]:
    """This process's environment with dummy credentials and no AWS config.

    Without development mode: its allocator hooks would blur the
    measurement of memory.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("PYTHONDEVMODE", "PYTHONMALLOC")
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m moto.server`` on 127.0.0.1 (it keeps objects in memory)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=aws_env(),
            stdout=log,
            stderr=log,  # a file: the request log never fills a pipe
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the S3 server did not start: {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                time.sleep(0.05)  # not listening yet
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """An unpatched boto3 client, to set up and check what the upload did."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=10, read_timeout=60, s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"gpipe-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def upload(endpoint: str, bucket: str, key: str, mode: str) -> dict[str, Any]:
    """Run tests/_s3_upload.py; its report."""
    proc = subprocess.run(
        [sys.executable, str(UPLOAD_SCRIPT), endpoint, bucket, key, mode],
        env=aws_env(),
        capture_output=True,
        text=True,
        timeout=UPLOAD_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.mark.timeout(300)
def test_boto3_uploads_the_reader_in_parts(s3_endpoint, s3, bucket):
    """64 MiB of tar through the reader itself: a multipart upload in constant memory.

    Memory is the upload process's resident set size: its peak during
    the upload (``VmHWM``, reset to the current size just before, see
    ``start_measuring``) less its size before. What the pipe or boto3
    held at any moment shows there, in Python objects or not;
    tracemalloc would see Python's allocations only and slow the
    transfer down, and ``ru_maxrss`` read before and after without the
    reset would hide any growth below an earlier peak (botocore's
    start-up makes one). Memory the allocator keeps after a free can
    only make the growth look larger. boto3 itself holds about three
    5 MiB parts (see TRANSFER in the script).
    """
    result = upload(s3_endpoint, bucket, "archive.tar", "ok")
    assert result["upload_error"] is None and result["producer"] == "done", result
    size = result["size"]
    assert size > 64 * MiB

    head = s3.head_object(Bucket=bucket, Key="archive.tar")
    parts = math.ceil(size / result["part_size"])
    assert head["ETag"].endswith(f'-{parts}"'), f"not a multipart upload of {parts}: {head['ETag']}"
    assert head["ContentLength"] == size
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key="archive.tar")["Body"].iter_chunks(MiB):
        digest.update(chunk)
    assert digest.hexdigest() == result["sha256"]

    growth = result["rss_after"] - result["rss_before"]
    report(
        "boto3 upload_fileobj 64 MiB",
        f"RSS {result['rss_before'] / MiB:.1f} MiB, peak grew by {growth / MiB:.2f} MiB",
    )
    assert growth < RSS_BOUND


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_boto3_upload_of_a_failing_producer_leaves_no_object(s3_endpoint, s3, bucket, mode):
    """The producer fails after parts were uploaded: the upload fails and is aborted."""
    result = upload(s3_endpoint, bucket, "archive.tar", mode)
    assert result["size"] >= result["fail_at"] > result["part_size"]
    if mode == "error":
        assert result["upload_error"] == "OSError: the archive failed on purpose"
    else:
        assert result["producer"].startswith("Timeout")
        assert str(result["upload_error"]).startswith("WriterAbortedError"), result

    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="archive.tar")
    assert missing.value.response["Error"]["Code"] == "404"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # The parts already uploaded were dropped with the multipart upload.
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
