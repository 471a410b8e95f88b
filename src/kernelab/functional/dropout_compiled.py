"""Compiled twin of dropout in ``dropout.py``: the draws compared, scaled and multiplied in
one pass, a byte per element kept for the backward (the NumPy path keeps a scaled mask).

The uniform draws come from kernelab's generator exactly as on the NumPy path, so for one seed
both paths drop the same elements and give the same values: an element is kept when its draw
is ≥ p, compared in float32 as NumPy compares, and x·(1/(1 − p)) is rounded in x's dtype.
Both passes are bound by memory and run on the team of ``core/team.py`` (the calling thread
and spinning helpers), chunk by chunk; each kernel returns the elements it did.
"""

from __future__ import annotations

import numpy as np

from ..core import jit, team
from ..core.team import claim


def dropout(x: np.ndarray, draws: np.ndarray, p: float):
    """x·keep/(1 − p) with keep = draws ≥ p: the result (C-contiguous), keep and the scale."""
    scale = x.dtype.type(1) / x.dtype.type(1 - p)
    y, keep = np.empty(x.size, x.dtype), np.empty(x.size, np.bool_)
    xv = np.ascontiguousarray(x).reshape(-1)  # (size,) in C order, like the draws
    team.run(dropout_forward, (xv, draws.reshape(-1), np.float32(p), scale, y, keep), xv.size)
    return y.reshape(x.shape), keep, scale  # (N, ...)


@jit.kernel()
def dropout_forward(x, draws, p, scale, y, keep, control):
    """y = x·scale where draws ≥ p, else x·0 (a NaN stays NaN, as x·mask keeps it)."""
    zero = scale - scale  # of x's dtype, so nothing widens to float64
    done = 0
    start, stop = claim(control, x.size)
    while start < stop:
        xs, ds, ys, ks = x[start:stop], draws[start:stop], y[start:stop], keep[start:stop]
        for i in range(xs.size):
            kept = ds[i] >= p
            ks[i] = kept
            ys[i] = xs[i] * (scale if kept else zero)
        done += stop - start
        start, stop = claim(control, x.size)
    return done


def dropout_grad(g: np.ndarray, keep: np.ndarray, scale) -> np.ndarray:
    """g·keep/(1 − p), C-contiguous."""
    gx = np.empty(g.size, g.dtype)
    gv = np.ascontiguousarray(g).reshape(-1)  # (size,) in C order
    team.run(dropout_backward, (gv, keep, scale, gx), gv.size)
    return gx.reshape(g.shape)  # (N, ...)


@jit.kernel()
def dropout_backward(g, keep, scale, gx, control):
    """gx = g·scale where kept, else g·0."""
    zero = scale - scale  # of g's dtype, so nothing widens to float64
    done = 0
    start, stop = claim(control, g.size)
    while start < stop:
        gs, ks, gxs = g[start:stop], keep[start:stop], gx[start:stop]
        for i in range(gs.size):
            gxs[i] = gs[i] * (scale if ks[i] else zero)
        done += stop - start
        start, stop = claim(control, g.size)
    return done
