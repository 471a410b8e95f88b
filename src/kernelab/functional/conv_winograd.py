"""Winograd convolution F(2x2, 3x3) or F(4x4, 3x3): 3x3 kernels at stride 1, compiled path.

An m x m block of outputs of a 3x3 correlation reads an α x α patch d of the input
(α = m + 2). Winograd's minimal filtering algorithm computes it with α² multiplications
instead of 9·m²::

    y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A

with G (α x 3), B (α x α) and A (α x m) fixed matrices (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", 2015). Summed over input channels, the ⊙ of each of the α²
transform elements ξ becomes a matrix product over channels::

    M[ξ] = U[ξ] · V[ξ],  U = G g Gᵀ (α², C_out, C_in),  V = Bᵀ d B (α², C_in, tiles)

so a layer is: the input tiles transformed (compiled, ``conv_winograd_compiled.py``), α² BLAS
products with K = C_in, the output tiles transformed back (with the bias). The GEMM's
product for the same layer does 9·m²/α² times the multiplications: 2.25x for F(2x2, 3x3)
(α = 4), 4x for F(4x4, 3x3) (α = 6). The larger tile also moves less: α²/m² transformed
values per output pixel and channel, 2.25 against 4. It measured 1.2-1.5x faster than
F(2x2, 3x3), but rounds more in float32 (its transforms hold 4, 5, 8 and sixths): ~1e-5
relative at 128 channels against ~5e-7 (the GEMM's and PyTorch's: 3-7e-7). That is inside
one layer's parity (2e-4), yet PyTorch's MNIST example trained in tests/compat then ends
4.3e-4 apart from PyTorch in one weight, where the test allows 2e-5: a near tie (a ReLU or a
max pool) decided the other way, after which the runs part. F(2x2, 3x3) keeps it within.
So F(2x2, 3x3) is the default and F(4x4, 3x3) opt-in (``KERNELAB_WINOGRAD_TILE=4``), as
the direct convolution is for the same reason.

The input gradient of a stride-1 3x3 convolution is the full correlation of the output
gradient with the 180°-rotated, transposed kernel (see ``conv.py``): the same three steps,
the output gradient framed by ``2 − padding`` zeros that the input transform reads as zeros
without a copy. The kernel gradient, a correlation of the input with the output gradient,
is a 3x3 output of 2x2 "kernels" (the output gradient's tiles): F(3x3, 2x2), whose 16
products (C_in, tiles)·(tiles, C_out) sum over every tile of every sample
(:func:`kernel_gradient`). It measured 1.0-1.2x the GEMM's speed, but it too decides
the compat test's near tie the other way (above), so only F(4x4, 3x3)'s opt-in uses it.

Arrays are channel-major as in ``conv_algorithms``: xp (C_in, N, Hp, Wp), y (C_out, N, OH, OW).
Like the GEMM's training passes, each thread takes its own ranges of samples, with BLAS on
one thread inside it (``conv_compiled.run``).
"""

from __future__ import annotations

import os
import types

import numpy as np

from . import conv_compiled
from . import conv_winograd_compiled as tiles
from .conv_algorithms import Gemm, workspace
from .geometry import ConvGeometry

# A thread's chunk of samples: enough for MIN_TILES tiles (the products of fewer ran at half
# BLAS's speed at 8x8 maps) and for about CHUNK_BYTES of V and M, which then stay in the core's
# cache between the transforms and the products (0.5-4 MB measured within 5% of each other,
# 16-64 MB up to 1.5x slower)
MIN_TILES = 64
CHUNK_BYTES = 2 << 20
PLANE_GAP = 16  # elements between the planes of the kernel gradient's tiles
# The kernel transforms G of F(2x2, 3x3) and F(4x4, 3x3); the input's Bᵀ and the output's Aᵀ
# are written out in conv_winograd_compiled.py
G = {
    2: np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]),
    4: np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    ),
}
KRON = {tile: np.kron(g, g) for tile, g in G.items()}  # (α², 9)
TILES = {2: (tiles.input_tiles, tiles.output_tiles), 4: (tiles.input_tiles_4, tiles.output_tiles_4)}


def default_tile() -> int:
    """Outputs per tile side: 2, F(2x2, 3x3), unless ``KERNELAB_WINOGRAD_TILE=4`` asks for
    F(4x4, 3x3) (see the module for why it is opt-in)."""
    return 4 if os.environ.get("KERNELAB_WINOGRAD_TILE") == "4" else 2


