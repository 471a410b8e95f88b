"""Activations and softmax, each a forward and its backward."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        if ctx.needs_input_grad[0]:
            ctx.positive = x > 0  # a byte per element; the arrays keep x's memory layout
        return np.maximum(x, 0, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.positive


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * ctx.slope

    @staticmethod
    def backward(ctx, g):
        return g * ctx.slope


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        # exp of a non-positive number only, so large |x| neither overflows nor warns
        e = np.exp(-np.abs(x))
        ctx.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.out * (1 - ctx.out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.out = np.tanh(x)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g * (1 - ctx.out * ctx.out)


def stable_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(x)) computed as ``x − max − log Σ exp(x − max)``: no overflow, no log 0."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.out, ctx.dim = np.exp(stable_log_softmax(x, dim)), dim
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        s = ctx.out
        return s * (g - (g * s).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        out = stable_log_softmax(x, dim)
        ctx.softmax, ctx.dim = np.exp(out), dim
        return out

    @staticmethod
    def backward(ctx, g):
        return g - ctx.softmax * g.sum(axis=ctx.dim, keepdims=True)


def relu(input, inplace: bool = False):
    return ReLU.apply(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    return LeakyReLU.apply(input, negative_slope=negative_slope)


def sigmoid(input):
    return Sigmoid.apply(input)


def tanh(input):
    return Tanh.apply(input)


def softmax(input, dim: int, dtype=None):
    """exp(x) / Σ exp(x) along ``dim``."""
    return Softmax.apply(input, dim=dim)


def log_softmax(input, dim: int, dtype=None):
    return LogSoftmax.apply(input, dim=dim)
