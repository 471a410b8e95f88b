"""Compiled twin of batch normalisation (``norm.py``): one pass per statistic, threads per channel.

Every kernel sees a C-contiguous 3-D array in one of two layouts: ``(N, C, S)`` (an ordinary
contiguous input) or, when ``channel_major``, ``(C, N, S)`` — the memory behind the
``(N, C, H, W)`` views that convolutions return. Either way one sample of one channel is a
contiguous row of S values, so a channel-major input is never transposed, and every result
comes back in the input's layout.

In training, each pass that needs per-channel sums first (the forward's normalisation, the
backward's input gradient) runs a channel per task in either layout, both of its passes over
the channel back to back (:func:`normalise_channels`, :func:`channel_gradients`): the second
reads the channel from the core's cache, not from memory. These are team kernels
(``core/team.py``): the calling thread and spinning helpers claim channels. As parallel
launches, which first wake numba's sleeping workers, ResNet-8's batch norms took 5.5 ms a
training step backward and 3.5 forward at two threads; as team kernels 2.7 and 1.8.

Sums are accumulated in float64 whatever the data's dtype. The batch statistics come from one
pass of shifted sums (``Σ(x − k)`` and ``Σ(x − k)²`` with ``k`` the channel's first value), which
keeps the variance exact to float64 rounding unless the mean is vastly larger than the spread.
What the backward keeps is the input itself (as PyTorch does) and per-channel numbers, never
more than the NumPy reference's normalised copy of the input.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..core import jit, team
from ..core.team import claim

SUMS = {"reassoc", "contract"}  # lets the row sums vectorise; no NaN or inf assumptions
CHUNKS = 64  # blocks of the leading axis that threads share out in the reductions


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


@numba.njit(cache=True, nogil=True)
def merge(part):
    """(2, chunks, C) partial sums → (2, C), added in chunk order.

    A plain loop: in a parallel kernel ``part[0, :, c].sum()`` would start threads per channel.
    A numba function rather than a ``jit.kernel``, since kernels call it.
    """
    sums = np.zeros((2, part.shape[2]))
    for j in range(part.shape[1]):
        for c in range(part.shape[2]):
            sums[0, c] += part[0, j, c]
            sums[1, c] += part[1, j, c]
    return sums


@jit.kernel(parallel=True, fastmath=SUMS)
def moments(x, channel_major):
    """Per-channel mean and biased variance (float64) of rows ``x`` in one pass.

    Threads take contiguous blocks of the leading axis (channels or samples) and keep partial
    sums per channel, merged at the end; rows are read in memory order in either layout.
    """
    channels = x.shape[0] if channel_major else x.shape[1]
    shift = np.empty(channels)
    for c in range(channels):
        shift[c] = x[c, 0, 0] if channel_major else x[0, c, 0]
    chunks = min(x.shape[0], CHUNKS)
    part = np.zeros((2, chunks, channels))
    for j in prange(chunks):
        for a in range(j * x.shape[0] // chunks, (j + 1) * x.shape[0] // chunks):
            if x.shape[2] == 1 and not channel_major:  # (N, C): vectorise across channels
                for c in range(channels):
                    d = np.float64(x[a, c, 0]) - shift[c]
                    part[0, j, c] += d
                    part[1, j, c] += d * d
                continue
            for b in range(x.shape[1]):
                c = a if channel_major else b
                k = shift[c]
                s, ss = 0.0, 0.0
                for i in range(x.shape[2]):
                    d = np.float64(x[a, b, i]) - k
                    s += d
                    ss += d * d
                part[0, j, c] += s
                part[1, j, c] += ss
    sums = merge(part)
    count = x.size // channels
    mean, var = np.empty(channels), np.empty(channels)
    for c in range(channels):
        m = sums[0, c] / count
        v = sums[1, c] / count - m * m
        if v < 0:  # rounding; NaN stays NaN
            v = 0.0
        mean[c], var[c] = shift[c] + m, v
    return mean, var


@jit.kernel(parallel=True)
def scale_shift(x, scale, shift, channel_major, out):
    """``out = x · scale[c] + shift[c]`` per channel, in the data's dtype."""
    for a in prange(x.shape[0]):
        if x.shape[2] == 1 and not channel_major:  # (N, C): vectorise across channels
            for c in range(x.shape[1]):
                out[a, c, 0] = x[a, c, 0] * scale[c] + shift[c]
            continue
        for b in range(x.shape[1]):
            c = np.int64(a) if channel_major else b  # a prange index may be unsigned
            p, q = scale[c], shift[c]
            for i in range(x.shape[2]):
                out[a, b, i] = x[a, b, i] * p + q


