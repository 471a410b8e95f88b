"""Fused activations: ReLU run inside its neighbour's pass, so the activation's own passes over
memory (read the input, write the output and a mask; in the backward read both, write the
gradient) disappear.

- **ReLU → max pooling.** ReLU does not decrease, so ``maxpool(relu(x)) == relu(maxpool(x))``
  wherever a window holds an input cell (every undilated pooling does): the pooling reads x
  once and only its output, a quarter of x for 2x2 windows, is clamped. The gradient
  ``relu'(x)·[x is the window's arg-max]`` is the pooling's arg-max gradient where the pooled
  output passes ReLU (is not ≤ 0: a NaN passes, as in PyTorch) and 0 elsewhere: a window whose
  maximum is ≤ 0 sends nothing, which is what ReLU's mask would have made of it. Arg-max ties
  (the first maximum), NaN (the last NaN) and padding are the pooling's own.
- **Batch normalisation → ReLU.** Normalised and clamped in one pass; the backward masks the
  output gradient by the output (``not y ≤ 0``; the compiled twin recomputes y from x) and
  takes batch norm's gradient of that.
  Running statistics move exactly as batch norm's. Where the two run as separate ops (a
  model's own ``forward``), the backward pass may still run them as one
  (:func:`relu_after_batch_norm_grad`, registered with ``autograd``): batch norm's pass with
  the ReLU's mask. And a ReLU whose output gradient comes in two parts adds them inside
  its backward's pass (:func:`relu_grad_of_sum`, registered with ``autograd``).

The NumPy reference below runs the unfused ops' own forward and backward (``pool.py``,
``norm.py``) on one context and clamps or masks around them, which is the identity above;
the compiled twins (``fused_compiled.py``) do the clamp and the mask inside the kernels for
the cases the benchmark networks run (2x2 pooling at stride 2; batch norm in training on the
channel-major memory convolutions return) and fall back to the reference for the others.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, register_fused_backward, register_summed_backward
from ..core import jit
from .activation import ReLU
from .arithmetic import require_dtypes
from .geometry import ConvGeometry, pool_geometry
from .norm import BatchNorm, normalised
from .pool import MaxPool2d


def compiled(x: np.ndarray):
    """The compiled twins, or None on the NumPy path or for a dtype they do not take."""
    if x.dtype not in (np.float32, np.float64):
        return None
    return jit.twin(".fused_compiled", __package__)


def clamp(y: np.ndarray) -> np.ndarray:
    """ReLU of an output the op owns, in place: 0 where ``y ≤ 0``, NaN kept (a masked
    ``copyto`` took 8x as long)."""
    return np.maximum(y, 0, out=y)


def passing(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """g where the ReLU output y passes a gradient (not y ≤ 0), else 0 (not 0·g: an inf or
    NaN gradient stops there, as at ReLU)."""
    return np.where(y <= 0, 0, g).astype(g.dtype, copy=False)


class ReluMaxPool2d(Function):
    """``max_pool2d(relu(x))`` as ``relu(max_pool2d(x))``: one read of x, the small pooled
    output clamped; the backward is the pooling's where that output is not ≤ 0."""

    @staticmethod
    def forward(ctx, x, geometry: ConvGeometry):
        out_size = geometry.output_size(*x.shape[2:])
        twin = compiled(x)
        ctx.twin = (
            twin if twin is not None and twin.halving(geometry, x.shape[2:], out_size) else None
        )
        if ctx.twin is not None:  # clamp and arg-max inside the pooling kernel
            track = ctx.needs_input_grad[0]
            y, ctx.index, ctx.channel_major = ctx.twin.relu_max_pool(x, out_size, track)
            ctx.size = x.shape[2:]
        else:
            y = clamp(MaxPool2d.forward(ctx, x, geometry))  # a new array: the op's own
        ctx.out = y
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.twin is not None:
            return ctx.twin.relu_max_pool_grad(gy, ctx.out, ctx.index, ctx.channel_major, ctx.size)
        return MaxPool2d.backward(ctx, passing(gy, ctx.out))


class BatchNormReLU(Function):
    """``relu(batch_norm(x))``: batch norm's forward clamped in its own pass, its backward of
    the output gradient masked by the output. Arguments as :class:`norm.BatchNorm`'s."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        twin = compiled(x)
        ctx.twin = twin if twin is not None and twin.normalises(x, training) else None
        if ctx.twin is not None:
            return ctx.twin.batch_norm_relu(
                ctx, x, weight, bias, running_mean, running_var, momentum, eps
            )
        y = BatchNorm.forward(
            ctx, x, weight, bias, running_mean, running_var, training, momentum, eps
        )
        # batch norm's output is new unless it has neither weight nor bias: copy it then
        ctx.out = clamp(y if weight is not None or bias is not None else y.copy(order="K"))
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        if ctx.twin is not None:
            return ctx.twin.batch_norm_relu_grad(ctx, g)
        return BatchNorm.backward(ctx, passing(g, ctx.out))


def relu_after_batch_norm_grad(relu_ctx, norm_ctx, g):
    """The backward of ``relu(batch_norm(x))`` run as two ops, in one pass of batch norm's
    (``fused_compiled.py``), when the backward pass finds nothing else needs the gradient
    between them; None (each op's own backward) on the NumPy path."""
    twin = compiled(g)
    return None if twin is None else twin.relu_after_batch_norm_grad(relu_ctx, norm_ctx, g)


register_fused_backward(ReLU, BatchNorm, relu_after_batch_norm_grad)


def relu_grad_of_sum(ctx, g1, g2):
    """ReLU's backward of an output gradient in two parts (a residual block's output feeds
    two branches), the parts added inside its pass (``fused_compiled.py``); None (the sum,
    then ReLU's own backward) on the NumPy path."""
    twin = compiled(g1)
    return None if twin is None else twin.relu_grad_of_sum(ctx, g1, g2)


register_summed_backward(ReLU, relu_grad_of_sum)


def batch_norm_relu_grad_of_sum(ctx, g1, g2):
    """:class:`BatchNormReLU`'s backward of an output gradient in two parts, added inside
    its one pass where the compiled twin ran the forward; else None (the sum, then the
    backward)."""
    if ctx.twin is None:
        return None
    return ctx.twin.batch_norm_relu_grad(ctx, g1, g2)


register_summed_backward(BatchNormReLU, batch_norm_relu_grad_of_sum)


def relu_max_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False):
    """``max_pool2d(relu(input), ...)`` in one pass (undilated windows: each holds an input
    cell, where ReLU and the maximum commute). Shape: (N, C, H, W) → (N, C, OH, OW)."""
    require_dtypes("relu_max_pool2d", input, kinds="f")
    geometry = pool_geometry(
        input.shape, kernel_size, stride, padding, 1, ceil_mode, "relu_max_pool2d"
    )
    return ReluMaxPool2d.apply(input, geometry=geometry)


def batch_norm_relu(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """``relu(batch_norm(input, ...))`` in one pass; arguments and checks as
    :func:`norm.batch_norm`'s. Shape: input (N, C, ...), the rest (C,)."""
    return normalised(
        BatchNormReLU,
        "batch_norm_relu",
        input,
        running_mean,
        running_var,
        weight,
        bias,
        training,
        momentum,
        eps,
    )
