"""The dense (fully connected) layer's operation: ``y = x Wᵀ + b``."""

from __future__ import annotations

from ..autograd import Function
from ..core.errors import DTypeError, ShapeError
from . import products
from .arithmetic import require_dtypes


class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.x, ctx.w = x, w
        y = products.matmul(x, w.T)
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.x, ctx.w
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (batch, out_features)
        gx = products.matmul(g, w) if need_x else None
        gw = products.matmul(g2.T, x.reshape(-1, x.shape[-1])) if need_w else None
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
