"""Compiled twins of the fused activations in ``fused.py``: the ReLU inside the neighbour's
kernel, for the layouts and windows the benchmark networks run.

- ReLU → 2x2 max pooling at stride 2 (:func:`relu_max_pool`): :func:`pool_compiled.max_pool_halve`'s
  pass with the maximum clamped before it is written; its backward scatters a window's
  gradient to the arg-max only where the pooled output is not ≤ 0.
- Batch norm in training → ReLU on channel-major memory (:func:`batch_norm_relu`):
  :func:`norm_compiled.normalise_channels`' pass, a channel per task, clamping as it writes;
  its backward (:func:`relu_channel_gradients`) masks the output gradient inside batch
  norm's sums and input gradient, the mask recomputed from x, which batch norm keeps anyway.
- ReLU on the output of batch norm in training, run as two ops (a model's own ``forward``):
  the ReLU's backward inside batch norm's (:func:`relu_after_batch_norm_grad`), with the
  ReLU's own mask, when the backward pass finds nothing else needs the gradient between.
- ReLU whose output gradient comes in two parts (a residual block's output feeds the next
  block's convolution and its shortcut): the two added inside ReLU's backward pass
  (:func:`relu_grad_of_sum`), the sum never written.

Planes, rows and layouts are those of ``pool_compiled.py`` and ``norm_compiled.py``, whose
helpers this module uses; every result comes back in the input's layout.
"""

from __future__ import annotations

import numba
import numpy as np

from ..core import jit, team
from ..core.team import claim
from . import pool_compiled
from .norm_compiled import (
    as_rows,
    by_channels,
    by_channels_backward,
    from_rows,
    gradient_terms,
    layout,
    scale_shift_of,
    supports,
    update_running,
)
from .pool_compiled import flat, planes, view

# sums may be reordered (vectorised), but no multiply and add fused: the forward's and the
# backward's ``x · scale + shift`` must round alike, bit for bit (ReLU's mask)
REORDER = {"reassoc"}

# ---- ReLU → max pooling

halving = pool_compiled.halving  # the windows these kernels take: 2x2 at stride 2, inside


def relu_max_pool(x: np.ndarray, out_size, track: bool = True):
    """ReLU of the 2x2 window maxima (N, C, OH, OW) in x's layout, the arg-max offset
    (p·2 + q) per output (None without ``track``), and whether the planes are channel-major."""
    xs, channel_major = planes(x)
    y = np.empty(xs.shape[:2] + tuple(out_size), xs.dtype)  # (A, B, OH, OW)
    index = np.empty(y.shape, np.uint8) if track else None
    pool_compiled.halve(xs, y, index, xs.dtype.type(0))
    return view(y, channel_major), index, channel_major


def relu_max_pool_grad(gy, y, index, channel_major: bool, size):
    """The input gradient (N, C, H, W) in the forward input's layout: each output gradient
    onto its window's arg-max where the output y is not ≤ 0, 0 everywhere else."""
    gys = gy.transpose(1, 0, 2, 3) if channel_major else gy  # (A, B, OH, OW), a view
    ys = y.transpose(1, 0, 2, 3) if channel_major else y  # (A, B, OH, OW), its memory
    gx = np.empty(gys.shape[:2] + tuple(size), gys.dtype)  # (A, B, H, W)
    stack = flat(gx)
    args = flat(gys), flat(ys), flat(index), stack, gx.dtype.type(0)
    unit = stack.shape[1] * stack.shape[2]
    team.run(relu_max_pool_halve_backward, args, stack.shape[0], unit=unit)
    return view(gx, channel_major)


