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
from numba import njit, prange

from ..core import jit
from .geometry import ConvGeometry

# Sums may be reordered (vectorised) and multiply-adds fused; NaN and inf keep their meaning.
FLAGS = {"reassoc", "contract"}
SAMPLES = 8  # samples per parallel task: the task's scratch row is allocated once for them
# Loops that the kernels below call (and LLVM inlines): plain numba functions, as a kernel
# may only call those.
inner = njit(cache=True, nogil=True, error_model="numpy", fastmath=FLAGS)


@jit.kernel(parallel=True)
def depthwise_forward(xp, taps, bias, stride, dilation, y):
    """y (C_in, M, N, OH, OW) from xp (C_in, N, Hp, Wp), taps (C_in, M, kH, kW), bias (C_in, M)."""
    c_in, n = xp.shape[0], xp.shape[1]
    mult, kh, kw = taps.shape[1], taps.shape[2], taps.shape[3]
    oh, ow = y.shape[3], y.shape[4]
    (sh, sw), (dh, dw) = stride, dilation
    for pair in prange(c_in * n):
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


@jit.kernel(parallel=True)
def depthwise_backward(xp, taps, gy, stride, dilation, need_x, need_w, gxp, partial):
    """gxp (C_in, N, Hp, Wp) and the per-sample kernel gradients partial (C_in, N, M, kH, kW).

    gy (C_in, M, N, OH, OW); gxp is written only when ``need_x``, partial when ``need_w``.
    """
    c_in, n = xp.shape[0], xp.shape[1]
    mult, kh, kw = taps.shape[1], taps.shape[2], taps.shape[3]
    oh, ow = gy.shape[3], gy.shape[4]
    (sh, sw), (dh, dw) = stride, dilation
    for pair in prange(c_in * n):
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
                                acc[m, p, q, j] += gy[c, m, s, i, j] * xp[c, s, r, j * sw + q * dw]
        if need_w:
            for m in range(mult):
                for p in range(kh):
                    for q in range(kw):
                        partial[c, s, m, p, q] = acc[m, p, q].sum()


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
def correlate_sums(out, g, src, dh, dw, wp):
    """out[p, q] = Σ_k g[k] · src[p·dh·Wp + q·dw + k] (three kernel columns per pass; the
    shifted runs are slices, as in correlate_run)."""
    kh, kw, run = out.shape[0], out.shape[1], g.shape[0]
    zero = g[:1].sum() * 0  # 0 in the arrays' dtype, so float32 sums stay float32
    for p in range(kh):
        q = 0
        while q + 3 <= kw:
            base, s0, s1, s2 = p * dh * wp + q * dw, zero, zero, zero
            a, b = src[base : base + run], src[base + dw : base + dw + run]
            c = src[base + 2 * dw : base + 2 * dw + run]
            for k in range(run):
                s0 += g[k] * a[k]
                s1 += g[k] * b[k]
                s2 += g[k] * c[k]
            out[p, q], out[p, q + 1], out[p, q + 2] = s0, s1, s2
            q += 3
        for r in range(q, kw):
            base, s0 = p * dh * wp + r * dw, zero
            a = src[base : base + run]
            for k in range(run):
                s0 += g[k] * a[k]
            out[p, r] = s0


@jit.kernel(parallel=True)
def depthwise_forward_wide(xp, taps, bias, dilation, wp, y):
    """Stride 1: y (C_in, M, N, OH·OW) from xp (C_in, N, Hp·Wp), flat runs (see the class)."""
    c_in, n, mult = xp.shape[0], xp.shape[1], taps.shape[1]
    dh, dw = dilation
    ow = wp - dw * (taps.shape[3] - 1)
    oh = y.shape[3] // ow
    blocks = (n + SAMPLES - 1) // SAMPLES
    for task in prange(c_in * blocks):
        c, first = task // blocks, (task % blocks) * SAMPLES
        wide = np.empty((oh - 1) * wp + ow, y.dtype)  # (OH, Wp) flat, the last row cut at OW
        for s in range(first, min(first + SAMPLES, n)):
            for m in range(mult):
                wide[:] = bias[c, m]
                correlate_run(wide, xp[c, s], taps[c, m], dh, dw, wp)
                for i in range(oh):
                    y[c, m, s, i * ow : (i + 1) * ow] = wide[i * wp : i * wp + ow]


