"""Compiled tile transforms of the Winograd convolution (``conv_winograd.py``): F(2x2, 3x3)
(:func:`input_tiles`, :func:`output_tiles`), F(4x4, 3x3) (the ``_4`` twins) and the kernel
gradient's F(3x3, 2x2) (:func:`input_tiles` again, :func:`gradient_tiles`); the kernel
transform (:func:`kernel_tiles`).

All run on the calling thread, one chunk of samples per call: the threads of a convolution
each take their own chunk (``conv_compiled.run``). Every tile of m x m outputs reads an α x α
patch of the input (α = m + 2) starting at rows and columns that are multiples of m;
neighbouring patches overlap by two.

* input: ``v[ξ, c, t] = (Bᵀ d B)[ξ]`` for the patch d of tile t of channel c, ξ = α·row +
  column of the α x α transform. The source is read as if framed by zeros: tile (i, j) starts
  at row ``row0 + m·i`` and column ``col0 + m·j`` (negative, or past the edge, read as zeros),
  so the input gradient's framed output gradient needs no padded copy.
* output: ``y = Aᵀ M A`` (+ bias) for each tile, written to the rows ``row0 + m·i`` and
  columns ``col0 + m·j`` of the destination, only those within (OH, OW): the last tiles of a
  size that m does not divide compute rows or columns that are dropped.

Each runs in two passes, as the matrices separate: along the rows for whole image rows (the
input) or a whole sample's tiles (the output) at once, contiguous so that it vectorises; then
along the columns tile by tile.
"""

from __future__ import annotations

import numpy as np

from ..core import jit
from .conv_compiled import plane_kernel


@jit.kernel()
def input_tiles(src, start, row0, col0, tiles_h, tiles_w, v):
    """Fill v (16, C, chunk·TH·TW) with the transformed input tiles of samples
    ``start:start + chunk`` of src (C, N, H, W); tiles in (sample, tile row, tile column)
    order. Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]."""
    c_in, _, h, w = src.shape
    chunk = v.shape[2] // (tiles_h * tiles_w)
    width = 2 * tiles_w + 2
    # Bᵀ d along the rows, one tile row; its columns outside [lo, hi) stay zero
    rows = np.zeros((4, width), src.dtype)
    lo, hi = max(0, -col0), min(width, w - col0)  # the columns that lie in the source
    zero = np.zeros(w, src.dtype)
    for c in range(c_in):
        for s in range(chunk):
            for i in range(tiles_h):
                top = row0 + 2 * i
                d0 = src[c, start + s, top] if 0 <= top < h else zero
                d1 = src[c, start + s, top + 1] if 0 <= top + 1 < h else zero
                d2 = src[c, start + s, top + 2] if 0 <= top + 2 < h else zero
                d3 = src[c, start + s, top + 3] if 0 <= top + 3 < h else zero
                a0, a1, a2, a3 = d0[col0 + lo :], d1[col0 + lo :], d2[col0 + lo :], d3[col0 + lo :]
                b0, b1, b2, b3 = rows[0, lo:], rows[1, lo:], rows[2, lo:], rows[3, lo:]
                for k in range(hi - lo):
                    b0[k] = a0[k] - a2[k]
                    b1[k] = a1[k] + a2[k]
                    b2[k] = a2[k] - a1[k]
                    b3[k] = a1[k] - a3[k]
                base = (s * tiles_h + i) * tiles_w
                for r in range(4):
                    t = rows[r]
                    out0, out1 = v[4 * r, c, base:], v[4 * r + 1, c, base:]
                    out2, out3 = v[4 * r + 2, c, base:], v[4 * r + 3, c, base:]
                    for j in range(tiles_w):
                        k = 2 * j
                        out0[j] = t[k] - t[k + 2]
                        out1[j] = t[k + 1] + t[k + 2]
                        out2[j] = t[k + 2] - t[k + 1]
                        out3[j] = t[k + 1] - t[k + 3]


