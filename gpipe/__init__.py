"""gpipe: Go's ``io.Pipe`` for gevent.

A synchronous, unbuffered, in-memory byte pipe whose blocking calls
yield to the gevent hub, or block OS threads when the program does not
use gevent. Start with :func:`pipe`.
"""

from ._backends import detect_backend
from ._core import COMPILED
from ._errors import ClosedPipeError, WriterAbortedError
from ._pipe import ChunkIterator, PipeReader, PipeWriter, pipe
from ._spawn import ConsumerWriter, spawn_consumer, spawn_producer
from ._version import __version__

#: True when the compiled build of the pipe core runs, False for pure
#: Python (no compiler at install time, or ``PURE_PYTHON`` set).
COMPILED = COMPILED

__all__ = [
    "COMPILED",
    "ChunkIterator",
    "ClosedPipeError",
    "ConsumerWriter",
    "PipeReader",
    "PipeWriter",
    "WriterAbortedError",
    "__version__",
    "detect_backend",
    "pipe",
    "spawn_consumer",
    "spawn_producer",
]