@jit.kernel()
def relu_max_pool_halve_backward(gy, y, index, gx, zero, control):
    """gx = gy sent to each passing window's arg-max cell; each plane zeroed first, then
    scattered while in cache (as :func:`pool_compiled.max_pool_backward`: faster than
    writing every cell once). A window that does not pass writes ``zero``: a select, where a
    branch on random data mispredicts half the time. The gradient is read whatever the
    window: read only where it passed, the select had compiled to that branch (one thread,
    CPU time, gx 256x32x28x28, Zen 3: 14.3 ms, against 5.4 read first)."""
    oh, ow = gy.shape[1], gy.shape[2]
    done = 0
    start, stop = claim(control, gx.shape[0])
    while start < stop:
        for plane in range(start, stop):
            gx[plane] = 0
            for i in range(oh):
                y_row, gy_row, index_row = y[plane, i], gy[plane, i], index[plane, i]
                for j in range(ow):
                    k, g = index_row[j], gy_row[j]
                    cell = zero if y_row[j] <= 0 else g
                    gx[plane, 2 * i + k // 2, 2 * j + k % 2] = cell
        done += stop - start
        start, stop = claim(control, gx.shape[0])
    return done


# ---- batch norm → ReLU


def normalises(x: np.ndarray, training: bool) -> bool:
    """Whether :func:`batch_norm_relu` takes this input: training, on channel-major memory."""
    return training and supports(x) and layout(x) is True


def batch_norm_relu(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
    """relu(batch norm in training) of channel-major x, one pass per channel, with the
    statistics and running ones of :func:`norm_compiled.forward`. What the backward keeps is
    x (as batch norm's) and per-channel numbers: it recomputes ReLU's mask from x."""
    dtype, channels = x.dtype, x.shape[1]
    rows = as_rows(x, True)  # (C, N, S), x's memory
    ones = np.ones(channels, dtype) if weight is None else np.ascontiguousarray(weight, dtype)
    zeros = np.zeros(channels, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    out, stats = np.empty_like(rows), np.empty((2, channels))
    affine = np.empty((2, channels), dtype)
    args = (rows, ones, zeros, np.array([eps], dtype), out, stats, affine)
    team.run(normalise_relu_channels, args, channels, unit=rows[0].size)
    mean, var = stats[0].astype(dtype), stats[1].astype(dtype)
    if running_mean is not None:
        update_running(running_mean, running_var, mean, var, momentum, x.size // channels)
    if any(ctx.needs_input_grad):
        inv_std = (1 / np.sqrt(var + eps)).astype(dtype, copy=False)
        ctx.rows, ctx.mean, ctx.inv_std, ctx.weight = rows, mean, inv_std, weight
        ctx.affine = affine
    return from_rows(out, x.shape, True)


@jit.kernel(fastmath=REORDER)
def normalise_relu_channels(x, weight, bias, eps, out, stats, affine, control):
    """:func:`norm_compiled.normalise_channels` with ``out = max(x · scale + shift, 0)``
    (NaN stays NaN): the same moments, scale and shift (into ``affine`` (2, C)), computed
    alike. ``x · scale + shift`` is rounded twice, never fused into one multiply-add, so
    that :func:`relu_channel_gradients` computes the same value from x for ReLU's mask."""
    zero = np.zeros(1, x.dtype)[0]
    done = 0
    start, stop = claim(control, x.shape[0])
    while start < stop:
        for c in range(start, stop):
            p, q = scale_shift_of(x, c, True, weight, bias, eps, stats)
            affine[0, c], affine[1, c] = p, q
            for b in range(x.shape[1]):
                for i in range(x.shape[2]):
                    y = x[c, b, i] * p + q
                    out[c, b, i] = zero if y <= 0 else y
        done += stop - start
        start, stop = claim(control, x.shape[0])
    return done


def batch_norm_relu_grad(ctx, g, g2=None):
    """Gradients (x, weight, bias) of relu(batch norm in training) on channel-major rows:
    the output gradient masked inside one pass per channel, the mask recomputed from x.
    ``g2``: a second part of the output gradient, added inside the pass (the walk's
    :func:`autograd.register_summed_backward`, through ``fused.py``)."""
    rows, mean, inv_std = ctx.rows, ctx.mean, ctx.inv_std
    _, need_w, need_b = ctx.needs_input_grad
    dtype = rows.dtype
    g_run, g_steps = run_of(g.astype(dtype, copy=False).transpose(1, 0, 2, 3))
    g2_run = g2_steps = None
    if g2 is not None:
        g2_run, g2_steps = run_of(g2.astype(dtype, copy=False).transpose(1, 0, 2, 3))
    weight = np.ones_like(inv_std) if ctx.weight is None else ctx.weight
    a = (weight * inv_std).astype(dtype, copy=False)
    out, sums = np.empty_like(rows), np.empty((2, len(mean)))
    merge = g_steps[2] == g.shape[3] and (g2 is None or g2_steps[2] == g.shape[3])  # rows
    width = g.shape[2] * g.shape[3] if merge else g.shape[3]  # whole planes when rows merge
    args = (g_run, g_steps, g2_run, g2_steps, width, rows, ctx.affine, mean, a, inv_std, out, sums)
    team.run(relu_channel_gradients, args, len(mean), unit=rows[0].size)
    gw = (sums[1] * inv_std).astype(dtype) if need_w else None
    gb = sums[0].astype(dtype) if need_b else None
    return from_rows(out, g.shape, True), gw, gb


def run_of(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, N, H, W) planes as one run of memory (1-D) and the element steps of C, N and H in
    it: read in place when its rows are unit-stride runs (a convolution's input gradient
    with its padding cut off is), else copied first. Copying it into x's layout, as batch
    norm's backward does, took 40% of this op's time in the MobileNet-like net's step."""
    item = planes.itemsize
    steps = np.array(planes.strides) // item
    if (
        planes.strides[3] != item
        or min(planes.strides) < 0
        or (steps * item != planes.strides).any()
    ):
        planes = np.ascontiguousarray(planes)
        steps = np.array(planes.strides) // item
    span = 1 + int(np.dot(np.array(planes.shape) - 1, steps))  # from the first element to the last
    run = np.lib.stride_tricks.as_strided(planes, shape=(span,), strides=(item,), writeable=False)
    return run, steps[:3].astype(np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def row_of(run, steps, c, b, h):
    """Row (c, b, h) of a run of memory and its steps; None for no run (compiled away)."""
    if run is None:
        return None
    return run[c * steps[0] + b * steps[1] + h * steps[2] :]


@numba.njit(cache=True, nogil=True, inline="always")
def part_sum(row, row2, i):
    """``row[i]``, plus ``row2[i]`` when there is a second row (the sum in the data's dtype,
    as the walk would add the two parts)."""
    if row2 is None:
        return row[i]
    return row[i] + row2[i]


@jit.kernel(fastmath=REORDER)
def relu_channel_gradients(
    g, steps, g2, steps2, width, x, affine, mean, a, inv_std, out, sums, control
):
    """:func:`norm_compiled.channel_gradients` of ``g`` (plus ``g2``, or None) where the
    forward's output ``x · scale + shift`` is not ≤ 0 and 0 elsewhere (ReLU's gradient,
    never 0·g); the output recomputed from x as :func:`normalise_relu_channels` computed it.
    g is a run of memory whose row (c, n, h) of ``width`` values starts at c·steps[0] +
    n·steps[1] + h·steps[2] (a plane is one row where its rows are contiguous); g2 alike.
    The first pass writes the masked sum into ``out``; the second reads it back in cache,
    contiguous, rather than g's and g2's rows and the mask again (10-25% faster)."""
    count = x.shape[1] * x.shape[2]
    height = x.shape[2] // width
    zero = np.zeros(1, x.dtype)[0]
    done = 0
    start, stop = claim(control, x.shape[0])
    while start < stop:
        for c in range(start, stop):
            m64, p, q = np.float64(mean[c]), affine[0, c], affine[1, c]
            sum_g, sum_gx = 0.0, 0.0
            for b in range(x.shape[1]):
                s, t = 0.0, 0.0
                for h in range(height):
                    g_row, g2_row = row_of(g, steps, c, b, h), row_of(g2, steps2, c, b, h)
                    x_row, out_row = x[c, b, h * width :], out[c, b, h * width :]
                    for i in range(width):
                        xi = x_row[i]
                        gm = zero if xi * p + q <= 0 else part_sum(g_row, g2_row, i)
                        out_row[i] = gm
                        gi = np.float64(gm)
                        s += gi
                        t += gi * (np.float64(xi) - m64)
                sum_g += s
                sum_gx += t
            sums[0, c], sums[1, c] = sum_g, sum_gx
            kc, dc = gradient_terms(a, inv_std, c, sum_g, sum_gx, count, x)
            ac, m = a[c], mean[c]
            for b in range(x.shape[1]):
                x_row, out_row = x[c, b], out[c, b]
                for i in range(x_row.shape[0]):
                    out_row[i] = ac * out_row[i] + kc * (x_row[i] - m) + dc
        done += stop - start
        start, stop = claim(control, x.shape[0])
    return done


def relu_after_batch_norm_grad(relu_ctx, norm_ctx, g):
    """Gradients (x, weight, bias) of ``relu(batch_norm(x))`` run as two ops, from the ReLU's
    output gradient g: :func:`norm_compiled.channel_gradients` with the ReLU's mask, so the
    ReLU's gradient (a pass that writes one array and the next reads) is never made. None
    where either op ran other kernels than the two this combines."""
    if relu_ctx.fast is None or relu_ctx.passes is None or norm_ctx.fast is None:
        return None
    rows, channel_major = norm_ctx.rows, norm_ctx.channel_major
    if not (norm_ctx.needs_input_grad[0] and norm_ctx.training and by_channels(rows)):
        return None
    order = relu_ctx.flat.order  # the mask's memory order must be the rows'
    if order[:2] != ((1, 0) if channel_major else (0, 1)) or list(order[2:]) != sorted(order[2:]):
        return None
    return by_channels_backward(norm_ctx, g, relu_ctx.passes.reshape(rows.shape))


def relu_grad_of_sum(ctx, g1: np.ndarray, g2: np.ndarray):
    """ReLU's input gradient for the output gradient ``g1 + g2``, in one pass over both
    (:func:`select_sum`): the values of summing them first, as the walk would, then ReLU's
    backward. The parts may be views with gaps between rows (a convolution's input gradient
    inside its padding): each is read in place as a run of memory (:func:`run_of`). None
    unless ReLU ran its compiled forward on a 4-D input and both parts are of one float
    dtype."""
    if ctx.fast is None or ctx.passes is None or len(ctx.flat.order) != 4:
        return None
    if g1.dtype != g2.dtype or g1.dtype not in (np.float32, np.float64):
        return None
    (a, a_steps), (b, b_steps) = (run_of(g.transpose(ctx.flat.order)) for g in (g1, g2))
    out = np.empty(ctx.passes.shape, g1.dtype)
    shape = np.array(ctx.flat.shape, np.int64)  # (P, Q, R, S): the mask's memory order
    args = (a, a_steps, b, b_steps, shape, ctx.passes, out, g1.dtype.type(0))
    team.run(select_sum, args, int(shape[0] * shape[1]), unit=int(shape[2] * shape[3]))
    return ctx.flat.back(out)


@jit.kernel()
def select_sum(a, a_steps, b, b_steps, shape, mask, out, zero, control):
    """``out = a + b`` where mask, else 0: ReLU's backward of a gradient in two parts. a and
    b are runs of memory whose row (p, q, r) of ``shape[3]`` values starts at
    p·steps[0] + q·steps[1] + r·steps[2]; mask and out are flat in (P, Q, R, S) order."""
    planes, rows, width = shape[1], shape[2], shape[3]
    done = 0
    start, stop = claim(control, shape[0] * planes)
    while start < stop:
        for task in range(start, stop):
            p, q = task // planes, task % planes
            for r in range(rows):
                # rows as slices, indexed from 0 up: no index is negative, so LLVM vectorises
                ra = a[p * a_steps[0] + q * a_steps[1] + r * a_steps[2] :]
                rb = b[p * b_steps[0] + q * b_steps[1] + r * b_steps[2] :]
                at = (task * rows + r) * width
                passes, row = mask[at:], out[at:]
                for s in range(width):
                    # read whatever the mask (activation_compiled.select_backward)
                    total = ra[s] + rb[s]
                    row[s] = total if passes[s] else zero
        done += stop - start
        start, stop = claim(control, shape[0] * planes)
    return done
