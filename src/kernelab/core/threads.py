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

import threadpoolctl

from . import jit

_limiter = None
_blas = None  # threadpoolctl's controller of the loaded BLAS, made on first need


def set_num_threads(n: int) -> None:
    """Use ``n`` threads from now on, in BLAS and in the compiled kernels."""
    global _limiter
    if n < 1:
        raise ValueError(f"set_num_threads: expected n >= 1, got {n}")
    _limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    jit.set_threads(n)


def one_blas_thread() -> OneBlasThread:
    """A ``with`` block in which BLAS runs on one thread (1.5 µs to enter and leave).

    For products too small to share between threads, and for products made on kernelab's
    own worker threads: after a product BLAS's threads spin for a while, waiting for the
    next one, on the cores the compiled kernels want (the classic training step at two
    threads: 59 ms with the dense layers' products on two BLAS threads, 45 ms on one).
    """
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return OneBlasThread(_blas)


class OneBlasThread:
    """Each BLAS library on one thread inside the block, back to its count after.

    It asks each library's threadpoolctl controller directly (0.3 µs to read a count, 0.6
    to set one), where threadpoolctl's ``limit`` takes 7-14 µs to build its limiter and
    restore: the classic network's step enters a few such blocks. A library already on one
    thread is left alone."""

    __slots__ = ("libraries", "previous")

    def __init__(self, libraries: list):
        self.libraries = libraries
        self.previous: list = []

    def __enter__(self) -> OneBlasThread:
        for library in self.libraries:
            count = library.get_num_threads()
            if count is not None and count != 1:
                library.set_num_threads(1)
                self.previous.append((library, count))
        return self

    def __exit__(self, *exc) -> None:
        for library, count in self.previous:
            library.set_num_threads(count)
        self.previous = []


def get_num_threads() -> int:
    """The number of threads in use (the cores available when none was set)."""
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
