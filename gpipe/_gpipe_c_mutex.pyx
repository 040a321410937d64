"""The compiled build's pipe mutex: a reentrant native lock, taken and
given in C.

The pure-Python build uses :class:`_thread.RLock` (see ``_core.py``);
this is the same lock with the methods the core uses, ``acquire()``,
``release()``, ``_is_owned()`` and ``with``; the first three the
compiled core calls as C functions. A blocking acquire waits without
the GIL and is not interrupted by signals (Ctrl-C cannot break it, as
it can ``RLock.acquire()`` in the main thread): the mutex is only ever
held for a few steps, never while a call waits, and no code of the
caller's runs under it but finalisers.
"""

from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_get_thread_ident,
    PyThread_release_lock,
)


cdef class Mutex:
    """A reentrant lock: the thread that holds it may take it again, and
    must give it back as many times."""

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self._lock != NULL:
            if self._depth:
                PyThread_release_lock(self._lock)
            PyThread_free_lock(self._lock)

    cpdef bint acquire(self) except -1:
        """Take the lock, waiting for it if another thread holds it."""
        cdef unsigned long me = PyThread_get_thread_ident()
        if self._depth and self._owner == me:
            self._depth += 1
            return True
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        self._owner = me
        self._depth = 1
        return True

    cpdef void release(self) except *:
        """Give the lock back once.

        :raises RuntimeError: the calling thread does not hold it.
        """
        if not self._depth or self._owner != PyThread_get_thread_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._depth -= 1
        if not self._depth:
            self._owner = 0
            PyThread_release_lock(self._lock)

    cpdef bint _is_owned(self):
        """True if the calling thread holds the lock."""
        return self._depth > 0 and self._owner == PyThread_get_thread_ident()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def __repr__(self):
        return f"<gpipe mutex {'held' if self._depth else 'free'}, depth {self._depth}>"
