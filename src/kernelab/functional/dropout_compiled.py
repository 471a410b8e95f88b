"""Compiled twin of dropout in ``dropout.py``: the draws compared, scaled and multiplied in
one pass, a byte per element kept for the backward (the NumPy path keeps a scaled mask).

The uniform draws come from kernelab's generator exactly as on the NumPy path, so for one seed
both paths drop the same elements and give the same values: an element is kept when its draw
is ≥ p, compared in float32 as NumPy compares, and x·(1/(1 − p)) is rounded in x's dtype.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..core import jit


def dropout(x: np.ndarray, draws: np.ndarray, p: float):
    """x·keep/(1 − p) with keep = draws ≥ p: the result (C-contiguous), keep and the scale."""
    scale = x.dtype.type(1) / x.dtype.type(1 - p)
    y, keep = np.empty(x.size, x.dtype), np.empty(x.size, np.bool_)
    xv = np.ascontiguousarray(x).reshape(-1)  # (size,) in C order, like the draws
    dropout_forward(xv, draws.reshape(-1), np.float32(p), scale, y, keep)
    return y.reshape(x.shape), keep, scale  # (N, ...)


@jit.kernel(parallel=True)
def dropout_forward(x, draws, p, scale, y, keep):
    """y = x·scale where draws ≥ p, else x·0 (a NaN stays NaN, as x·mask keeps it)."""
    zero = scale - scale  # of x's dtype, so nothing widens to float64
    for i in prange(x.size):
        kept = draws[i] >= p
        keep[i] = kept
        y[i] = x[i] * (scale if kept else zero)


def dropout_grad(g: np.ndarray, keep: np.ndarray, scale) -> np.ndarray:
    """g·keep/(1 − p), C-contiguous."""
    gx = np.empty(g.size, g.dtype)
    dropout_backward(np.ascontiguousarray(g).reshape(-1), keep, scale, gx)
    return gx.reshape(g.shape)  # (N, ...)


@jit.kernel(parallel=True)
def dropout_backward(g, keep, scale, gx):
    """gx = g·scale where kept, else g·0."""
    zero = scale - scale  # of g's dtype, so nothing widens to float64
    for i in prange(g.size):
        gx[i] = g[i] * (scale if keep[i] else zero)