@jit.kernel()
def scale_shift_rows(x, scale, shift, channel_major, out, control):
    """:func:`scale_shift` as a team pass (``core/team.py``), a row of S values per index:
    the pass is bound by memory, and a parallel launch over a few channels would first wake
    numba's sleeping workers."""
    rows = x.shape[0] * x.shape[1]
    done = 0
    start, stop = claim(control, rows)
    while start < stop:
        for r in range(start, stop):
            a, b = r // x.shape[1], r % x.shape[1]
            c = a if channel_major else b
            p, q = scale[c], shift[c]
            xs, ys = x[a, b], out[a, b]  # contiguous rows indexed from 0: the loop vectorises
            for i in range(xs.size):
                ys[i] = xs[i] * p + q
        done += stop - start
        start, stop = claim(control, rows)
    return done


@jit.kernel()
def affine_parameters(mean, var, weight, bias, eps, scale, shift):
    """Per channel ``scale = weight / √(var + eps)`` and ``shift = bias − mean · scale`` in
    the dtype of ``scale`` (``eps`` one value of it, the statistics cast to it first), as
    :func:`forward`'s NumPy expressions round them: one call where those are ten, each of
    which costs more than the arithmetic (some 3 µs per call between two convolutions)."""
    one = scale.dtype.type(1)
    for c in range(scale.size):
        m, v = scale.dtype.type(mean[c]), scale.dtype.type(var[c])
        p = one / np.sqrt(v + eps) * weight[c]
        scale[c] = p
        shift[c] = bias[c] - m * p


def affine(rows, scale, shift, channel_major: bool, out) -> None:
    """``out = rows · scale[c] + shift[c]``: a team pass over rows of more than one value,
    else :func:`scale_shift`, vectorised across an (N, C) input's channels."""
    if rows.shape[2] == 1:
        scale_shift(rows, scale, shift, channel_major, out)
    else:
        size = rows.shape[0] * rows.shape[1]
        team.run(scale_shift_rows, (rows, scale, shift, channel_major, out), size, rows.shape[2])


