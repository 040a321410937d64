# Declarations that compile gpipe/_core.py, unchanged, into the extension
# gpipe._gpipe_c_core (as gevent compiles its _semaphore.py). Typed calls
# between these classes are C calls, and no signal handler runs between
# the steps of the compiled code: only where it calls back into Python.

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memmove
from cpython.dict cimport PyDict_GetItemWithError
from cpython.pystate cimport PyThreadState_GetDict
from cpython.ref cimport PyObject

from gpipe._gpipe_c_backends cimport Backend
from gpipe._gpipe_c_mutex cimport Mutex

cdef object _monotonic
cdef object _newline
cdef object _per_thread
cdef object ClosedPipeError
cdef tuple _STOPS
cdef object _not_the_end
cdef tuple _PLAIN
cdef Py_ssize_t _NO_LIMIT
cdef list _NO_PARTS


cdef Py_ssize_t _SPARES


cdef inline Mutex _new_mutex():
    # _core.py's _thread.RLock, in C
    return Mutex()


cdef inline int _checkpoint() except -1:
    # _core.py's _run_pending(): signal handlers, and (3.12+) a scheduled collection
    return PyErr_CheckSignals()


cdef inline void _copy(object dst, Py_ssize_t at, object src, Py_ssize_t start,
                       Py_ssize_t n) except *:
    # _core.py's _copy_slices(), as one memmove: dst[at:at + n] = src[start:start + n]
    cdef Py_buffer d
    cdef Py_buffer s
    PyObject_GetBuffer(dst, &d, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(src, &s, PyBUF_SIMPLE)
        try:
            if at < 0 or start < 0 or n < 0 or n > d.len - at or n > s.len - start:
                raise ValueError("copy out of bounds")
            memmove(<char *>d.buf + at, <char *>s.buf + start, n)
        finally:
            PyBuffer_Release(&s)
    finally:
        PyBuffer_Release(&d)


@cython.final
cdef class _Thread:
    cdef object __weakref__
    cdef public object ref
    cdef public object backend
    cdef public list spares
    cdef public Py_ssize_t count

    @cython.locals(sem=object, hub=object)
    cdef object semaphore(self, Backend backend)
    cdef void keep(self, Backend backend, object sem) except *
    cdef void drop(self) except *


@cython.locals(here=_Thread)
cdef _Thread _here_local()


cdef inline _Thread _here():
    # _core.py's _here_local(), remembered in the thread state's dict, where
    # it is found with no attribute lookup (and which is cleared when the
    # thread ends, as the thread-local's storage is)
    cdef PyObject *state = PyThreadState_GetDict()
    if state is NULL:
        raise MemoryError  # (the dict is made on first use)
    cdef PyObject *found = PyDict_GetItemWithError(<dict>state, "gpipe._Thread")
    if found is not NULL:
        return <_Thread>found
    here = _here_local()
    (<dict>state)["gpipe._Thread"] = here
    return here
cdef object _deadline(object timeout)
cdef object _remaining(object deadline)
cdef void _consumed(BaseException exc, Py_ssize_t count)


cdef class _Call:
    cdef public bint done
    cdef public bint over
    cdef public object sem
    cdef public object thread

    @cython.final
    cdef void start(self)
    @cython.final
    @cython.locals(here=_Thread)
    cdef void park(self, Backend backend) except *
    @cython.final
    cdef void wake(self) except *
    cpdef bint gone(self) except -1


@cython.final
cdef class _Read(_Call):
    cdef public object view
    cdef public Py_ssize_t size
    cdef public Py_ssize_t need
    cdef public bint line
    cdef public Py_ssize_t got
    cdef public list parts

    cdef void setup(self, object view, Py_ssize_t size, Py_ssize_t need, bint line) except *
    cdef bint full(self) except -1
    @cython.locals(n=Py_ssize_t, stop=Py_ssize_t)
    cdef Py_ssize_t fill(self, object data, Py_ssize_t start) except -1
    cdef object result(self)
    cpdef bytes taken(self)


@cython.final
cdef class _Write(_Call):
    cdef public object view
    cdef public Py_ssize_t off
    cdef public object error

    cdef void setup(self, object view) except *
    cdef bint full(self) except -1


@cython.final
cdef class _Gate:
    cdef public object owner
    cdef public object queue

    @cython.locals(owner=_Call)
    cdef void reclaim(self, Pipe pipe) except *
    @cython.locals(owner=_Call)
    cdef void enter(self, Pipe pipe, _Call call, object deadline) except *
    @cython.locals(nxt=_Call)
    cpdef void leave(self, _Call call) except *


cdef class Pipe:
    cdef public Backend backend
    cdef readonly Mutex _mutex
    cdef public _Gate _rgate
    cdef public _Gate _wgate
    cdef public _Read _read
    cdef public _Write _write
    cdef public bytearray _unread
    cdef public _Lines _lines
    cdef public object _rclosed
    cdef public object _wclosed
    cdef public object rtimeout
    cdef public object wtimeout

    @cython.final
    @cython.locals(retaken=bint, here=_Thread, mutex=Mutex)
    cdef bint wait(self, _Call call, object deadline) except -1
    cpdef void abandon(self, _Call call) except *
    cpdef void give_back(self, bytes data) except *
    @cython.final
    cdef void _fail_pending(self) except *
    @cython.final
    cdef BaseException _read_error(self)
    @cython.final
    cdef BaseException _write_error(self)
    @cython.final
    cdef bint _at_end(self, _Read read) except -1
    cpdef object read(self, _Read read, object deadline)
    @cython.final
    cdef object _read_gated(self, _Read read, object deadline)
    @cython.final
    @cython.locals(n=Py_ssize_t, unread=bytearray)
    cdef void _take_unread(self, _Read read) except *
    @cython.final
    @cython.locals(off=Py_ssize_t, n=Py_ssize_t)
    cdef void _take(self, _Read read, _Write write) except *
    @cython.final
    cdef void _consume(self, _Write write, Py_ssize_t n) except *
    @cython.final
    cdef void _park_read(self, _Read read, object deadline) except *
    cpdef void write(self, _Write write, object deadline) except *
    @cython.final
    cdef void _write_gated(self, _Write write, object deadline) except *
    @cython.final
    cdef void _park_write(self, _Write write, object deadline) except *


cdef class BufferedPipe(Pipe):
    cdef public Py_ssize_t bufsize


@cython.final
cdef class _Lines:
    cdef public Pipe pipe
    cdef public list lines
    cdef public object it

    cpdef void stop(self) except *


@cython.final
cdef class LineBatches:
    cdef public Pipe pipe
    cdef public object end
    cdef public _Lines batch

    @cython.locals(lines=list, batch=_Lines)
    cdef object take(self)
    cdef void leave(self) except *


@cython.final
cdef class _Failed:
    cdef public object exc


cdef object _byte_view(object obj, str name, bint writable)
cdef Py_ssize_t _size(object size, str name) except? -2
@cython.locals(pipe=Pipe, read=_Read)
cdef object _read(object end, object view, Py_ssize_t size, Py_ssize_t need, bint line)
@cython.locals(n=Py_ssize_t, view=memoryview)
cdef object _readinto_view(object end, object buffer, bint one, str name)
@cython.locals(pipe=Pipe, n=Py_ssize_t, write=_Write)
cdef object _write(object end, object data)


# _core.py's _read_with_mutex() and _write_with_mutex(): their `with`
# blocks, as the C calls that take and give back the mutex.

cdef inline object _read_locked(Pipe pipe, _Read read, object deadline):
    pipe._mutex.acquire()
    try:
        return pipe.read(read, deadline)
    finally:
        pipe._mutex.release()


cdef inline void _write_locked(Pipe pipe, _Write write, object deadline) except *:
    pipe._mutex.acquire()
    try:
        pipe.write(write, deadline)
    finally:
        pipe._mutex.release()


cdef inline object _readinto(object end, object buffer, bint one, str name):
    # _core.py's _readinto_view(), but a bytearray is held by an export of
    # its own buffer (what memoryview(buffer) holds: it cannot be resized
    # meanwhile), with no memoryview made.
    cdef Py_buffer pin
    cdef Py_ssize_t n
    if type(buffer) is not bytearray:
        return _readinto_view(end, buffer, one, name)
    n = len(<bytearray>buffer)
    if not n:
        return _readinto_view(end, buffer, one, name)
    PyObject_GetBuffer(buffer, &pin, PyBUF_WRITABLE)
    try:
        return _read(end, buffer, n, 1 if one else n, False)
    finally:
        PyBuffer_Release(&pin)
