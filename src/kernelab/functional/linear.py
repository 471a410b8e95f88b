"""The dense (fully connected) layer's operation: ``y = x Wᵀ + b``."""

from __future__ import annotations

import contextlib

from ..autograd import Function
from ..core.errors import DTypeError, ShapeError
from ..core.threads import one_blas_thread
from .arithmetic import require_dtypes

# Products of fewer multiply-adds run on one BLAS thread (see ``one_blas_thread``): a CNN's
# dense layers (the classic network's: 64 × 3136 × 10) are far below; 256 × 1024 × 1024 is
# above, and gains from the second thread.
SMALL_PRODUCT = 1 << 24


def blas_threads_for(x, w):
    """One BLAS thread for the products of a small layer, BLAS's own count otherwise."""
    small = x.size * w.shape[0] < SMALL_PRODUCT  # (rows · in_features) · out_features
    return one_blas_thread() if small else contextlib.nullcontext()


class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.x, ctx.w = x, w
        with blas_threads_for(x, w):
            y = x @ w.T
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.x, ctx.w
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (batch, out_features)
        with blas_threads_for(x, w):
            gx = (g @ w) if need_x else None
            gw = (g2.T @ x.reshape(-1, x.shape[-1])) if need_w else None
        gb = g2.sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """Shape: input (*, in_features), weight (out_features, in_features) → (*, out_features)."""
    if input.shape[-1:] != weight.shape[1:]:
        raise ShapeError(
            f"expected input with {weight.shape[1]} features in its last axis, "
            f"got shape {tuple(input.shape)}"
        )
    if input.dtype != weight.dtype:
        raise DTypeError(f"input dtype {input.dtype} differs from weight dtype {weight.dtype}")
    if bias is not None and bias.dtype != weight.dtype:
        raise DTypeError(f"bias dtype {bias.dtype} differs from weight dtype {weight.dtype}")
    require_dtypes("linear", weight, kinds="uifc")
    return Linear.apply(input, weight, bias)
