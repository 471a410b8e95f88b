"""Dropout: zero random elements (or whole feature maps) in training, scale the rest.

Element-wise dropout has a compiled twin (``dropout_compiled.py``) that runs instead unless the
NumPy path is chosen (``core/jit.py``); both draw the same numbers from the same generator.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core import jit
from ..core.rng import as_generator


class Dropout(Function):
    """x·mask with mask = (u ≥ p)/(1 − p) for uniform draws u (None when p = 1: all dropped);
    u has x's shape, or (N, C, 1, 1) to drop whole feature maps."""

    @staticmethod
    def forward(ctx, x, draws, p):
        ctx.fast = None
        if draws is not None and draws.shape == x.shape and x.dtype in (np.float32, np.float64):
            ctx.fast = jit.twin(".dropout_compiled", __package__)
        if ctx.fast is not None:
            y, ctx.keep, ctx.scale = ctx.fast.dropout(x, draws, p)
            return y
        ctx.mask = _keep_mask(draws, p, x.dtype)
        return x * ctx.mask

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.dropout_grad(g, ctx.keep, ctx.scale)
        return g * ctx.mask


def _draws(shape, p: float, generator) -> np.ndarray | None:
    """Uniform float32 draws in [0, 1), none when p = 1 (every element is dropped)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if p == 1:
        return None
    return as_generator(generator).random(shape, dtype=np.float32)


def _keep_mask(draws, p: float, dtype) -> np.ndarray:
    """1/(1−p) where an element is kept, 0 where dropped: the expected output is the input."""
    if draws is None:
        return np.zeros((), dtype)
    keep = draws >= p
    return keep.astype(dtype) / np.asarray(1 - p, dtype=dtype)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None):
    """Zero each element with probability ``p`` in training; identity in evaluation."""
    if not training or p == 0:
        return input
    return Dropout.apply(input, draws=_draws(input.shape, p, generator), p=p)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None):
    """Zero whole feature maps (N, C, H, W) with probability ``p`` in training."""
    if not training or p == 0:
        return input
    shape = tuple(input.shape[:2]) + (1,) * (len(input.shape) - 2)
    return Dropout.apply(input, draws=_draws(shape, p, generator), p=p)
