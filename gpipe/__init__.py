"""gpipe: Go's ``io.Pipe`` for gevent.

A synchronous, unbuffered, in-memory byte pipe whose blocking calls
yield to the gevent hub, or block OS threads when the program does not
use gevent. Start with :func:`pipe`.
"""

from ._backends import detect_backend
from ._errors import ClosedPipeError
from ._pipe import ChunkIterator, PipeReader, PipeWriter, pipe
from ._spawn import ConsumerWriter, spawn_consumer, spawn_producer
from ._version import __version__

__all__ = [
    "ChunkIterator",
    "ClosedPipeError",
    "ConsumerWriter",
    "PipeReader",
    "PipeWriter",
    "__version__",
    "detect_backend",
    "pipe",
    "spawn_consumer",
    "spawn_producer",
]
