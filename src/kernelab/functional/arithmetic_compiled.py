"""Compiled twin of the element-wise addition in ``arithmetic.py``, for large arrays.

NumPy adds on the calling thread: ResNet-8's residual sums (4 MB a layer at batch 64) were
2 ms of its training step that the second core could not share. Here the elements are
spread over the threads by one parallel launch; each sum is the same IEEE addition, so the
result equals NumPy's bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..core import jit


def flat_in_memory_order(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of arrays of one shape and strides in the order of their memory, or None
    when that memory is not one dense block (a C-contiguous array with its axes permuted,
    such as the channel-major (N, C, H, W) views convolutions return)."""
    first = arrays[0]
    order = sorted(range(first.ndim), key=lambda axis: -first.strides[axis])
    permuted = [a.transpose(order) for a in arrays]  # (the axes by decreasing stride)
    if not all(p.flags.c_contiguous for p in permuted):
        return None
    return [p.reshape(-1) for p in permuted]  # (size,)


@jit.kernel(parallel=True)
def add(a, b, out):
    """``out = a + b`` for flat arrays of one dtype."""
    for i in prange(out.size):
        out[i] = a[i] + b[i]
