"""How many threads the matrix products use, as PyTorch's ``set_num_threads``.

kernelab's heavy work is NumPy's BLAS; threadpoolctl limits its thread pool at run time.
"""

from __future__ import annotations

import os

_limiter = None


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        hint = 'setting threads needs threadpoolctl: pip install "kernelab[train]"'
        raise ImportError(hint) from None
    return threadpoolctl


def set_num_threads(n: int) -> None:
    """Use ``n`` BLAS threads from now on."""
    global _limiter
    if n < 1:
        raise ValueError(f"set_num_threads: expected n >= 1, got {n}")
    _limiter = _threadpoolctl().threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The number of BLAS threads in use (the cores available when none was set)."""
    try:
        info = _threadpoolctl().threadpool_info()
    except ImportError:
        return os.cpu_count() or 1
    blas = [pool["num_threads"] for pool in info if pool.get("user_api") == "blas"]
    return max(blas) if blas else os.cpu_count() or 1
