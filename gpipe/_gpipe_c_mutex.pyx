"""The compiled build's pipe mutex: a reentrant lock, taken and given
in C.

The pure-Python build uses :class:`_thread.RLock` (see ``_core.py``);
this is the same lock with the methods the core uses, ``acquire()``,
``release()``, ``_is_owned()`` and ``with``; the first three the
compiled core calls as C functions.

Its state (owner, depth, waiters) is only read and changed with the
GIL held, by C code that runs no Python code in between: so taking a
free mutex, or giving back one that no thread waits for, is a few C
steps and no lock operation at all. Only a thread that finds it held
by another thread waits, without the GIL, on a native lock that a
release leaves released while any thread waits; a woken waiter checks
again, so an extra wakeup is harmless and none is lost. (This needs
the GIL: a free-threaded Python runs this module with the GIL enabled,
as Cython builds it; forced off, with ``PYTHON_GIL=0``, the mutex would
not exclude anything, and the pure build is the one to run.)

A waiting acquire is not interrupted by signals (Ctrl-C cannot break
it, as it can ``RLock.acquire()`` in the main thread): the mutex is
only ever held for a few steps, never while a call waits, and no code
of the caller's runs under it but finalisers.
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
        # Held from the start: a release hands a wakeup to one waiter.
        self._wakeup = PyThread_allocate_lock()
        if self._wakeup == NULL:
            raise MemoryError()
        PyThread_acquire_lock(self._wakeup, NOWAIT_LOCK)

    def __dealloc__(self):
        if self._wakeup != NULL:
            PyThread_free_lock(self._wakeup)

    cpdef bint acquire(self) except -1:
        """Take the lock, waiting for it if another thread holds it."""
        cdef unsigned long me = PyThread_get_thread_ident()
        if self._depth:
            if self._owner == me:
                self._depth += 1
                return True
            self._waiters += 1
            while self._depth:  # re-check: the GIL is held again
                with nogil:
                    PyThread_acquire_lock(self._wakeup, WAIT_LOCK)
            self._waiters -= 1
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
            if self._waiters:
                self._wake_one()

    cdef void _wake_one(self) noexcept:
        # Leave the wakeup lock released, once: a wakeup that no waiter
        # has taken yet may still be pending (a lock released twice is a
        # counting semaphore on some platforms, and fatal on others). So
        # take it first, if it is free, then release it.
        PyThread_acquire_lock(self._wakeup, NOWAIT_LOCK)
        PyThread_release_lock(self._wakeup)

    cpdef bint _is_owned(self):
        """True if the calling thread holds the lock."""
        return self._depth > 0 and self._owner == PyThread_get_thread_ident()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def __repr__(self):
        return f"<gpipe mutex {'held' if self._depth else 'free'}, depth {self._depth}>"
