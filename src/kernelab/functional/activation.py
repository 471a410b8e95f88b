"""Activations and softmax, each a forward and its backward.

The element-wise ones have compiled twins (``activation_compiled.py``) that run instead unless
the NumPy path is chosen (``core/jit.py``); both keep the input's memory layout.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core import jit
from .arithmetic import cast_to, promote, require_dtypes


def compiled(x: np.ndarray):
    """The compiled twins, or None on the NumPy path or for a dtype they do not take."""
    if x.dtype not in (np.float32, np.float64):
        return None
    return jit.twin(".activation_compiled", __package__)


class ReLU(Function):
    """max(x, 0); NaN stays NaN and, as in PyTorch, passes its gradient (the mask is
    "not x ≤ 0", a byte per element, kept only when a gradient is wanted)."""

    @staticmethod
    def forward(ctx, x):
        ctx.fast = compiled(x)
        if ctx.fast is not None:
            y, ctx.passes, ctx.flat = ctx.fast.relu(x, keep_mask=ctx.needs_input_grad[0])
            return y
        if ctx.needs_input_grad[0]:
            ctx.passes = ~(x <= 0)  # the arrays keep x's memory layout
        return np.maximum(x, 0, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.relu_grad(g, ctx.passes, ctx.flat)
        return np.where(ctx.passes, g, 0)  # 0, not 0·g: an inf or NaN gradient stops here


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.fast, ctx.negative_slope = compiled(x), negative_slope
        if ctx.fast is not None:
            y, ctx.positive, ctx.flat = ctx.fast.leaky_relu(x, negative_slope)
            return y
        ctx.slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * ctx.slope

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.leaky_relu_grad(g, ctx.positive, ctx.flat, ctx.negative_slope)
        return g * ctx.slope


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.fast = compiled(x)
        if ctx.fast is not None:
            ctx.out, ctx.flat = ctx.fast.sigmoid(x)
            return ctx.out
        # exp of a non-positive number only, so large |x| neither overflows nor warns
        e = np.exp(-np.abs(x))
        ctx.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.output_grad(ctx.fast.sigmoid_backward, g, ctx.out, ctx.flat)
        return g * ctx.out * (1 - ctx.out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.fast = compiled(x)
        if ctx.fast is not None:
            ctx.out, ctx.flat = ctx.fast.tanh(x)
            return ctx.out
        ctx.out = np.tanh(x)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.output_grad(ctx.fast.tanh_backward, g, ctx.out, ctx.flat)
        return g * (1 - ctx.out * ctx.out)


def log_softmax_and_softmax(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """log(softmax(x)) computed as ``x − max − log Σ exp(x − max)`` (no overflow, no log 0),
    and softmax(x) from the same exponentials, ``exp(x − max) / Σ``: one exp over x, where
    taking exp of the first for the second would be two."""
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=axis, keepdims=True)
    shifted -= np.log(total)
    e /= total
    return shifted, e


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.out, ctx.dim = log_softmax_and_softmax(x, dim)[1], dim
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        s = ctx.out
        return s * (g - (g * s).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        out, ctx.softmax = log_softmax_and_softmax(x, dim)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        return g - ctx.softmax * g.sum(axis=ctx.dim, keepdims=True)


def relu(input, inplace: bool = False):
    require_dtypes("relu", input, kinds="uifc")
    return ReLU.apply(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    require_dtypes("leaky_relu", input, kinds="fc")
    return LeakyReLU.apply(input, negative_slope=negative_slope)


def sigmoid(input):
    """1 / (1 + exp(−x)); integers and bools give the default float dtype, as in PyTorch."""
    return Sigmoid.apply(*promote(input, floating=True))


def tanh(input):
    return Tanh.apply(*promote(input, floating=True))


def _softmax_input(name: str, input, dtype):
    """``input`` in ``dtype`` if given; PyTorch's softmax refuses anything but floats."""
    if dtype is not None:
        input = cast_to(input, np.dtype(dtype))
    require_dtypes(name, input, kinds="fc")
    return input


def softmax(input, dim: int, dtype=None):
    """exp(x) / Σ exp(x) along ``dim``."""
    return Softmax.apply(_softmax_input("softmax", input, dtype), dim=dim)


def log_softmax(input, dim: int, dtype=None):
    return LogSoftmax.apply(_softmax_input("log_softmax", input, dtype), dim=dim)
