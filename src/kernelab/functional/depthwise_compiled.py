"""Depthwise convolution (one input channel per group) as compiled loops: the twin of
``conv_algorithms.Depthwise``.

Output channel o = c·M + m reads input channel c alone (M = C_out / C_in, the channel
multiplier), so every (channel, sample) pair is an independent little 2-D correlation: the
loops run in parallel over those pairs and, inside, along an output row — the innermost loop,
which LLVM vectorises — for each kernel offset (p, q)::

    y[o, n, i, j]  = b[o] + Σ_{p,q} w[o, 0, p, q] · xp[c, n, i·sh + p·dh, j·sw + q·dw]
    gxp[c, n, i·sh + p·dh, j·sw + q·dw] += Σ_m w[o, 0, p, q] · gy[o, n, i, j]
    gw[o, 0, p, q] = Σ_{n,i,j} gy[o, n, i, j] · xp[c, n, i·sh + p·dh, j·sw + q·dw]

with o = c·M + m.

The kernel gradient is a sum over samples, which the parallel pairs would race on: each pair
writes its own partial sums (C_in, N, M, kH, kW), a few kilobytes, that NumPy adds up. Inside a
pair the sums are kept per output column (the row loop stays a vectorised multiply-add, no
floating-point reduction to reorder) and folded at the end.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..core import jit
from ..core.team import claim
from . import conv_compiled
from .conv_algorithms import contiguous
from .geometry import ConvGeometry

# Sums may be reordered (vectorised) and multiply-adds fused; NaN and inf keep their meaning.
FLAGS = {"reassoc", "contract"}
SAMPLES = 8  # samples per parallel task: the task's scratch row is allocated once for them
# Loops that the kernels below call (and LLVM inlines): plain numba functions, as a kernel
# may only call those.
inner = njit(cache=True, nogil=True, error_model="numpy", fastmath=FLAGS)


@jit.kernel()
def depthwise_forward(xp, taps, bias, stride, dilation, y, control):
    """y (C_in, M, N, OH, OW) from xp (C_in, N, Hp, Wp), taps (C_in, M, kH, kW), bias (C_in, M)."""
    c_in, n = xp.shape[0], xp.shape[1]
    mult, kh, kw = taps.shape[1], taps.shape[2], taps.shape[3]
    oh, ow = y.shape[3], y.shape[4]
    (sh, sw), (dh, dw) = stride, dilation
    done = 0
    lo, hi = claim(control, c_in * n)
    while lo < hi:
        for pair in range(lo, hi):
            c, s = pair // n, pair % n
            for m in range(mult):
                for i in range(oh):
                    for j in range(ow):
                        y[c, m, s, i, j] = bias[c, m]
                    for p in range(kh):
                        r = i * sh + p * dh
                        for q in range(kw):
                            t = taps[c, m, p, q]
                            for j in range(ow):
                                y[c, m, s, i, j] += t * xp[c, s, r, j * sw + q * dw]
        done += hi - lo
        lo, hi = claim(control, c_in * n)
    return done


@jit.kernel()
def depthwise_backward(xp, taps, gy, stride, dilation, need_x, need_w, gxp, partial, control):
    """gxp (C_in, N, Hp, Wp) and the per-sample kernel gradients partial (C_in, N, M, kH, kW).

    gy (C_in, M, N, OH, OW); gxp is written only when ``need_x``, partial when ``need_w``.
    """
    c_in, n = xp.shape[0], xp.shape[1]
    mult, kh, kw = taps.shape[1], taps.shape[2], taps.shape[3]
    oh, ow = gy.shape[3], gy.shape[4]
    (sh, sw), (dh, dw) = stride, dilation
    done = 0
    lo, hi = claim(control, c_in * n)
    while lo < hi:
        for pair in range(lo, hi):
            c, s = pair // n, pair % n
            if need_x:
                gxp[c, s] = 0
            acc = np.zeros((mult, kh, kw, ow), xp.dtype)  # the kernel gradient, per output column
            for i in range(oh):
                for p in range(kh):
                    r = i * sh + p * dh
                    for q in range(kw):
                        for m in range(mult):
                            if need_x:
                                t = taps[c, m, p, q]
                                for j in range(ow):
                                    gxp[c, s, r, j * sw + q * dw] += t * gy[c, m, s, i, j]
                            if need_w:
                                for j in range(ow):
                                    x = xp[c, s, r, j * sw + q * dw]
                                    acc[m, p, q, j] += gy[c, m, s, i, j] * x
            if need_w:
                for m in range(mult):
                    for p in range(kh):
                        for q in range(kw):
                            partial[c, s, m, p, q] = acc[m, p, q].sum()
        done += hi - lo
        lo, hi = claim(control, c_in * n)
    return done


@inner
def correlate_run(dst, src, taps, dh, dw, wp):
    """dst[k] += Σ_{p,q} taps[p, q] · src[p·dh·Wp + q·dw + k] for every k of dst.

    Three kernel columns per pass over dst: three products per load and store of dst. Each
    shifted run of src is a slice indexed from 0: an index ``base + k`` would carry numba's
    negative-index wraparound into the loop, which LLVM then does not vectorise (4x slower).
    """
    kh, kw, run = taps.shape[0], taps.shape[1], dst.shape[0]
    for p in range(kh):
        q = 0
        while q + 3 <= kw:
            base, t0, t1, t2 = p * dh * wp + q * dw, taps[p, q], taps[p, q + 1], taps[p, q + 2]
            a, b = src[base : base + run], src[base + dw : base + dw + run]
            c = src[base + 2 * dw : base + 2 * dw + run]
            for k in range(run):
                dst[k] += t0 * a[k] + t1 * b[k] + t2 * c[k]
            q += 3
        for r in range(q, kw):
            base, t = p * dh * wp + r * dw, taps[p, r]
            a = src[base : base + run]
            for k in range(run):
                dst[k] += t * a[k]


@inner
def correlate_nine(dst, src, taps, dh, dw, wp):
    """correlate_run for a 3x3 kernel: the nine products in one pass over dst, one load and
    store of dst per nine multiply-adds instead of per three."""
    run, r1, r2 = dst.shape[0], dh * wp, 2 * dh * wp
    a0, a1, a2 = src[:run], src[dw : dw + run], src[2 * dw : 2 * dw + run]
    b0, b1 = src[r1 : r1 + run], src[r1 + dw : r1 + dw + run]
    b2, c0 = src[r1 + 2 * dw : r1 + 2 * dw + run], src[r2 : r2 + run]
    c1, c2 = src[r2 + dw : r2 + dw + run], src[r2 + 2 * dw : r2 + 2 * dw + run]
    t00, t01, t02 = taps[0, 0], taps[0, 1], taps[0, 2]
    t10, t11, t12 = taps[1, 0], taps[1, 1], taps[1, 2]
    t20, t21, t22 = taps[2, 0], taps[2, 1], taps[2, 2]
    for k in range(run):
        top = t00 * a0[k] + t01 * a1[k] + t02 * a2[k]
        middle = t10 * b0[k] + t11 * b1[k] + t12 * b2[k]
        dst[k] += top + middle + (t20 * c0[k] + t21 * c1[k] + t22 * c2[k])


@inner
def correlate(dst, src, taps, dh, dw, wp):
    """dst[k] += Σ_{p,q} taps[p, q] · src[p·dh·Wp + q·dw + k]: :func:`correlate_nine` for a
    3x3 kernel, else :func:`correlate_run`."""
    if taps.shape[0] == 3 and taps.shape[1] == 3:
        correlate_nine(dst, src, taps, dh, dw, wp)
    else:
        correlate_run(dst, src, taps, dh, dw, wp)


@inner
def correlate_sums(out, g, src, dh, dw, wp):
    """out[p, q] = Σ_k g[k] · src[p·dh·Wp + q·dw + k] (three kernel columns per pass; the
    shifted runs are slices, as in correlate_run). Each sum starts from its first product,
    so it stays in the arrays' dtype (numba's ``sum`` of float32 is float64: 2x slower)."""
    kh, kw, run = out.shape[0], out.shape[1], g.shape[0]
    for p in range(kh):
        q = 0
        while q + 3 <= kw:
            base = p * dh * wp + q * dw
            a, b = src[base : base + run], src[base + dw : base + dw + run]
            c = src[base + 2 * dw : base + 2 * dw + run]
            s0, s1, s2 = g[0] * a[0], g[0] * b[0], g[0] * c[0]
            for k in range(1, run):
                s0 += g[k] * a[k]
                s1 += g[k] * b[k]
                s2 += g[k] * c[k]
            out[p, q], out[p, q + 1], out[p, q + 2] = s0, s1, s2
            q += 3
        for r in range(q, kw):
            base = p * dh * wp + r * dw
            a = src[base : base + run]
            s0 = g[0] * a[0]
            for k in range(1, run):
                s0 += g[k] * a[k]
            out[p, r] = s0


@inner
def copy_rows(dst, dst_width, src, src_width, rows):
    """dst's rows (``dst_width`` apart, flat) = src's (``src_width`` apart), each as wide as
    the narrower: the first OW columns of a wide run, or a plane into one. A loop over
    each row's slice: an index ``i·width + j`` would carry numba's negative-index
    wraparound (no vectors), and a slice assignment costs about 25 ns a row."""
    width = min(dst_width, src_width)
    for i in range(rows):
        d = dst[i * dst_width : i * dst_width + width]
        r = src[i * src_width : i * src_width + width]
        for j in range(width):
            d[j] = r[j]


@inner
def total(values):
    """Σ values in their dtype (numba's ``sum`` of float32 is float64), NaN and inf kept."""
    result = values[0]
    for k in range(1, values.shape[0]):
        result += values[k]
    return result


@jit.kernel()
def depthwise_forward_wide(xp, taps, bias, dilation, wp, y, control):
    """Stride 1: y (C_in, M, N, OH·OW) from xp (C_in, N, Hp·Wp), flat runs (see the class)."""
    c_in, n, mult = xp.shape[0], xp.shape[1], taps.shape[1]
    dh, dw = dilation
    ow = wp - dw * (taps.shape[3] - 1)
    oh = y.shape[3] // ow
    blocks = (n + SAMPLES - 1) // SAMPLES
    done = 0
    lo, hi = claim(control, c_in * blocks)
    while lo < hi:
        for task in range(lo, hi):
            c, first = task // blocks, (task % blocks) * SAMPLES
            wide = np.empty((oh - 1) * wp + ow, y.dtype)  # (OH, Wp) flat, the last row cut at OW
            for s in range(first, min(first + SAMPLES, n)):
                for m in range(mult):
                    wide[:] = bias[c, m]
                    correlate(wide, xp[c, s], taps[c, m], dh, dw, wp)
                    copy_rows(y[c, m, s], ow, wide, wp, oh)
        done += hi - lo
        lo, hi = claim(control, c_in * blocks)
    return done


@jit.kernel()
def depthwise_backward_wide(xp, flipped, gy, batch_first, frame, need_x, need_w, gx, sums, control):
    """Stride 1, by flat runs: the input gradient gx (N, C_in, H·W) of the input's pixels
    alone, the per-sample kernel gradients partial (C_in, N, M, kH, kW) and the per-sample
    bias gradients (C_in, N, M); ``sums`` is the pair (partial, bias).

    ``flipped`` (C_in, M, kH, kW) is the kernel rotated 180°; gy is (N, C_out, OH·OW) when
    ``batch_first``, else (C_out, N, OH·OW); ``frame`` is (dH, dW, Wp, top, left, H, W). gx
    is written only when ``need_x``, partial only when ``need_w``.
    """
    partial, bias = sums
    c_in, n, mult = xp.shape[0], xp.shape[1], flipped.shape[1]
    kh, kw, size = flipped.shape[2], flipped.shape[3], xp.shape[2]
    dh, dw, wp, top, left, h, w = frame
    ow = wp - dw * (kw - 1)
    oh = gy.shape[2] // ow
    margin = (kh - 1) * dh * wp + (kw - 1) * dw
    start = top * wp + left  # the input's first pixel in the padded plane
    blocks = (n + SAMPLES - 1) // SAMPLES
    done = 0
    lo, hi = claim(control, c_in * blocks)
    while lo < hi:
        for task in range(lo, hi):
            c, first = task // blocks, (task % blocks) * SAMPLES
            # gy (OH, Wp) flat after `margin` zeros, zero past column OW and to the end
            padded = np.zeros(margin + size, gy.dtype)
            wide = padded[margin : margin + (oh - 1) * wp + ow]
            inside = np.empty((h - 1) * wp + w, gy.dtype)  # gx's rows, Wp apart
            for s in range(first, min(first + SAMPLES, n)):
                inside[:] = 0
                for m in range(mult):
                    o = c * mult + m
                    plane = gy[s, o] if batch_first else gy[o, s]
                    copy_rows(wide, wp, plane, ow, oh)
                    bias[c, s, m] = total(plane)
                    if need_x:  # full correlation with the rotated kernel, the input's pixels
                        correlate(inside, padded[start:], flipped[c, m], dh, dw, wp)
                    if need_w:
                        correlate_sums(partial[c, s, m], wide, xp[c, s], dh, dw, wp)
                if need_x:
                    copy_rows(gx[s, c], w, inside, wp, h)
        done += hi - lo
        lo, hi = claim(control, c_in * blocks)
    return done


class DepthwiseCompiled:
    """Depthwise (or channel-multiplier) convolution through the compiled loops above.

    With stride 1 each kernel offset is one flat run over the output rows as wide as the
    padded input (``run = (OH − 1)·Wp + OW`` pixels, the columns past OW computed and
    dropped): long vectorised loops instead of OH short ones, which matters at 14 or 16
    columns. Other strides loop row by row.

    ``any_layout``: ``Conv2d`` hands the backward the output gradient as it comes (see
    :meth:`backward`).
    """

    any_layout = True

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        c_in, n, hp, wp = xp.shape
        c_out, (oh, ow) = w.shape[0], geometry.output_size(hp, wp, padded=True)
        mult = c_out // c_in
        taps = np.ascontiguousarray(w.reshape(c_in, mult, *w.shape[2:]))  # (C_in, M, kH, kW)
        bias = np.zeros((c_in, mult), xp.dtype) if b is None else b.reshape(c_in, mult)
        bias = np.ascontiguousarray(bias)
        y = np.empty((c_in, mult, n, oh, ow), xp.dtype)
        xc = np.ascontiguousarray(xp)
        if geometry.stride == (1, 1):
            flat = y.reshape(c_in, mult, n, oh * ow)  # (C_in, M, N, OH·OW)
            args = (xc.reshape(c_in, n, hp * wp), taps, bias, geometry.dilation, wp, flat)
            conv_compiled.share(depthwise_forward_wide, args, c_in * -(-n // SAMPLES))
        else:
            args = (xc, taps, bias, geometry.stride, geometry.dilation, y)
            conv_compiled.share(depthwise_forward, args, c_in * n)
        ctx.xp, ctx.w, ctx.geometry = xp, w, geometry
        return y.reshape(c_out, n, oh, ow)

    @staticmethod
    def backward(ctx, gy):
        """gy (C_out, N, OH, OW): channel-major memory or a view of batch-first memory (the
        stride-1 kernels read either in place). With stride 1 the input gradient comes back
        as (C_in, N, H, W), a view of batch-first memory holding the input's pixels alone
        (what the input's own gradient is, with no copy), and the bias gradient in
        ``ctx.bias_gradient``; otherwise as the padded (C_in, N, Hp, Wp)."""
        if ctx.geometry.stride != (1, 1):
            return DepthwiseCompiled.backward_strided(ctx, contiguous(gy))
        xp, w, geometry = ctx.xp, ctx.w, ctx.geometry
        need_x, need_w = bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1])
        c_in, n, hp, wp = xp.shape
        c_out, kh, kw = w.shape[0], w.shape[2], w.shape[3]
        taps = w.reshape(c_in, c_out // c_in, kh, kw)  # (C_in, M, kH, kW)
        batch, pixels = gy.transpose(1, 0, 2, 3), gy.shape[2] * gy.shape[3]  # (N, C_out, OH, OW)
        batch_first = batch.flags.c_contiguous and not gy.flags.c_contiguous
        if batch_first:
            g3 = batch.reshape(n, c_out, pixels)  # (N, C_out, OH·OW)
        else:
            g3 = np.ascontiguousarray(gy).reshape(c_out, n, pixels)  # (C_out, N, OH·OW)
        (top, bottom), (left, right) = geometry.padding
        h, width = hp - top - bottom, wp - left - right
        gx = np.empty((n, c_in, h * width) if need_x else (1, 1, 1), xp.dtype)
        partial = np.empty((c_in, n) + taps.shape[1:] if need_w else (1,) * 5, xp.dtype)
        bias = np.empty((c_in, n, c_out // c_in), xp.dtype)  # (C_in, N, M)
        args = (
            np.ascontiguousarray(xp).reshape(c_in, n, hp * wp),  # (C_in, N, Hp·Wp)
            np.ascontiguousarray(taps[:, :, ::-1, ::-1]),
            g3,
            batch_first,
            (*geometry.dilation, wp, top, left, h, width),
            need_x,
            need_w,
            gx,
            (partial, bias),
        )
        conv_compiled.share(depthwise_backward_wide, args, c_in * -(-n // SAMPLES))
        if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
            ctx.bias_gradient = bias.sum(axis=1).reshape(c_out)
        gw = partial.sum(axis=1).reshape(w.shape) if need_w else None
        # (N, C_in, H·W) → (C_in, N, H, W)
        return (gx.reshape(n, c_in, h, width).transpose(1, 0, 2, 3) if need_x else None), gw

    @staticmethod
    def backward_strided(ctx, gy):
        """The backward of other strides, row by row: gy (C_out, N, OH, OW) C-contiguous."""
        xp, w, geometry = ctx.xp, ctx.w, ctx.geometry
        need_x, need_w = bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1])
        c_in = xp.shape[0]
        mult = w.shape[0] // c_in
        taps = np.ascontiguousarray(w.reshape(c_in, mult, *w.shape[2:]))  # (C_in, M, kH, kW)
        gy5 = gy.reshape(c_in, mult, *gy.shape[1:])  # (C_in, M, N, OH, OW)
        gxp = np.empty(xp.shape if need_x else (1,) * 4, xp.dtype)
        partial = np.empty(  # (C_in, N, M, kH, kW)
            (c_in, xp.shape[1], mult) + w.shape[2:] if need_w else (1,) * 5, xp.dtype
        )
        args = (np.ascontiguousarray(xp), taps, gy5, geometry.stride, geometry.dilation)
        tasks = c_in * xp.shape[1]  # (channel, sample) pairs
        conv_compiled.share(depthwise_backward, (*args, need_x, need_w, gxp, partial), tasks)
        gw = partial.sum(axis=1).reshape(w.shape) if need_w else None
        return (gxp if need_x else None), gw
