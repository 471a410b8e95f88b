"""Pooling: max, average and adaptive average over spatial windows, with their gradients.

Windows are laid out exactly as for convolution (``geometry.py``, where ``ceil_mode`` becomes
extra bottom/right padding): for each kernel offset a strided slice of the padded input, so
forward and backward loop over the kH·kW offsets, never over pixels. The backward sends each
output gradient back through the window it came from. Outputs and gradients keep the input's
memory layout ((C, N, H, W) memory after a convolution), so no layer transposes a copy.

The compiled twins (``pool_compiled.py``) run instead unless the NumPy path is chosen
(``core/jit.py``).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core import jit
from ..core.errors import ShapeError
from .arithmetic import cast, require_dtypes
from .conv import pad, unpad
from .geometry import ConvGeometry, adaptive_bins, offsets, pool_geometry, window_counts


class MaxPool2d(Function):
    """The maximum of each window, found offset by offset (kH·kW vectorised comparisons); the
    arg-max is kept as the offset number, one byte per output for windows up to 16x16."""

    @staticmethod
    def forward(ctx, x, geometry: ConvGeometry):
        out_size = geometry.output_size(*x.shape[2:])
        track = ctx.needs_input_grad[0]
        ctx.fast, ctx.geometry, ctx.size = compiled(x), geometry, x.shape[2:]
        # inference needs no arg-max: NumPy's maxima beat the general compiled loop, not the 2x2
        if ctx.fast is not None and (track or ctx.fast.halving(geometry, ctx.size, out_size)):
            y, ctx.index, ctx.channel_major = ctx.fast.max_pool(x, geometry, out_size, track)
            return y
        ctx.fast = None
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min  # integers: no -inf
        xp = pad(x, geometry.padding, value=lowest)
        if not track:  # inference: the maxima only, no arg-max
            return _max_and_offset(xp, geometry, out_size, nan_rule=False, track=False)[0]
        best, index = _max_and_offset(xp, geometry, out_size, nan_rule=False)
        if np.isnan(best).any():  # rare: redo the arg-max with PyTorch's rule for NaN
            best, index = _max_and_offset(xp, geometry, out_size, nan_rule=True)
        ctx.index, ctx.padded_shape = index, xp.shape
        ctx.channel_major = _channel_major(xp)  # so the gradient can match it
        return best

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            return ctx.fast.max_pool_grad(gy, ctx.index, ctx.channel_major, ctx.geometry, ctx.size)
        shape, geometry = ctx.padded_shape, ctx.geometry
        (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
        oh, ow = gy.shape[2:]
        disjoint = dh == dw == 1 and sh >= kh and sw >= kw  # each pixel in one window at most
        covered = disjoint and (sh, sw) == (kh, kw) and shape[2:] == (oh * kh, ow * kw)
        gxp = _new(shape, gy.dtype, ctx.channel_major, zero=not covered)
        for k, (_, _, rows, columns) in enumerate(offsets(geometry, (oh, ow))):
            # only the arg-max gets the gradient; 0, not 0·gy, elsewhere (inf·0 is NaN)
            share = np.where(ctx.index == k, gy, 0)
            if disjoint:
                gxp[:, :, rows, columns] = share
            else:
                gxp[:, :, rows, columns] += share
        return unpad(gxp, geometry.padding)


def compiled(x: np.ndarray):
    """The compiled twins, or None on the NumPy path or for a dtype they do not take."""
    if x.dtype not in (np.float32, np.float64):
        return None
    return jit.twin(".pool_compiled", __package__)


def _channel_major(x: np.ndarray) -> bool:
    return x.strides[0] < x.strides[1]


def _new(shape, dtype, channel_major: bool, zero: bool) -> np.ndarray:
    """An (N, C, H, W) array, in (C, N, H, W) memory when ``channel_major``."""
    make = np.zeros if zero else np.empty
    if channel_major:
        return make((shape[1], shape[0]) + shape[2:], dtype).transpose(1, 0, 2, 3)
    return make(shape, dtype)


def _max_and_offset(xp, geometry: ConvGeometry, out_size, nan_rule: bool, track: bool = True):
    """Window maxima and (if ``track``) the offset k of the maximum PyTorch picks: the first
    one, or with ``nan_rule`` the last NaN (a NaN always replaces the running maximum)."""
    kh, kw = geometry.kernel_size
    best = index = None
    for k, (_, _, rows, columns) in enumerate(offsets(geometry, out_size)):
        value = xp[:, :, rows, columns]
        if best is None:  # "K" keeps the input's memory layout (channel-major after a conv)
            best = value.copy(order="K")
            if track:
                index = np.zeros_like(best, dtype=np.uint8 if kh * kw <= 256 else np.int32)
            continue
        if track:
            better = value > best  # strictly greater: the first maximum stays
            if nan_rule:
                better |= np.isnan(value)
            np.copyto(index, k, where=better)
        np.maximum(best, value, out=best)  # NaN propagates either way
    return best, index


class AvgPool2d(Function):
    """Window sums over the divisor: ``divisor_override``, or (1, 1, OH, OW) cell counts."""

    @staticmethod
    def forward(ctx, x, geometry: ConvGeometry, divisor):
        out_size = geometry.output_size(*x.shape[2:])
        ctx.fast, ctx.geometry, ctx.size = compiled(x), geometry, x.shape[2:]
        if ctx.fast is not None:
            # (OH, OW) in the input's dtype, one value per output
            divisor = np.broadcast_to(divisor, (1, 1) + out_size)[0, 0]
            ctx.divisor = np.ascontiguousarray(divisor, x.dtype)
            y, ctx.channel_major = ctx.fast.avg_pool(x, geometry, out_size, ctx.divisor)
            return y
        xp = pad(x, geometry.padding)
        ctx.channel_major = _channel_major(x)
        total = _new(x.shape[:2] + out_size, x.dtype, ctx.channel_major, zero=True)
        for _, _, rows, columns in offsets(geometry, out_size):
            total += xp[:, :, rows, columns]
        ctx.padded_shape, ctx.divisor = xp.shape, divisor
        total /= divisor
        return total

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            return ctx.fast.avg_pool_grad(
                gy, ctx.divisor, ctx.channel_major, ctx.geometry, ctx.size
            )
        share = (gy / ctx.divisor).astype(gy.dtype, copy=False)
        gxp = _new(ctx.padded_shape, gy.dtype, ctx.channel_major, zero=True)
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
    require_dtypes("max_pool2d", input, kinds="uif")
    geometry = pool_geometry(
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
    if input.dtype == np.int64:  # PyTorch's one integer dtype here: the mean, truncated
        args = kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        return cast(avg_pool2d(cast(input, np.dtype(np.float64)), *args), np.dtype(np.int64))
    require_dtypes("avg_pool2d", input, kinds="f")
    geometry = pool_geometry(input.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None:
        divisor = divisor_override
    else:
        counts = window_counts(geometry, input.shape[2:], include_padding=count_include_pad)
        divisor = counts.astype(input.dtype)[None, None]  # (1, 1, OH, OW), the input's dtype
    return AvgPool2d.apply(input, geometry=geometry, divisor=divisor)


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        (oh, ow), (h, w) = output_size, x.shape[2:]
        ctx.fast, ctx.shape = compiled(x), x.shape
        if ctx.fast is not None:
            y, ctx.channel_major = ctx.fast.adaptive_avg_pool(x, (oh, ow))
            return y
        ctx.rows, ctx.cols = adaptive_bins(h, oh), adaptive_bins(w, ow)
        ctx.channel_major = _channel_major(x)
        if (oh, ow) == (1, 1):
            return x.mean(axis=(2, 3), keepdims=True)  # keeps x's layout
        y = _new(x.shape[:2] + (oh, ow), x.dtype, ctx.channel_major, zero=False)
        for i, (r0, r1) in enumerate(ctx.rows):
            for j, (c0, c1) in enumerate(ctx.cols):
                y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            return ctx.fast.adaptive_avg_pool_grad(gy, ctx.channel_major, ctx.shape[2:])
        gx = _new(ctx.shape, gy.dtype, ctx.channel_major, zero=True)
        for i, (r0, r1) in enumerate(ctx.rows):
            for j, (c0, c1) in enumerate(ctx.cols):
                gx[:, :, r0:r1, c0:c1] += gy[:, :, i : i + 1, j : j + 1] / ((r1 - r0) * (c1 - c0))
        return gx


def adaptive_avg_pool2d(input, output_size):
    """Average into a fixed ``output_size`` grid whatever the input size (None keeps an axis)."""
    if len(input.shape) != 4:
        raise ShapeError(f"adaptive_avg_pool2d: expected a 4-D input, got shape {input.shape}")
    require_dtypes("adaptive_avg_pool2d", input, kinds="f")
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    sizes = tuple(input.shape[2 + a] if s is None else int(s) for a, s in enumerate(sizes))
    if min(sizes) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    return AdaptiveAvgPool2d.apply(input, output_size=sizes)
