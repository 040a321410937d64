"""Upload a tar archive to S3 through a pipe, in a gevent program of its own.

Run by tests/test_clients.py as a subprocess: ``python _s3_upload.py
ENDPOINT BUCKET KEY MODE``. It calls :func:`gevent.monkey.patch_all`
first, as gevent programs that use boto3 do (boto3's threads become
greenlets), so patched code never shares the test process. A producer
greenlet writes a tar stream with :mod:`tarfile` to the writer, and
``upload_fileobj`` reads the reader itself. MODE is ``ok``, ``error``
(the producer raises after FAIL_AT bytes) or ``timeout`` (its upstream
stalls after FAIL_AT bytes and a :class:`gevent.Timeout` ends it).

The last line of stdout is a JSON report: what the producer wrote
(size and sha256), how it ended, the upload's error, and the resident
set size before the upload and its peak during it.
"""

from gevent import monkey

monkey.patch_all()

import hashlib  # noqa: E402 -- after patching, as in any patched program
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402

import boto3  # noqa: E402
import gevent  # noqa: E402
import gevent.event  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402

import gpipe  # noqa: E402

MiB = 1 << 20
MEMBERS = 16
MEMBER_SIZE = 4 * MiB  # 16 members of 4 MiB: 64 MiB of data in the archive
FAIL_AT = 20 * MiB  # past the multipart threshold: parts were uploaded
PART = 5 * MiB  # the smallest part S3 takes (but the last)

# boto3's own buffering, bounded: a stream that cannot seek is read into
# memory one part at a time, and s3transfer keeps up to
# max_in_memory_upload_chunks parts (10 by default: 80 MiB) waiting for
# an upload slot. Two parts in memory and two uploads at a time keep
# boto3's share of the memory to about three parts, whatever the size of
# the archive; everything above that would be the pipe's.
TRANSFER = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=2)
TRANSFER.max_in_memory_upload_chunks = 2


def status(field: str) -> int:
    """A size from /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def start_measuring() -> int:
    """Reset the peak resident set size to the current one; return that.

    Without the reset, a peak reached before (botocore loads its service
    models with large transient allocations) would hide any growth up
    to its height. If the kernel refuses, the peak stays higher than the
    current size, and the growth measured can only be too large.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to VmRSS (Linux 4.0 on)
    except OSError:
        pass
    return status("VmRSS")


class Generated(io.RawIOBase):
    """*size* pseudo-random bytes, made as they are read (never all at once)."""

    def __init__(self, seed: int, size: int) -> None:
        self._random = random.Random(seed)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self._left)
        buffer[:n] = self._random.randbytes(n)
        self._left -= n
        return n


class Hashing:
    """A file that hashes and counts what goes through it to *sink*."""

    def __init__(self, sink: gpipe.PipeWriter) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.sink.write(data)


def produce(writer: gpipe.PipeWriter, out: Hashing, mode: str, report: dict) -> None:
    stalled = gevent.event.Event()  # an upstream that never answers
    try:
        with writer, tarfile.open(fileobj=out, mode="w|") as tar:
            for index in range(MEMBERS):
                info = tarfile.TarInfo(f"part-{index:02d}.bin")
                info.size = MEMBER_SIZE
                tar.addfile(info, io.BufferedReader(Generated(index, MEMBER_SIZE)))
                if out.size >= FAIL_AT and mode == "error":
                    raise OSError("the archive failed on purpose")
                if out.size >= FAIL_AT and mode == "timeout":
                    with gevent.Timeout(0.5):
                        stalled.wait()
        report["producer"] = "done"
    except BaseException as exc:  # reported, as the test expects
        report["producer"] = f"{type(exc).__name__}: {exc}"


def main() -> None:
    endpoint, bucket, key, mode = sys.argv[1:]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=10, read_timeout=30, s3={"addressing_style": "path"}),
    )
    # Warm up: imports, the client's first request and its connection pool
    # are not the upload's memory.
    s3.put_object(Bucket=bucket, Key=f"{key}.warm-up", Body=b"warm")
    s3.delete_object(Bucket=bucket, Key=f"{key}.warm-up")

    report: dict = {}
    reader, writer = gpipe.pipe()
    out = Hashing(writer)
    before = start_measuring()
    producer = gevent.spawn(produce, writer, out, mode, report)
    try:
        with reader:
            s3.upload_fileobj(reader, bucket, key, Config=TRANSFER)
    except Exception as exc:  # reported
        report["upload_error"] = f"{type(exc).__name__}: {exc}"
    else:
        report["upload_error"] = None
    # The reader is closed: a producer still writing ends at its next write.
    producer.join(30)
    report.update(
        part_size=PART,
        fail_at=FAIL_AT,
        producer_alive=not producer.dead,
        size=out.size,
        sha256=out.sha256.hexdigest(),
        rss_before=before,
        rss_after=status("VmHWM"),
    )
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
