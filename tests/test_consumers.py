"""Consumers that expect ``read(n)`` to return *n* bytes, given the reader itself.

:func:`pickle.load` and :mod:`tarfile`'s ``"r|*"`` mode read headers
and frames with ``read(n)`` and take a short result for the end of the
data. A :class:`~gpipe.PipeReader` is a binary file whose ``read(n)``
waits across writes for *n* bytes unless EOF comes first, so both work
on it directly, however the producer splits its writes: one byte at a
time, a first write of 2 bytes, sizes that cut through every header.
Each runs on both backends.
"""

from __future__ import annotations

import io
import itertools
import pickle
import random
import tarfile
from collections.abc import Iterator

import pytest

import gpipe

from .conftest import Harness, Task

pytestmark = pytest.mark.timeout(60)

# How a producer splits its data into writes: the sizes in turn, the last
# one repeated; None takes all that is left.
SPLITS = {
    "first-2-then-rest": (2, None),
    "first-2-then-512": (2, 512),
    "first-2-then-odd": (2, 3, 1, 7, 509, 4099, 13, 65537),
    "64k": (65536,),
    "whole": (None,),
}
ONE_BYTE = (1,)  # for small payloads only: a handoff per byte


def pieces(data: bytes, sizes: tuple[int | None, ...]) -> Iterator[bytes]:
    start = 0
    for size in itertools.chain(sizes, itertools.repeat(sizes[-1])):
        if start >= len(data):
            return
        end = len(data) if size is None else start + size
        yield data[start:end]
        start = end


def produce(
    bk: Harness, data: bytes, sizes: tuple[int | None, ...]
) -> tuple[gpipe.PipeReader, Task]:
    """A reader of *data*, and the concurrent task that writes it in writes of *sizes*."""
    r, w = bk.pipe()

    def write_all() -> None:
        with w:
            for piece in pieces(data, sizes):
                assert w.write(piece) == len(piece)

    return r, bk.go(write_all)


PAYLOAD = random.Random(15).randbytes(200_003)
OBJ = {"payload": PAYLOAD, "rows": [[i, f"name {i}", i / 7] for i in range(2000)], "ok": True}
SMALL_OBJ = {"a": [1, 2.5, "three", b"four"], "b": None}


@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_load_from_the_reader(bk, protocol, split):
    data = pickle.dumps(OBJ, protocol=protocol)
    r, producer = produce(bk, data, SPLITS[split])
    with r:
        assert pickle.load(r) == OBJ
        assert r.read() == b""  # pickle read exactly up to its STOP opcode
    producer.get()


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_pickle_load_from_the_reader_byte_by_byte(bk, protocol):
    data = pickle.dumps(SMALL_OBJ, protocol=protocol)
    r, producer = produce(bk, data, ONE_BYTE)
    with r:
        assert pickle.load(r) == SMALL_OBJ
        assert r.read() == b""
    producer.get()


def test_pickle_load_twice_from_one_stream(bk):
    """Two pickles back to back: the first load leaves the second whole."""
    data = pickle.dumps(OBJ, protocol=5) + pickle.dumps(SMALL_OBJ, protocol=0)
    r, producer = produce(bk, data, (2, 1000))
    with r:
        assert pickle.load(r) == OBJ
        assert pickle.load(r) == SMALL_OBJ
        with pytest.raises(EOFError):
            pickle.load(r)
    producer.get()


FILES = {"a.txt": b"hello\n", "big.bin": PAYLOAD, "empty": b"", "odd.bin": PAYLOAD[:1001]}


def tar_bytes(mode: str, files: dict[str, bytes] = FILES) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def read_tar(r: gpipe.PipeReader) -> dict[str, bytes | None]:
    got: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=r, mode="r|*") as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            got[member.name] = extracted.read() if extracted else None
    r.read()  # the padding after the end-of-archive marker
    return got


@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("mode", ["w|", "w|gz", "w|bz2", "w|xz"])
def test_tarfile_stream_from_the_reader(bk, mode, split):
    r, producer = produce(bk, tar_bytes(mode), SPLITS[split])
    with r:
        assert read_tar(r) == FILES
    producer.get()


@pytest.mark.parametrize("mode", ["w|", "w|gz"])
def test_tarfile_stream_from_the_reader_byte_by_byte(bk, mode):
    files = {"a.txt": b"hello\n", "b.txt": b"world\n" * 50}
    r, producer = produce(bk, tar_bytes(mode, files), ONE_BYTE)
    with r:
        assert read_tar(r) == files
    producer.get()
