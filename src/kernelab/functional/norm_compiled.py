"""Compiled twin of batch normalisation (``norm.py``): one pass per statistic, threads per channel.

Every kernel sees a C-contiguous 3-D array in one of two layouts: ``(N, C, S)`` (an ordinary
contiguous input) or, when ``channel_major``, ``(C, N, S)`` — the memory behind the
``(N, C, H, W)`` views that convolutions return. Either way one sample of one channel is a
contiguous row of S values, so a channel-major input is never transposed, and every result
comes back in the input's layout.

Sums are accumulated in float64 whatever the data's dtype. The batch statistics come from one
pass of shifted sums (``Σ(x − k)`` and ``Σ(x − k)²`` with ``k`` the channel's first value), which
keeps the variance exact to float64 rounding unless the mean is vastly larger than the spread.
What the backward keeps is the input itself (as PyTorch does) and per-channel numbers, never
more than the NumPy reference's normalised copy of the input.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..core import jit

SUMS = {"reassoc", "contract"}  # lets the row sums vectorise; no NaN or inf assumptions


def layout(x: np.ndarray) -> bool | None:
    """True for channel-major memory, False for C-contiguous, None when it must be copied."""
    if x.flags.c_contiguous:
        return False
    return True if np.swapaxes(x, 0, 1).flags.c_contiguous else None


def as_rows(a: np.ndarray, channel_major: bool) -> np.ndarray:
    """``a`` (N, C, ...) as the 3-D C-contiguous array of its layout (a copy only if needed)."""
    n, c = a.shape[:2]
    if channel_major:
        return np.ascontiguousarray(np.swapaxes(a, 0, 1)).reshape(c, n, -1)  # (C, N, S)
    return np.ascontiguousarray(a).reshape(n, c, -1)  # (N, C, S)


def from_rows(rows: np.ndarray, shape: tuple[int, ...], channel_major: bool) -> np.ndarray:
    """The (N, C, ...) view of a 3-D result of :func:`as_rows`'s layout."""
    if channel_major:
        return np.swapaxes(rows.reshape((shape[1], shape[0]) + shape[2:]), 0, 1)  # (N, C, ...)
    return rows.reshape(shape)


@jit.kernel(parallel=True, fastmath=SUMS)
def moments(x, channel_major):
    """Per-channel mean and biased variance (float64) of rows ``x`` in one pass."""
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    count = samples * x.shape[2]
    mean, var = np.empty(channels), np.empty(channels)
    for c in prange(channels):
        k = np.float64(x[c, 0, 0] if channel_major else x[0, c, 0])
        s, ss = 0.0, 0.0
        for n in range(samples):
            row = x[c, n] if channel_major else x[n, c]
            for i in range(row.size):
                d = np.float64(row[i]) - k
                s += d
                ss += d * d
        m = s / count
        v = ss / count - m * m
        if v < 0:  # rounding; NaN stays NaN
            v = 0.0
        mean[c], var[c] = k + m, v
    return mean, var


@jit.kernel(parallel=True)
def scale_shift(x, scale, shift, channel_major, out):
    """``out = x · scale[c] + shift[c]`` per channel, in the data's dtype."""
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    for c in prange(channels):
        a, b = scale[c], shift[c]
        for n in range(samples):
            row = x[c, n] if channel_major else x[n, c]
            row_out = out[c, n] if channel_major else out[n, c]
            for i in range(row.size):
                row_out[i] = row[i] * a + b


@jit.kernel(parallel=True, fastmath=SUMS)
def grad_sums(g, x, mean, channel_major):
    """Per-channel ``Σ g`` and ``Σ g·(x − mean)`` (float64), in one pass over both."""
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    sum_g, sum_gx = np.empty(channels), np.empty(channels)
    for c in prange(channels):
        m = mean[c]
        s, t = 0.0, 0.0
        for n in range(samples):
            row_g = g[c, n] if channel_major else g[n, c]
            row_x = x[c, n] if channel_major else x[n, c]
            for i in range(row_x.size):
                gi = np.float64(row_g[i])
                s += gi
                t += gi * (np.float64(row_x[i]) - m)
        sum_g[c], sum_gx[c] = s, t
    return sum_g, sum_gx


@jit.kernel(parallel=True)
def grad_input(g, x, mean, a, k, d, channel_major, out):
    """``out = a·g + k·(x − mean) + d`` per channel: the training input gradient, one pass."""
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    for c in prange(channels):
        m, ac, kc, dc = mean[c], a[c], k[c], d[c]
        for n in range(samples):
            row_g = g[c, n] if channel_major else g[n, c]
            row_x = x[c, n] if channel_major else x[n, c]
            row_out = out[c, n] if channel_major else out[n, c]
            for i in range(row_x.size):
                row_out[i] = ac * row_g[i] + kc * (row_x[i] - m) + dc


def supports(x: np.ndarray) -> bool:
    """Whether the compiled kernels take this input (float32/float64, not empty)."""
    return x.dtype in (np.float32, np.float64) and x.size > 0


def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
    """:class:`norm.BatchNorm`'s forward: same results, running statistics updated alike."""
    dtype, channels = x.dtype, x.shape[1]
    channel_major = bool(layout(x))
    rows = as_rows(x, channel_major)
    if training:
        mean64, var64 = moments(rows, channel_major)
        mean, var = mean64.astype(dtype), var64.astype(dtype)
        if running_mean is not None:
            count = x.size // channels
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (count / max(count - 1, 1))
    else:
        mean, var = np.array(running_mean, dtype), np.array(running_var, dtype)
    inv_std = (1 / np.sqrt(var + eps)).astype(dtype, copy=False)
    scale = inv_std if weight is None else (inv_std * weight).astype(dtype, copy=False)
    shift = -mean * scale if bias is None else (bias - mean * scale).astype(dtype, copy=False)
    out = np.empty_like(rows)
    scale_shift(rows, scale, shift, channel_major, out)
    if any(ctx.needs_input_grad):
        ctx.rows, ctx.mean, ctx.inv_std, ctx.weight = rows, mean, inv_std, weight
        ctx.channel_major, ctx.training = channel_major, training
    return from_rows(out, x.shape, channel_major)


def backward(ctx, g):
    """:class:`norm.BatchNorm`'s backward: two passes in training (sums, then the input's)."""
    rows, mean, inv_std, channel_major = ctx.rows, ctx.mean, ctx.inv_std, ctx.channel_major
    need_x, need_w, need_b = ctx.needs_input_grad
    dtype = rows.dtype
    g_rows = as_rows(g.astype(dtype, copy=False), channel_major)
    weight = np.ones_like(inv_std) if ctx.weight is None else ctx.weight
    a = (weight * inv_std).astype(dtype, copy=False)
    gw = gb = gx = None
    if need_w or need_b or (need_x and ctx.training):
        sum_g, sum_gx = grad_sums(g_rows, rows, mean.astype(np.float64), channel_major)
        gw = (sum_gx * inv_std).astype(dtype) if need_w else None
        gb = sum_g.astype(dtype) if need_b else None
    if need_x:
        out = np.empty_like(rows)
        if ctx.training:  # the batch statistics depend on x too
            count = rows.size // len(mean)
            a64 = a.astype(np.float64)
            k = (-a64 * inv_std * inv_std * sum_gx / count).astype(dtype)
            d = (-a64 * sum_g / count).astype(dtype)
            grad_input(g_rows, rows, mean, a, k, d, channel_major, out)
        else:
            scale_shift(g_rows, a, np.zeros_like(a), channel_major, out)
        gx = from_rows(out, g.shape, channel_major)
    return gx, gw, gb
