"""A write blocked on a full buffer when its own end is closed.

There are no short writes: such a write raises ClosedPipeError, whose
``consumed`` is how many bytes readers took of it, and so does the next
write; readers see exactly those bytes, then the close error. The
buffered pipe keeps the same rule (a write that does not fit is never
split into the buffer): bytes of a write that readers had not taken
when the writer closed are withdrawn, never delivered after the close.
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
        with pytest.raises(gpipe.ClosedPipeError, match="write to a closed PipeWriter") as info:
            task.get()
        assert info.value.consumed == 3  # what readers took; the rest was withdrawn
        assert bytes(got) == data[:3]
        with pytest.raises(gpipe.ClosedPipeError, match="closed PipeWriter") as info:
            writer.write(b"more")
        assert info.value.consumed == 0
    finally:
        reader.close()
        writer.close()
