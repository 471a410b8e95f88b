"""Batch normalisation: normalise each channel over the batch, then scale and shift."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, is_tensor, unwrap
from ..core import jit
from ..core.errors import DTypeError, ShapeError
from .arithmetic import require_dtypes

NAMES = ("weight", "bias", "running_mean", "running_var")


class BatchNorm(Function):
    """``y = (x − mean) / sqrt(var + eps) · weight + bias`` per channel (axis 1).

    In training the statistics are the batch's (biased variance) and the running estimates
    move towards them (unbiased variance, as PyTorch); in evaluation the running ones are used.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        fast = jit.twin(".norm_compiled", __package__)
        ctx.fast = fast if fast is not None and fast.supports(x) else None
        if ctx.fast is not None:
            return ctx.fast.forward(
                ctx, x, weight, bias, running_mean, running_var, training, momentum, eps
            )
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            if running_mean is not None:
                count = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (count / max(count - 1, 1))
        else:
            mean, var = running_mean, running_var
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        ctx.x_hat, ctx.inv_std, ctx.weight = x_hat, inv_std, weight
        ctx.axes, ctx.shape, ctx.training = axes, shape, training
        y = x_hat if weight is None else x_hat * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        if ctx.fast is not None:
            return ctx.fast.backward(ctx, g)
        x_hat, axes, shape = ctx.x_hat, ctx.axes, ctx.shape
        need_x, need_w, need_b = ctx.needs_input_grad
        gw = (g * x_hat).sum(axis=axes) if need_w else None
        gb = g.sum(axis=axes) if need_b else None
        gx = None
        if need_x:
            g_hat = g if ctx.weight is None else g * ctx.weight.reshape(shape)
            inv_std = ctx.inv_std.reshape(shape)
            if ctx.training:  # the batch statistics depend on x too
                mean_g = g_hat.mean(axis=axes, keepdims=True)
                mean_gx = (g_hat * x_hat).mean(axis=axes, keepdims=True)
                gx = (g_hat - mean_g - x_hat * mean_gx) * inv_std
            else:
                gx = g_hat * inv_std
        return gx, gw, gb


def check_arguments(name: str, input, tensors: tuple, training: bool) -> None:
    """Raise what is wrong with a batch norm's input and its (weight, bias, running_mean,
    running_var), as PyTorch refuses them; ``name`` is the caller's."""
    if len(input.shape) < 2:
        raise ShapeError(f"{name}: expected input (N, C, ...), got shape {tuple(input.shape)}")
    if training and input.shape[0] * math.prod(input.shape[2:]) < 2:
        raise ValueError(
            f"{name}: expected more than 1 value per channel in training, got {tuple(input.shape)}"
        )
    if not training and tensors[2] is None:
        raise ValueError(f"{name}: evaluation needs running_mean and running_var")
    require_dtypes(name, input, kinds="f")
    for what, tensor in zip(NAMES, tensors, strict=True):
        if is_tensor(tensor) and tensor.dtype != input.dtype:  # PyTorch mixes no dtypes here
            raise DTypeError(f"{name}: {what} is {tensor.dtype}, the input {input.dtype}")


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Shape: input (N, C, ...), running stats, weight and bias (C,). Running stats are
    NumPy arrays (or tensors) updated in place when ``training``."""
    return normalised(
        BatchNorm,
        "batch_norm",
        input,
        running_mean,
        running_var,
        weight,
        bias,
        training,
        momentum,
        eps,
    )


def normalised(
    function, name: str, input, running_mean, running_var, weight, bias, training, momentum, eps
):
    """``function`` (batch norm or a fused one) applied after :func:`check_arguments`, the
    running statistics as the NumPy arrays it updates in place."""
    check_arguments(name, input, (weight, bias, running_mean, running_var), training)
    return function.apply(
        input,
        weight,
        bias,
        running_mean=unwrap(running_mean),
        running_var=unwrap(running_var),
        training=training,
        momentum=momentum,
        eps=eps,
    )
