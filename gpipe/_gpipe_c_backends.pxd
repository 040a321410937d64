# Declarations that compile gpipe/_backends.py into gpipe._gpipe_c_backends,
# so that the compiled core's calls to a backend are C calls.

cdef object _other_threads
cdef object _get_hub


cdef class Backend:
    cdef public object dead_end

    cpdef object semaphore(self)
    cpdef bint acquire(self, object semaphore, object timeout) except -1


cdef class GeventBackend(Backend):
    cdef object _semaphore


cdef class ThreadingBackend(Backend):
    cdef object _allocate_lock
