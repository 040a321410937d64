"""A write blocked on a full buffer when its own end is closed.

On the unbuffered pipe such a write returns how many bytes readers
took (a short write), and the next write raises ClosedPipeError;
readers see exactly those bytes, then the close error. The buffered pipe must keep the same
rule: bytes of a write that was neither buffered nor read when the
writer closed are withdrawn, never delivered after the close.
"""

from __future__ import annotations

import pytest

import gpipe


def drain(reader, into):
    """Read until EOF or an error, appending every chunk to *into*."""
    while True:
        chunk = reader.read1(100)
        if not chunk:
            return
        into += chunk


@pytest.mark.parametrize("bufsize", [0, 8])
def test_own_close_fails_blocked_write(bk, bufsize):
    reader, writer = gpipe.pipe(bufsize, backend=bk.name)
    try:
        data = bytes(range(16))
        task = bk.go(writer.write, data)
        bk.wait_blocked(writer)
        got = bytearray(reader.read1(3))
        writer.close_with_error(LookupError("stop"))
        with pytest.raises(LookupError, match="stop"):
            drain(reader, got)
        taken = task.get()
        assert 3 <= taken < len(data)  # a short write: what readers took
        assert bytes(got) == data[:taken]
        with pytest.raises(gpipe.ClosedPipeError, match="closed PipeWriter") as info:
            writer.write(b"more")
        assert info.value.consumed == 0
    finally:
        reader.close()
        writer.close()