@jit.kernel()
def output_tiles(m, bias, start, row0, col0, out_h, out_w, tiles_w, dst):
    """Write ``Aᵀ m A + bias`` of every tile of m (16, C, chunk·TH·TW) into samples
    ``start:start + chunk`` of dst (C, N, ·, ·) at rows ``row0:row0 + OH`` and columns
    ``col0:col0 + OW``. Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]."""
    tiles_h = (out_h + 1) // 2
    per = tiles_h * tiles_w  # tiles of one sample
    rows = np.empty((2, 4, per), m.dtype)  # Aᵀ m along the rows, one sample
    # one output row, its pairs of columns written side by side: twice as fast as two
    # stride-2 writes into dst, which do not vectorise
    pairs = np.empty((tiles_w, 2), m.dtype)
    row = pairs.reshape(2 * tiles_w)
    for o in range(m.shape[1]):
        for s in range(m.shape[2] // per):
            base = s * per
            for b in range(4):
                m0, m1 = m[b, o, base : base + per], m[4 + b, o, base : base + per]
                m2, m3 = m[8 + b, o, base : base + per], m[12 + b, o, base : base + per]
                r0, r1 = rows[0, b], rows[1, b]
                for t in range(per):
                    r0[t] = m0[t] + m1[t] + m2[t]
                    r1[t] = m1[t] - m2[t] - m3[t]
            for i in range(tiles_h):
                for a in range(min(2, out_h - 2 * i)):
                    lo = i * tiles_w
                    t0, t1 = rows[a, 0, lo : lo + tiles_w], rows[a, 1, lo : lo + tiles_w]
                    t2, t3 = rows[a, 2, lo : lo + tiles_w], rows[a, 3, lo : lo + tiles_w]
                    for j in range(tiles_w):
                        pairs[j, 0] = t0[j] + t1[j] + t2[j] + bias[o]
                        pairs[j, 1] = t1[j] - t2[j] - t3[j] + bias[o]
                    y = dst[o, start + s, row0 + 2 * i + a, col0 : col0 + out_w]
                    for j in range(out_w):
                        y[j] = row[j]


@plane_kernel
def constants(like):
    """2, 4, 5 and 8 in the dtype of the array ``like``: with literals, numba would compute
    float32 tiles in float64."""
    values = np.empty(4, like.dtype)
    values[0], values[1], values[2], values[3] = 2, 4, 5, 8
    return values[0], values[1], values[2], values[3]


@jit.kernel()
def input_tiles_4(src, start, row0, col0, tiles_h, tiles_w, v):
    """:func:`input_tiles` for F(4x4, 3x3): 6x6 patches every 4 pixels, v (36, C, tiles).
    Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
    [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]."""
    c_in, _, h, w = src.shape
    chunk = v.shape[2] // (tiles_h * tiles_w)
    width = 4 * tiles_w + 2
    # Bᵀ d along the rows, one tile row; its columns outside [lo, hi) stay zero
    rows = np.zeros((6, width), src.dtype)
    lo, hi = max(0, -col0), min(width, w - col0)  # the columns that lie in the source
    zero = np.zeros(w, src.dtype)
    two, four, five, _ = constants(src)
    for c in range(c_in):
        for s in range(chunk):
            plane = src[c, start + s]
            for i in range(tiles_h):
                top = row0 + 4 * i
                d0 = plane[top, col0 + lo :] if 0 <= top < h else zero
                d1 = plane[top + 1, col0 + lo :] if 0 <= top + 1 < h else zero
                d2 = plane[top + 2, col0 + lo :] if 0 <= top + 2 < h else zero
                d3 = plane[top + 3, col0 + lo :] if 0 <= top + 3 < h else zero
                d4 = plane[top + 4, col0 + lo :] if 0 <= top + 4 < h else zero
                d5 = plane[top + 5, col0 + lo :] if 0 <= top + 5 < h else zero
                b0, b1, b2 = rows[0, lo:], rows[1, lo:], rows[2, lo:]
                b3, b4, b5 = rows[3, lo:], rows[4, lo:], rows[5, lo:]
                for k in range(hi - lo):
                    b0[k] = four * d0[k] - five * d2[k] + d4[k]
                    b1[k] = d3[k] + d4[k] - four * (d1[k] + d2[k])
                    b2[k] = d4[k] - d3[k] + four * (d1[k] - d2[k])
                    b3[k] = d4[k] - d2[k] + two * (d3[k] - d1[k])
                    b4[k] = d4[k] - d2[k] - two * (d3[k] - d1[k])
                    b5[k] = four * d1[k] - five * d3[k] + d5[k]
                base = (s * tiles_h + i) * tiles_w
                for r in range(6):
                    t = rows[r]
                    out0, out1 = v[6 * r, c, base:], v[6 * r + 1, c, base:]
                    out2, out3 = v[6 * r + 2, c, base:], v[6 * r + 3, c, base:]
                    out4, out5 = v[6 * r + 4, c, base:], v[6 * r + 5, c, base:]
                    for j in range(tiles_w):
                        k = 4 * j
                        e1, e2, e3, e4 = t[k + 1], t[k + 2], t[k + 3], t[k + 4]
                        out0[j] = four * t[k] - five * e2 + e4
                        out1[j] = e3 + e4 - four * (e1 + e2)
                        out2[j] = e4 - e3 + four * (e1 - e2)
                        out3[j] = e4 - e2 + two * (e3 - e1)
                        out4[j] = e4 - e2 - two * (e3 - e1)
                        out5[j] = four * e1 - five * e3 + t[k + 5]


@jit.kernel()
def output_tiles_4(m, bias, start, row0, col0, out_h, out_w, tiles_w, dst):
    """:func:`output_tiles` for F(4x4, 3x3), m (36, C, tiles).
    Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]."""
    tiles_h = (out_h + 3) // 4
    per = tiles_h * tiles_w  # tiles of one sample
    rows = np.empty((4, 6, per), m.dtype)  # Aᵀ m along the rows, one sample
    quads = np.empty((tiles_w, 4), m.dtype)  # one output row, as in output_tiles
    row = quads.reshape(4 * tiles_w)
    two, four, _, eight = constants(m)
    for o in range(m.shape[1]):
        for s in range(m.shape[2] // per):
            base = s * per
            for b in range(6):
                m0, m1 = m[b, o, base : base + per], m[6 + b, o, base : base + per]
                m2, m3 = m[12 + b, o, base : base + per], m[18 + b, o, base : base + per]
                m4, m5 = m[24 + b, o, base : base + per], m[30 + b, o, base : base + per]
                r0, r1, r2, r3 = rows[0, b], rows[1, b], rows[2, b], rows[3, b]
                for t in range(per):
                    plus, minus = m1[t] + m2[t], m1[t] - m2[t]
                    plus3, minus3 = m3[t] + m4[t], m3[t] - m4[t]
                    r0[t] = m0[t] + plus + plus3
                    r1[t] = minus + two * minus3
                    r2[t] = plus + four * plus3
                    r3[t] = minus + eight * minus3 + m5[t]
            for i in range(tiles_h):
                for a in range(min(4, out_h - 4 * i)):
                    lo = i * tiles_w
                    t0, t1 = rows[a, 0, lo : lo + tiles_w], rows[a, 1, lo : lo + tiles_w]
                    t2, t3 = rows[a, 2, lo : lo + tiles_w], rows[a, 3, lo : lo + tiles_w]
                    t4, t5 = rows[a, 4, lo : lo + tiles_w], rows[a, 5, lo : lo + tiles_w]
                    for j in range(tiles_w):
                        plus, minus = t1[j] + t2[j], t1[j] - t2[j]
                        plus3, minus3 = t3[j] + t4[j], t3[j] - t4[j]
                        quads[j, 0] = t0[j] + plus + plus3 + bias[o]
                        quads[j, 1] = minus + two * minus3 + bias[o]
                        quads[j, 2] = plus + four * plus3 + bias[o]
                        quads[j, 3] = minus + eight * minus3 + t5[j] + bias[o]
                    y = dst[o, start + s, row0 + 4 * i + a, col0 : col0 + out_w]
                    for j in range(out_w):
                        y[j] = row[j]


@jit.kernel()
def gradient_tiles(gy, start, chunk, tiles_h, tiles_w, u):
    """Fill u (16, ≥ chunk·TH·TW·C), tiles before channels, with ``G' g G'ᵀ`` of every 2x2
    tile g of samples ``start:start + chunk`` of the output gradient gy (C, N, OH, OW), zeros
    past its edge: the kernel gradient's F(3x3, 2x2). G' = [[1, 0], [1, 1], [1, −1], [0, 1]]
    is 2·G without its halves, which the caller applies to the sums (powers of two: exact).
    Tiles first, so that the products with the input tiles are plain (not transposed) ones,
    measured 2x faster."""
    c_out, _, oh, ow = gy.shape
    zero = np.zeros(1, gy.dtype)[0]
    t = 0
    for s in range(chunk):
        for i in range(tiles_h):
            for j in range(tiles_w):
                inside = 2 * i + 1 < oh and 2 * j + 1 < ow
                for o in range(c_out):  # contiguous writes; the reads stay in cache across j
                    plane = gy[o, start + s]
                    if inside:
                        g00, g01 = plane[2 * i, 2 * j], plane[2 * i, 2 * j + 1]
                        g10, g11 = plane[2 * i + 1, 2 * j], plane[2 * i + 1, 2 * j + 1]
                    else:  # the last row or column of an odd size: zeros past it
                        g00 = plane[2 * i, 2 * j]
                        g01 = plane[2 * i, 2 * j + 1] if 2 * j + 1 < ow else zero
                        g10 = plane[2 * i + 1, 2 * j] if 2 * i + 1 < oh else zero
                        g11 = plane[2 * i + 1, 2 * j + 1] if inside else zero
                    gradient_tile(g00, g01, g10, g11, u, t + o)
                t += c_out


@plane_kernel
def gradient_tile(g00, g01, g10, g11, u, index):
    """The 16 values ``G' g G'ᵀ`` of one 2x2 tile g into ``u[:, index]``."""
    for a in range(4):  # G' along the rows
        if a == 0:
            h0, h1 = g00, g01
        elif a == 1:
            h0, h1 = g00 + g10, g01 + g11
        elif a == 2:
            h0, h1 = g00 - g10, g01 - g11
        else:
            h0, h1 = g10, g11
        u[4 * a, index] = h0
        u[4 * a + 1, index] = h0 + h1
        u[4 * a + 2, index] = h0 - h1
        u[4 * a + 3, index] = h1


@jit.kernel()
def kernel_tiles(taps, kron, u):
    """u (α², C_out·C_in) = kron (α², 9) · taps (9, C_out·C_in), in float64: the kernel
    transform G g Gᵀ of every kernel (kron = G ⊗ G). Here rather than in BLAS, whose threads
    would spin after so small a product and take the cores from the passes that follow
    (measured 3x slower at 64x64 channels)."""
    u[:] = 0
    for k in range(kron.shape[0]):
        row = u[k]
        for p in range(9):
            weight = kron[k, p]
            if weight != 0:
                tap = taps[p]
                for n in range(row.shape[0]):
                    row[n] += weight * tap[n]
