"""How many threads kernelab uses, as PyTorch's ``set_num_threads``.

Two pools do the work: NumPy's BLAS for the matrix products (limited at run time through
threadpoolctl) and numba's for the compiled kernels. One call sets both, so they never
oversubscribe the cores together.

Importing this module also tunes the C allocator (glibc's) for the big, short-lived arrays a
training step makes: without it, glibc hands an array past its (adaptive) threshold back to
the kernel when it is freed, and the next one faults its pages in again, zeroed: 6,500 page
faults and 11-17 ms of kernel time in an 80 ms step of the classic network at batch 64, the
single largest serial piece besides the products. Kept in the process, freed memory is
reused at once (the peak footprint of a training epoch measured within the runs' noise).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import threadpoolctl

from . import jit

_blas = None  # threadpoolctl's controllers of the loaded BLAS libraries, made on first need
# BLAS's thread count is one for the whole process, and blocks open in several threads at
# once (a training thread, a web server's): the first block to open sets it to one, the last
# to close sets back what it was, or what set_num_threads asked for meanwhile. Each block
# restoring what it found instead let one thread's block end another's, or undo a
# set_num_threads made while it was open, so that a run's products took one thread or two
# by the timing of its threads, and summed in a different order.
_blas_lock = threading.Lock()
_blocks_open = 0
_restore: list = []  # (library, count) to set back when the last block closes


def set_num_threads(n: int) -> None:
    """Use ``n`` threads from now on, in BLAS and in the compiled kernels (from any thread)."""
    global _blas
    if n < 1:
        raise ValueError(f"set_num_threads: expected n >= 1, got {n}")
    with _blas_lock:
        _blas = None  # counts a BLAS loaded since (SciPy's, say) too
        if _blocks_open:  # BLAS is on one thread for a while: n is what it returns to
            _restore[:] = [(library, n) for library in _blas_libraries()]
        else:
            for library in _blas_libraries():
                _set_blas_threads(library, n)
    jit.set_threads(n)


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries, made on first need."""
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def _set_blas_threads(library, n: int) -> None:
    """Set a BLAS library's thread count from whichever thread calls (under ``_blas_lock``).

    threadpoolctl (3.8 on) lets only the thread that first set OpenBLAS's count set it
    again, and silently ignores the others: a training thread of the web page, or a
    convolution's worker, asking for one BLAS thread got two. Here kernelab's own lock
    orders the writes, so each one first takes that control."""
    release = getattr(type(library), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    library.set_num_threads(n)


def one_blas_thread() -> OneBlasThread:
    """A ``with`` block in which BLAS runs on one thread (1.5 µs to enter and leave).

    For products too small to share between threads, and for products made on kernelab's
    own worker threads: after a product BLAS's threads spin for a while, waiting for the
    next one, on the cores the compiled kernels want (the classic training step at two
    threads: 59 ms with the dense layers' products on two BLAS threads, 45 ms on one).
    """
    return OneBlasThread(_blas_libraries())


class OneBlasThread:
    """Each BLAS library on one thread inside the block (and while any other thread's block
    is open), back to its count after the last one closes.

    It asks each library's threadpoolctl controller directly (0.3 µs to read a count, 0.6
    to set one), where threadpoolctl's ``limit`` takes 7-14 µs to build its limiter and
    restore: the classic network's step enters a few such blocks. A library already on one
    thread is left alone."""

    __slots__ = ("libraries",)

    def __init__(self, libraries: list):
        self.libraries = libraries

    def __enter__(self) -> OneBlasThread:
        global _blocks_open
        with _blas_lock:
            if not _blocks_open:
                for library in self.libraries:
                    count = library.get_num_threads()
                    if count is not None and count != 1:
                        _set_blas_threads(library, 1)
                        _restore.append((library, count))
            _blocks_open += 1
        return self

    def __exit__(self, *exc) -> None:
        global _blocks_open
        with _blas_lock:
            _blocks_open -= 1
            if not _blocks_open:
                for library, count in _restore:
                    _set_blas_threads(library, count)
                _restore.clear()


def get_num_threads() -> int:
    """The number of threads in use (the cores available when none was set)."""
    with _blas_lock:
        if _blocks_open:  # BLAS on one thread for a while: the count it returns to
            return max((count for _, count in _restore), default=1)
    info = threadpoolctl.threadpool_info()
    blas = [pool["num_threads"] for pool in info if pool.get("user_api") == "blas"]
    return max(blas) if blas else jit.get_threads() or 1


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # arrays up to 32 MiB come from the heap (glibc's largest choice)
TRIM_THRESHOLD = 128 << 20  # free memory the heap keeps before giving any back


def keep_freed_memory() -> bool:
    """Have glibc keep freed arrays up to 32 MiB for reuse, unless the environment tunes
    malloc already (``MALLOC_*``); True when applied. Elsewhere (macOS, musl) nothing."""
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


keep_freed_memory()
