"""Dropout: zero random elements (or whole feature maps) in training, scale the rest."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core.rng import as_generator


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


def _keep_mask(shape, p: float, dtype, generator) -> np.ndarray:
    """1/(1−p) where an element is kept, 0 where dropped: the expected output is the input."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if p == 1:
        return np.zeros(shape, dtype)
    keep = as_generator(generator).random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) / np.asarray(1 - p, dtype=dtype)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None):
    """Zero each element with probability ``p`` in training; identity in evaluation."""
    if not training or p == 0:
        return input
    return Dropout.apply(input, mask=_keep_mask(input.shape, p, input.dtype, generator))


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None):
    """Zero whole feature maps (N, C, H, W) with probability ``p`` in training."""
    if not training or p == 0:
        return input
    shape = tuple(input.shape[:2]) + (1,) * (len(input.shape) - 2)
    return Dropout.apply(input, mask=_keep_mask(shape, p, input.dtype, generator))