@jit.kernel(parallel=True)
def depthwise_backward_wide(xp, taps, flipped, gy, dilation, wp, need_x, need_w, gxp, partial):
    """Stride 1: gxp (C_in, N, Hp·Wp) and partial (C_in, N, M, kH, kW) from gy
    (C_in, M, N, OH·OW) by flat runs; ``flipped`` is taps rotated 180°. ``gxp`` is written
    only when ``need_x``, ``partial`` when ``need_w``."""
    c_in, n, mult = xp.shape[0], xp.shape[1], taps.shape[1]
    kh, kw, size = taps.shape[2], taps.shape[3], xp.shape[2]
    dh, dw = dilation
    ow = wp - dw * (kw - 1)
    oh = gy.shape[3] // ow
    margin = (kh - 1) * dh * wp + (kw - 1) * dw
    blocks = (n + SAMPLES - 1) // SAMPLES
    for task in prange(c_in * blocks):
        c, first = task // blocks, (task % blocks) * SAMPLES
        # gy (OH, Wp) flat after `margin` zeros, zero past column OW and to the end
        padded = np.zeros(margin + size, gy.dtype)
        wide = padded[margin : margin + (oh - 1) * wp + ow]
        for s in range(first, min(first + SAMPLES, n)):
            if need_x:
                gxp[c, s] = 0
            for m in range(mult):
                for i in range(oh):
                    wide[i * wp : i * wp + ow] = gy[c, m, s, i * ow : (i + 1) * ow]
                if need_x:  # full correlation with the rotated kernel
                    correlate_run(gxp[c, s], padded, flipped[c, m], dh, dw, wp)
                if need_w:
                    correlate_sums(partial[c, s, m], wide, xp[c, s], dh, dw, wp)


class DepthwiseCompiled:
    """Depthwise (or channel-multiplier) convolution through the compiled loops above.

    With stride 1 each kernel offset is one flat run over the output rows as wide as the
    padded input (``run = (OH − 1)·Wp + OW`` pixels, the columns past OW computed and
    dropped): long vectorised loops instead of OH short ones, which matters at 14 or 16
    columns. Other strides loop row by row.
    """

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
            depthwise_forward_wide(
                xc.reshape(c_in, n, hp * wp), taps, bias, geometry.dilation, wp, flat
            )
        else:
            depthwise_forward(xc, taps, bias, geometry.stride, geometry.dilation, y)
        ctx.xp, ctx.w, ctx.geometry = xp, w, geometry
        return y.reshape(c_out, n, oh, ow)

    @staticmethod
    def backward(ctx, gy):
        xp, w, geometry = ctx.xp, ctx.w, ctx.geometry
        need_x, need_w = bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1])
        c_in, n, hp, wp = xp.shape
        mult = w.shape[0] // c_in
        taps = np.ascontiguousarray(w.reshape(c_in, mult, *w.shape[2:]))  # (C_in, M, kH, kW)
        gy5 = np.ascontiguousarray(gy).reshape(c_in, mult, *gy.shape[1:])  # (C_in, M, N, OH, OW)
        gxp = np.empty(xp.shape if need_x else (1,) * 4, xp.dtype)
        partial = np.empty(  # (C_in, N, M, kH, kW)
            (c_in, n, mult) + w.shape[2:] if need_w else (1,) * 5, xp.dtype
        )
        xc = np.ascontiguousarray(xp)
        if geometry.stride == (1, 1):
            planes, samples, rows, columns = gxp.shape  # xp's, or (1, 1, 1, 1) when unused
            gx_flat = gxp.reshape(planes, samples, rows * columns)  # (C_in, N, Hp·Wp)
            depthwise_backward_wide(
                xc.reshape(c_in, n, hp * wp),  # (C_in, N, Hp·Wp)
                taps,
                np.ascontiguousarray(taps[:, :, ::-1, ::-1]),
                gy5.reshape(c_in, mult, n, gy.shape[2] * gy.shape[3]),  # (C_in, M, N, OH·OW)
                geometry.dilation,
                wp,
                need_x,
                need_w,
                gx_flat,
                partial,
            )
        else:
            depthwise_backward(
                xc, taps, gy5, geometry.stride, geometry.dilation, need_x, need_w, gxp, partial
            )
        gw = partial.sum(axis=1).reshape(w.shape) if need_w else None
        return (gxp if need_x else None), gw
