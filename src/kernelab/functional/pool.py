"""Pooling: max, average and adaptive average over spatial windows, with their gradients.

Windows are laid out exactly as for convolution (see ``conv.py``): for each kernel offset a
strided slice of the padded input, so forward and backward loop over the kH·kW offsets, never
over pixels. The backward sends each output gradient back through the window it came from.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from .conv import ConvGeometry, conv_geometry, offsets, pad, pair, unpad, windows


def _pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode, name):
    """Like a convolution's geometry; ``ceil_mode`` adds bottom/right rows the windows may use."""
    if len(x_shape) != 4:
        raise ShapeError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    geometry = conv_geometry(kernel, stride, ((ph, ph), (pw, pw)), dilation)
    if ceil_mode:
        extra = [0, 0]
        for axis, size in enumerate(x_shape[2:]):
            k, s, d, p = kernel[axis], stride[axis], geometry.dilation[axis], (ph, pw)[axis]
            out = math.ceil((size + 2 * p - d * (k - 1) - 1) / s) + 1
            if (out - 1) * s >= size + p:  # the last window must start inside the input
                out -= 1
            extra[axis] = max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
        geometry = conv_geometry(
            kernel, stride, ((ph, ph + extra[0]), (pw, pw + extra[1])), dilation
        )
    hp, wp = geometry.padded_size(*x_shape[2:])
    eh, ew = geometry.window
    if eh > hp or ew > wp:
        raise ShapeError(
            f"{name}: window {eh}x{ew} is larger than the padded input {hp}x{wp} "
            f"(input shape {tuple(x_shape)})"
        )
    return geometry


class MaxPool2d(Function):
    """The maximum of each window, found offset by offset (kH·kW vectorised comparisons)."""

    @staticmethod
    def forward(ctx, x, geometry: ConvGeometry):
        xp = pad(x, geometry.padding, value=-np.inf)
        out_size = geometry.output_size(*x.shape[2:])
        best = index = None
        for k, (_, _, rows, columns) in enumerate(offsets(geometry, out_size)):
            value = xp[:, :, rows, columns]
            if best is None:
                best, index = value.copy(), np.zeros(value.shape, np.uint16)
                continue
            # strictly greater keeps the first maximum, as PyTorch; NaN wins, as in PyTorch
            better = (value > best) | np.isnan(value)
            np.copyto(best, value, where=better)
            np.copyto(index, k, where=better)
        ctx.index, ctx.padded_shape, ctx.geometry = index, xp.shape, geometry
        return best

    @staticmethod
    def backward(ctx, gy):
        gxp = np.zeros(ctx.padded_shape, dtype=gy.dtype)
        for k, (_, _, rows, columns) in enumerate(offsets(ctx.geometry, gy.shape[2:])):
            gxp[:, :, rows, columns] += gy * (ctx.index == k)  # only the arg-max gets it
        return unpad(gxp, ctx.geometry.padding)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, geometry: ConvGeometry, divisor):
        xp = pad(x, geometry.padding)
        out_size = geometry.output_size(*x.shape[2:])
        total = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
        for _, _, rows, columns in offsets(geometry, out_size):
            total += xp[:, :, rows, columns]
        ctx.padded_shape, ctx.geometry, ctx.divisor = xp.shape, geometry, divisor
        return (total / divisor).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, gy):
        share = (gy / ctx.divisor).astype(gy.dtype, copy=False)
        gxp = np.zeros(ctx.padded_shape, dtype=gy.dtype)
        for _, _, rows, columns in offsets(ctx.geometry, gy.shape[2:]):
            gxp[:, :, rows, columns] += share
        return unpad(gxp, ctx.geometry.padding)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Maximum over each window; the gradient flows to the first maximum only.

    Shape: (N, C, H, W) → (N, C, OH, OW), sizes as for a convolution with this geometry.
    """
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported")
    geometry = _pool_geometry(
        input.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
    )
    return MaxPool2d.apply(input, geometry=geometry)


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Mean over each window, dividing as PyTorch does.

    The divisor counts the window's cells inside the input, plus the zero padding when
    ``count_include_pad`` (never the extra cells ``ceil_mode`` adds), or is
    ``divisor_override``.
    """
    geometry = _pool_geometry(input.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None:
        divisor = divisor_override
    else:
        (top, _), (left, _) = geometry.padding
        h, w = input.shape[2:]
        counted = np.zeros((1, 1) + geometry.padded_size(h, w), dtype=input.dtype)
        if count_include_pad:
            counted[:, :, : h + 2 * top, : w + 2 * left] = 1
        else:
            counted[:, :, top : top + h, left : left + w] = 1
        divisor = windows(counted, geometry).sum(axis=(-2, -1))
    return AvgPool2d.apply(input, geometry=geometry, divisor=divisor)


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's bins: ``[floor(i·size/out), ceil((i+1)·size/out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        (oh, ow), (h, w) = output_size, x.shape[2:]
        ctx.shape, ctx.rows, ctx.cols = x.shape, _adaptive_bins(h, oh), _adaptive_bins(w, ow)
        if (oh, ow) == (1, 1):
            return x.mean(axis=(2, 3), keepdims=True)
        y = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
        for i, (r0, r1) in enumerate(ctx.rows):
            for j, (c0, c1) in enumerate(ctx.cols):
                y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return y

    @staticmethod
    def backward(ctx, gy):
        gx = np.zeros(ctx.shape, dtype=gy.dtype)
        for i, (r0, r1) in enumerate(ctx.rows):
            for j, (c0, c1) in enumerate(ctx.cols):
                gx[:, :, r0:r1, c0:c1] += gy[:, :, i : i + 1, j : j + 1] / ((r1 - r0) * (c1 - c0))
        return gx


def adaptive_avg_pool2d(input, output_size):
    """Average into a fixed ``output_size`` grid whatever the input size (None keeps an axis)."""
    if len(input.shape) != 4:
        raise ShapeError(f"adaptive_avg_pool2d: expected a 4-D input, got shape {input.shape}")
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    sizes = tuple(input.shape[2 + a] if s is None else int(s) for a, s in enumerate(sizes))
    if min(sizes) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    return AdaptiveAvgPool2d.apply(input, output_size=sizes)
