"""Matrix products that leave no BLAS thread spinning beside the compiled kernels.

After a product, OpenBLAS's threads spin for a while (some 0.1 s) waiting for the next one,
on the cores the compiled kernels that follow want. The benchmark's CNN with a 4096→512 dense
layer (``bench/nets.py``) took 80-83 ms a training step at two threads with its products on
BLAS's two threads, 62-63 with them split as below. ResNet-8's inference, whose 1x1 shortcuts
were products on BLAS's threads, took longer at two threads than at one (63 ms against 53).

So a small product runs on one BLAS thread where it is called, and on the compiled path a
product big enough to share is split over the convolution's pool (``conv_compiled.run``:
each range on one BLAS thread). Alone, a shared product takes as long as on BLAS's own two
threads (256×1024 by 1024×1024: 5.0 ms against 4.8; 256×4096 by 4096×4096: 73 against 74).
The NumPy path gives big products to BLAS's threads: nothing compiled competes with them.
"""

from __future__ import annotations

import numpy as np

from ..core import jit
from ..core.threads import one_blas_thread

# Multiply-adds from which a product is split between threads: a CNN's usual dense layers
# (the classic network's 64·3136·10) are far below, 64·4096·512 above.
SHARED_FROM = 1 << 24


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with NumPy's rules: stacks of matrices broadcast, a 1-D operand is a vector.

    A stack of rows times one matrix is split by rows, stacks of matrices along their first
    axis longer than one; a product with a vector runs on one BLAS thread.
    """
    fast = jit.twin(".conv_compiled", __package__)
    dtype = np.result_type(a, b)
    if a.ndim >= 2 and b.ndim == 2:
        rows = a.reshape(-1, a.shape[-1])  # (* · n, k)
        out = np.empty((rows.shape[0], b.shape[1]), dtype)  # (* · n, m)
        shared(fast, rows, b, out, rows.size * b.shape[1], stacked=False)
        return out.reshape(a.shape[:-1] + b.shape[1:])
    if a.ndim >= 2 and b.ndim > 2:
        stack = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a, b = np.broadcast_to(a, stack + a.shape[-2:]), np.broadcast_to(b, stack + b.shape[-2:])
        out = np.empty(stack + (a.shape[-2], b.shape[-1]), dtype)  # (*, n, m)
        multiply_adds = out.size * a.shape[-1]
        axis = next((i for i, size in enumerate(stack) if size > 1), None)
        if axis is None:  # one matrix each: split by rows
            matrices = a.reshape(a.shape[-2:]), b.reshape(b.shape[-2:]), out.reshape(out.shape[-2:])
            shared(fast, *matrices, multiply_adds, stacked=False)
        else:  # split along the stack's first axis longer than one (views, moved first)
            moved = (np.moveaxis(m, axis, 0) for m in (a, b, out))
            shared(fast, *moved, multiply_adds, stacked=True)
        return out
    with one_blas_thread():
        return np.matmul(a, b)


def shared(fast, a, b, out, multiply_adds: int, stacked: bool) -> np.ndarray:
    """``np.matmul(a, b, out=out)``: on one BLAS thread here when small; else split along the
    first axis of a and out (and of b when ``stacked``) over ``fast.run``'s threads, or on
    BLAS's own threads on the NumPy path (``fast`` None). Returns out."""
    big = multiply_adds >= SHARED_FROM
    if fast is None and big:
        return np.matmul(a, b, out=out)  # the NumPy path: on BLAS's own threads
    threads = 1 if fast is None else min(fast.threads(), out.shape[0])
    if threads < 2 or not big:
        with one_blas_thread():
            return np.matmul(a, b, out=out)
    bounds = [out.shape[0] * i // threads for i in range(threads + 1)]

    def product(start, stop):
        np.matmul(a[start:stop], b[start:stop] if stacked else b, out=out[start:stop])

    fast.run(product, list(zip(bounds[:-1], bounds[1:], strict=True)))
    return out
