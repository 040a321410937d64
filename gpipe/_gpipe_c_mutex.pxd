from cpython.pythread cimport PyThread_type_lock


cdef class Mutex:
    cdef PyThread_type_lock _wakeup
    cdef unsigned long _owner
    cdef int _depth  # (ints: an idle pipe stays small)
    cdef int _waiters

    cpdef bint acquire(self) except -1
    cpdef void release(self) except *
    cpdef bint _is_owned(self)
    cdef void _wake_one(self) noexcept