# Convolutions of fewer FLOPs (the GEMM's count) run the GEMM's passes: a call costs ~0.1 ms
# more than the GEMM's (the kernel transform, two more compiled calls), which decides at
# batch 1: 1.15-2x the GEMM's time at 5-30 MFLOP, 0.6x at 300 MFLOP (batch 1, 128 channels
# at 32x32), 0.8x at 120 MFLOP (batch 4, conv/k3's layer).
MIN_FLOPS = 5e7
# Layers thinner than this keep the GEMM: ResNet-8's stem (3→16) ran at 0.6x the GEMM's
# speed, its transforms outweighing products with K = 3; 16-128 channels measured faster.
MIN_CHANNELS = 16


def suits(geometry: ConvGeometry, w_shape) -> bool:
    """Whether ``conv2d`` runs this convolution here: a 3x3 kernel, stride 1, no dilation,
    one group, at least MIN_CHANNELS channels in and out."""
    plain = geometry.stride == (1, 1) and geometry.dilation == (1, 1) and geometry.groups == 1
    return plain and tuple(w_shape[2:]) == (3, 3) and min(w_shape[:2]) >= MIN_CHANNELS


def transformed_kernel(w: np.ndarray, tile: int) -> np.ndarray:
    """U = G g Gᵀ of every (C_out, C_in) kernel g (3x3) of w: (α², C_out, C_in), α = tile + 2.

    One product with G ⊗ G, (G g Gᵀ)[a, b] = Σ G[a, p]·G[b, q]·g[p, q] (compiled: NumPy's
    matmul of many 3x3 matrices took 1 ms at 64x64 channels, as long as a batch-1 layer's
    work). In float64: G of F(4x4, 3x3) holds sixths."""
    taps = np.ascontiguousarray(w.reshape(-1, 9).T, np.float64)  # (9, C_out·C_in)
    u = np.empty(((tile + 2) ** 2, taps.shape[1]))  # (α², C_out·C_in)
    tiles.kernel_tiles(taps, KRON[tile], u)
    return u.reshape((-1,) + w.shape[:2]).astype(w.dtype)  # (α², C_out, C_in)


