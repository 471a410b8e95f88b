"""How many threads kernelab uses, as PyTorch's ``set_num_threads``.

Two pools do the work: NumPy's BLAS for the matrix products (limited at run time through
threadpoolctl) and numba's for the compiled kernels. One call sets both, so they never
oversubscribe the cores together.
"""

from __future__ import annotations

import threadpoolctl

from . import jit

_limiter = None


def set_num_threads(n: int) -> None:
    """Use ``n`` threads from now on, in BLAS and in the compiled kernels."""
    global _limiter
    if n < 1:
        raise ValueError(f"set_num_threads: expected n >= 1, got {n}")
    _limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    jit.set_threads(n)


def get_num_threads() -> int:
    """The number of threads in use (the cores available when none was set)."""
    info = threadpoolctl.threadpool_info()
    blas = [pool["num_threads"] for pool in info if pool.get("user_api") == "blas"]
    return max(blas) if blas else jit.get_threads() or 1