@jit.kernel(parallel=True, fastmath=SUMS)
def grad_sums(g, x, mean, channel_major):
    """Per-channel ``Σ g`` and ``Σ g·(x − mean)`` (float64), in one pass over both
    (blocks and partial sums as in :func:`moments`)."""
    channels = x.shape[0] if channel_major else x.shape[1]
    chunks = min(x.shape[0], CHUNKS)
    part = np.zeros((2, chunks, channels))
    for j in prange(chunks):
        for a in range(j * x.shape[0] // chunks, (j + 1) * x.shape[0] // chunks):
            if x.shape[2] == 1 and not channel_major:  # (N, C): vectorise across channels
                for c in range(channels):
                    gi = np.float64(g[a, c, 0])
                    part[0, j, c] += gi
                    part[1, j, c] += gi * (np.float64(x[a, c, 0]) - mean[c])
                continue
            for b in range(x.shape[1]):
                c = a if channel_major else b
                m = mean[c]
                s, t = 0.0, 0.0
                for i in range(x.shape[2]):
                    gi = np.float64(g[a, b, i])
                    s += gi
                    t += gi * (np.float64(x[a, b, i]) - m)
                part[0, j, c] += s
                part[1, j, c] += t
    sums = merge(part)
    return sums[0], sums[1]


@jit.kernel(parallel=True)
def grad_input(g, x, mean, p, k, q, channel_major, out):
    """``out = p·g + k·(x − mean) + q`` per channel: the training input gradient, one pass."""
    for a in prange(x.shape[0]):
        if x.shape[2] == 1 and not channel_major:  # (N, C): vectorise across channels
            for c in range(x.shape[1]):
                out[a, c, 0] = p[c] * g[a, c, 0] + k[c] * (x[a, c, 0] - mean[c]) + q[c]
            continue
        for b in range(x.shape[1]):
            c = np.int64(a) if channel_major else b  # a prange index may be unsigned
            m, pc, kc, qc = mean[c], p[c], k[c], q[c]
            for i in range(x.shape[2]):
                out[a, b, i] = pc * g[a, b, i] + kc * (x[a, b, i] - m) + qc


@numba.njit(cache=True, nogil=True, inline="always")
def gradient_terms(a, inv_std, c, sum_g, sum_gx, count, x):
    """k and d of channel c's input gradient ``a·g + k·(x − mean) + d`` in training, from its
    sums Σg and Σg·(x − mean) over ``count`` values, computed in float64 and rounded to x's
    dtype as :func:`backward` rounds them."""
    a64, s64 = np.float64(a[c]), np.float64(inv_std[c])
    values = np.empty(2, x.dtype)
    values[0] = -a64 * s64 * s64 * sum_gx / count
    values[1] = -a64 * sum_g / count
    return values[0], values[1]


@numba.njit(cache=True, nogil=True, inline="always")
def scale_shift_of(x, c, channel_major, weight, bias, eps, stats):
    """Channel c of rows x: its mean and biased variance (float64, from a shift k, into
    ``stats[:, c]``), and its scale and shift in the data's dtype, as :func:`forward`
    computes them for :func:`scale_shift`. Inlined, so each kernel's fastmath flags hold."""
    samples = x.shape[1] if channel_major else x.shape[0]
    count = samples * x.shape[2]
    k = np.float64(x[c, 0, 0] if channel_major else x[0, c, 0])
    total, squares = 0.0, 0.0
    for b in range(samples):
        row = x[c, b] if channel_major else x[b, c]
        s, ss = 0.0, 0.0
        for i in range(row.shape[0]):
            d = np.float64(row[i]) - k
            s += d
            ss += d * d
        total += s
        squares += ss
    m = total / count
    v = squares / count - m * m
    if v < 0:  # rounding; NaN stays NaN
        v = 0.0
    stats[0, c], stats[1, c] = k + m, v
    values = np.empty(3, x.dtype)  # mean, variance, scale in the data's dtype
    values[0], values[1] = k + m, v
    values[2] = 1  # so that 1 / √(var + eps) is computed in the dtype, as forward does
    values[2] = values[2] / np.sqrt(values[1] + eps[0]) * weight[c]
    p = values[2]
    return p, bias[c] - values[0] * p


@jit.kernel(fastmath=SUMS)
def normalise_channels(x, weight, bias, eps, channel_major, out, stats, control):
    """Training forward of rows x in either layout, a channel per task: its moments (as
    :func:`moments` sums them, into ``stats`` (2, C): mean, biased variance), then
    ``out = x · scale + shift`` while the channel is still in the core's cache.

    A channel (64 samples of 28x28 float32: 200 KB; of a CIFAR layer's 32x32: 256 KB) fits
    the core's cache where the whole layer (6.4 MB) does not: the second pass reads it there
    rather than from memory, and each core streams only its own channels. ``eps`` is one
    value of the data's dtype; the scale and shift are computed in that dtype as
    :func:`forward` computes them for :func:`scale_shift`.
    """
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    done = 0
    start, stop = claim(control, channels)
    while start < stop:
        for c in range(start, stop):
            p, q = scale_shift_of(x, c, channel_major, weight, bias, eps, stats)
            for b in range(samples):
                row = x[c, b] if channel_major else x[b, c]
                dst = out[c, b] if channel_major else out[b, c]
                for i in range(row.shape[0]):
                    dst[i] = row[i] * p + q
        done += stop - start
        start, stop = claim(control, channels)
    return done


@jit.kernel(fastmath=SUMS)
def channel_gradients(g, x, mean, a, inv_std, channel_major, out, sums, mask, control):
    """Training input gradient of rows in either layout, a channel per task: the sums of
    :func:`grad_sums` (into ``sums`` (2, C)), then :func:`grad_input`'s
    ``out = a·g + k·(x − mean) + d`` while the channel is in cache (see
    :func:`normalise_channels`); k and d from the sums as :func:`backward` takes them.

    ``mask`` (rows of bools, or None) takes g where it holds and 0 elsewhere: a ReLU's
    backward on batch norm's output inside this pass (``fused.py``), the same values as the
    ReLU's gradient passed in. The first pass then writes the masked g into ``out``, which the
    second reads back in cache in place of g and the mask (ResNet-8's step: 11% less time in
    this kernel). numba compiles a None mask's branch away."""
    channels = x.shape[0] if channel_major else x.shape[1]
    samples = x.shape[1] if channel_major else x.shape[0]
    count = samples * x.shape[2]
    zero = np.zeros(1, g.dtype)[0]
    done = 0
    start, stop = claim(control, channels)
    while start < stop:
        for c in range(start, stop):
            m64 = np.float64(mean[c])
            sum_g, sum_gx = 0.0, 0.0
            for b in range(samples):
                g_row = g[c, b] if channel_major else g[b, c]
                x_row = x[c, b] if channel_major else x[b, c]
                s, t = 0.0, 0.0
                if mask is None:
                    for i in range(x_row.shape[0]):
                        gi = np.float64(g_row[i])
                        s += gi
                        t += gi * (np.float64(x_row[i]) - m64)
                else:  # the masked gradient kept in out, for the second pass to read in cache
                    m_row = mask[c, b] if channel_major else mask[b, c]
                    dst = out[c, b] if channel_major else out[b, c]
                    for i in range(x_row.shape[0]):
                        # read whatever the mask (activation_compiled.select_backward)
                        g_i = g_row[i]
                        gm = g_i if m_row[i] else zero
                        dst[i] = gm
                        gi = np.float64(gm)
                        s += gi
                        t += gi * (np.float64(x_row[i]) - m64)
                sum_g += s
                sum_gx += t
            sums[0, c], sums[1, c] = sum_g, sum_gx
            kc, dc = gradient_terms(a, inv_std, c, sum_g, sum_gx, count, x)
            ac, m = a[c], mean[c]
            for b in range(samples):
                g_row = g[c, b] if channel_major else g[b, c]
                x_row = x[c, b] if channel_major else x[b, c]
                dst = out[c, b] if channel_major else out[b, c]
                if mask is None:
                    for i in range(x_row.shape[0]):
                        dst[i] = ac * g_row[i] + kc * (x_row[i] - m) + dc
                else:
                    for i in range(x_row.shape[0]):
                        dst[i] = ac * dst[i] + kc * (x_row[i] - m) + dc
        done += stop - start
        start, stop = claim(control, channels)
    return done


def by_channels(rows: np.ndarray) -> bool:
    """Whether the training passes run a channel per task (:func:`normalise_channels`,
    :func:`channel_gradients`): rows of more than one value each. An (N, C) input's channel
    is a column, read an element per row: the blocked passes, vectorised across channels,
    read it in memory order."""
    return rows.shape[2] > 1


def supports(x: np.ndarray) -> bool:
    """Whether the compiled kernels take this input (float32/float64, not empty)."""
    return x.dtype in (np.float32, np.float64) and x.size > 0


def update_running(running_mean, running_var, mean, var, momentum: float, count: int) -> None:
    """The running statistics moved ``momentum`` towards the batch's, in place; the variance
    unbiased over the ``count`` values per channel, as PyTorch keeps it."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (count / max(count - 1, 1))


def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
    """:class:`norm.BatchNorm`'s forward: same results, running statistics updated alike."""
    dtype, channels = x.dtype, x.shape[1]
    channel_major = bool(layout(x))
    rows = as_rows(x, channel_major)
    if not training and not any(ctx.needs_input_grad):
        return inference(x, rows, weight, bias, running_mean, running_var, eps, channel_major)
    if training and by_channels(rows):
        return _forward_by_channels(
            ctx, x, rows, weight, bias, running_mean, running_var, momentum, eps, channel_major
        )
    if training:
        mean64, var64 = moments(rows, channel_major)
        mean, var = mean64.astype(dtype), var64.astype(dtype)
        if running_mean is not None:
            update_running(running_mean, running_var, mean, var, momentum, x.size // channels)
    else:
        mean, var = np.array(running_mean, dtype), np.array(running_var, dtype)
    inv_std = (1 / np.sqrt(var + eps)).astype(dtype, copy=False)
    scale = inv_std if weight is None else (inv_std * weight).astype(dtype, copy=False)
    shift = -mean * scale if bias is None else (bias - mean * scale).astype(dtype, copy=False)
    out = np.empty_like(rows)
    affine(rows, scale, shift, channel_major, out)
    if any(ctx.needs_input_grad):
        ctx.rows, ctx.mean, ctx.inv_std, ctx.weight = rows, mean, inv_std, weight
        ctx.channel_major, ctx.training = channel_major, training
    return from_rows(out, x.shape, channel_major)


def inference(x, rows, weight, bias, running_mean, running_var, eps, channel_major):
    """The evaluation forward when no gradient is wanted: scale and shift from one call
    (:func:`affine_parameters`), then one pass; nothing kept for a backward."""
    dtype, channels = x.dtype, x.shape[1]
    ones = np.ones(channels, dtype) if weight is None else weight
    zeros = np.zeros(channels, dtype) if bias is None else bias
    scale, shift = np.empty(channels, dtype), np.empty(channels, dtype)
    affine_parameters(running_mean, running_var, ones, zeros, dtype.type(eps), scale, shift)
    out = np.empty_like(rows)
    affine(rows, scale, shift, channel_major, out)
    return from_rows(out, x.shape, channel_major)


def _forward_by_channels(
    ctx, x, rows, weight, bias, running_mean, running_var, momentum, eps, channel_major
):
    """The training forward of rows in either layout, one pass per channel
    (:func:`normalise_channels`): the same statistics and results as the two passes."""
    dtype, channels = x.dtype, x.shape[1]
    ones = np.ones(channels, dtype) if weight is None else np.ascontiguousarray(weight, dtype)
    zeros = np.zeros(channels, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    out, stats = np.empty_like(rows), np.empty((2, channels))
    args = (rows, ones, zeros, np.array([eps], dtype), channel_major, out, stats)
    team.run(normalise_channels, args, channels, unit=rows.size // channels)
    mean, var = stats[0].astype(dtype), stats[1].astype(dtype)
    if running_mean is not None:
        update_running(running_mean, running_var, mean, var, momentum, x.size // channels)
    if any(ctx.needs_input_grad):
        inv_std = (1 / np.sqrt(var + eps)).astype(dtype, copy=False)
        ctx.rows, ctx.mean, ctx.inv_std, ctx.weight = rows, mean, inv_std, weight
        ctx.channel_major, ctx.training = channel_major, True
    return from_rows(out, x.shape, channel_major)


def by_channels_backward(ctx, g, mask=None):
    """The training backward of :func:`backward` in one pass per channel, g masked by
    ``mask`` (rows of bools in the input's layout) when given."""
    rows, mean, inv_std, channel_major = ctx.rows, ctx.mean, ctx.inv_std, ctx.channel_major
    _, need_w, need_b = ctx.needs_input_grad
    dtype = rows.dtype
    g_rows = as_rows(g.astype(dtype, copy=False), channel_major)
    weight = np.ones_like(inv_std) if ctx.weight is None else ctx.weight
    a = (weight * inv_std).astype(dtype, copy=False)
    out, sums = np.empty_like(rows), np.empty((2, len(mean)))
    args = (g_rows, rows, mean, a, inv_std, channel_major, out, sums, mask)
    team.run(channel_gradients, args, len(mean), unit=rows.size // len(mean))
    gw = (sums[1] * inv_std).astype(dtype) if need_w else None
    gb = sums[0].astype(dtype) if need_b else None
    return from_rows(out, g.shape, channel_major), gw, gb


def backward(ctx, g):
    """:class:`norm.BatchNorm`'s backward: two passes in training (sums, then the input's)."""
    rows, mean, inv_std, channel_major = ctx.rows, ctx.mean, ctx.inv_std, ctx.channel_major
    need_x, need_w, need_b = ctx.needs_input_grad
    if need_x and ctx.training and by_channels(rows):  # sums and input gradient per channel
        return by_channels_backward(ctx, g)
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
            affine(g_rows, a, np.zeros_like(a), channel_major, out)
        gx = from_rows(out, g.shape, channel_major)
    return gx, gw, gb