def correlate(src, origin, u, bias, dst, target, out_size) -> None:
    """3x3 correlation of src (C_in, N, H, W) with the transformed kernels u (α², C_out, C_in),
    plus ``bias`` (C_out,) or None: output pixel (i, j) reads the window at row
    ``origin[0] + i``, column ``origin[1] + j`` of src framed by zeros, and is written to
    ``dst[:, :, target[0] + i, target[1] + j]`` for (i, j) within ``out_size``."""
    src = np.ascontiguousarray(src)  # one compiled signature per dtype
    c_in, n = src.shape[:2]
    points, c_out, (oh, ow) = u.shape[0], u.shape[1], out_size
    tile = round(points**0.5) - 2
    input_tiles, output_tiles = TILES[tile]
    tiles_h, tiles_w = -(-oh // tile), -(-ow // tile)
    threads = conv_compiled.threads()
    per_sample = points * (c_in + c_out) * tiles_h * tiles_w * src.itemsize
    step = max(1, -(-MIN_TILES // (tiles_h * tiles_w)), CHUNK_BYTES // per_sample)
    bias = np.zeros(c_out, src.dtype) if bias is None else np.ascontiguousarray(bias)

    def chunk(start, stop):
        count = (stop - start) * tiles_h * tiles_w
        v = workspace((points, c_in, count), src.dtype, "winograd input")
        m = workspace((points, c_out, count), src.dtype, "winograd products")
        input_tiles(src, start, origin[0], origin[1], tiles_h, tiles_w, v)
        np.matmul(u, v, out=m)  # α² products (C_out, C_in)·(C_in, tiles)
        output_tiles(m, bias, start, target[0], target[1], oh, ow, tiles_w, dst)

    conv_compiled.run(chunk, sample_ranges(n, step, threads))


# The kernel gradient's F(3x3, 2x2): M = Σ over tiles of (G gy Gᵀ) ⊙ (Bᵀ d B), then Aᵀ M A
# (3x3 from 4x4). Its Bᵀ is F(2x2, 3x3)'s with the last row negated, so the input tiles are
# :func:`tiles.input_tiles`' and the signs, like G's halves, are applied to M: SCALE[ξ].
GRADIENT_AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
_SIDE = np.array([1.0, 0.5, 0.5, -1.0])  # G's halves, Bᵀ's negated last row
SCALE = np.outer(_SIDE, _SIDE).reshape(16, 1, 1)


def kernel_gradient(gy: np.ndarray, xp: np.ndarray) -> np.ndarray:
    """gw (C_out, C_in, 3, 3) from gy (C_out, N, OH, OW) and xp (C_in, N, Hp, Wp), stride 1:
    ``gw[o, c, p, q] = Σ gy[o, n, i, j] · xp[c, n, i + p, j + q]`` by F(3x3, 2x2), one sum of
    products (C_in, tiles)·(tiles, C_out) per ξ, over every tile of every sample."""
    xp, gy = np.ascontiguousarray(xp), np.ascontiguousarray(gy)
    (c_in, n), (c_out, _, oh, ow) = xp.shape[:2], gy.shape
    tiles_h, tiles_w = -(-oh // 2), -(-ow // 2)
    threads = conv_compiled.threads()
    per_sample = 16 * (c_in + c_out) * tiles_h * tiles_w * xp.itemsize
    step = max(1, -(-MIN_TILES // (tiles_h * tiles_w)), CHUNK_BYTES // per_sample)

    def task(first, last):
        """The sums of the samples ``first:last``, a chunk at a time: (16, C_in, C_out)."""
        total = np.zeros((16, c_in, c_out), xp.dtype)
        part = np.empty_like(total)
        for start, stop in sample_ranges(last - first, step, 1):
            start, stop = first + start, first + stop
            count = (stop - start) * tiles_h * tiles_w
            v = workspace((16, c_in, count), xp.dtype, "winograd input")
            # (16, tiles·C_out + PLANE_GAP): planes of a power-of-two size would start on the
            # same cache sets, and gradient_tiles' 16 streams of writes evict each other
            # (measured up to 9x slower)
            u = workspace((16, count * c_out + PLANE_GAP), xp.dtype, "winograd products")
            tiles.input_tiles(xp, start, 0, 0, tiles_h, tiles_w, v)
            tiles.gradient_tiles(gy, start, stop - start, tiles_h, tiles_w, u)
            np.matmul(v, u[:, : count * c_out].reshape(16, count, c_out), out=part)
            total += part
        return total

    parts = conv_compiled.run(task, sample_ranges(n, -(-n // threads), threads))
    m = sum(parts[1:], parts[0]) * SCALE.astype(xp.dtype)  # (16, C_in, C_out)
    m = m.reshape(4, 4, c_in, c_out)
    gw = np.einsum("pa,abco,qb->ocpq", GRADIENT_AT, m, GRADIENT_AT)
    return np.ascontiguousarray(gw, xp.dtype)


def sample_ranges(n: int, step: int, threads: int) -> list[tuple[int, int]]:
    """Ranges of about ``step`` samples covering n, a multiple of ``threads`` of them, of
    sizes that differ by at most one: the threads finish together."""
    chunks = -(-n // step)
    count = min(n, -(-chunks // threads) * threads)
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class Winograd:
    """Forward and input gradient by F(tile x tile, 3x3); the kernel gradient by the GEMM, or
    with the larger tile by F(3x3, 2x2). Convolutions of fewer than MIN_FLOPS: the GEMM."""

    tile = None  # outputs per tile side; None: default_tile()

    @classmethod
    def forward(cls, ctx, xp, w, b, geometry: ConvGeometry):
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        ctx.small = 2 * w.size * xp.shape[1] * oh * ow < MIN_FLOPS
        if ctx.small:  # the whole layer on the GEMM, both ways
            return Gemm.forward(ctx, xp, w, b, geometry)
        xp = np.ascontiguousarray(xp)  # (C_in, N, Hp, Wp)
        y = np.empty((w.shape[0], xp.shape[1], oh, ow), xp.dtype)  # (C_out, N, OH, OW)
        ctx.tile = cls.tile or default_tile()
        correlate(xp, (0, 0), transformed_kernel(w, ctx.tile), b, y, (0, 0), (oh, ow))
        ctx.xp, ctx.w, ctx.geometry = xp, w, geometry
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.small:
            return Gemm.backward(ctx, gy)
        xp, w, geometry = ctx.xp, ctx.w, ctx.geometry
        need_x, need_w, _ = ctx.needs_input_grad
        gxp = gw = None
        if need_x:
            (top, bottom), (left, right) = geometry.padding
            size = xp.shape[2] - top - bottom, xp.shape[3] - left - right
            rotated = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, 3, 3)
            # (C_in, N, Hp, Wp): only the unpadded input's pixels are written, the caller
            # cuts the padding off
            gxp = np.empty(xp.shape, xp.dtype)
            origin = top - 2, left - 2  # gy framed by 2 − padding zeros
            u = transformed_kernel(rotated, ctx.tile)
            correlate(gy, origin, u, None, gxp, (top, left), size)
        if need_w and ctx.tile == 4:
            gw = kernel_gradient(gy, xp)
        elif need_w:
            gemm = types.SimpleNamespace(
                xp=xp, w=w, geometry=geometry, direct=False, needs_input_grad=(False, True, False)
            )
            _, gw = Gemm.backward(gemm, gy)
        return gxp, gw
