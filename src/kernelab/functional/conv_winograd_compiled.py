"""Compiled tile transforms of the Winograd convolution F(2x2, 3x3) (``conv_winograd.py``).

Both run on the calling thread, one chunk of samples per call: the threads of a convolution
each take their own chunk (``conv_compiled.run``). Every tile of 2x2 outputs reads a 4x4
patch of the input, starting at even rows and columns; neighbouring patches overlap by two.

* :func:`input_tiles`: ``v[ξ, c, t] = (Bᵀ d B)[ξ]`` for the patch d of tile t of channel c,
  ξ = 4·row + column of the 4x4 transform. The source is read as if framed by zeros: tile
  (i, j) starts at row ``row0 + 2i`` and column ``col0 + 2j`` (negative, or past the edge,
  read as zeros), so the input gradient's framed output gradient needs no padded copy.
* :func:`output_tiles`: ``y = Aᵀ m A`` (+ bias) for each tile, written to the rows
  ``row0 + 2i`` and columns ``col0 + 2j`` of the destination, only those within (OH, OW):
  the last tile of an odd size computes a row or column that is dropped.

Each runs in two passes per tile row, as the matrices separate: along the rows for whole
image rows at once (contiguous, so it vectorises), then along the columns tile by tile.
"""

from __future__ import annotations

import numpy as np

from ..core import jit


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
