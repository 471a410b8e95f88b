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
values per output pixel and channel, 2.25 against 4. It measured 1.1-1.5x faster than
F(2x2, 3x3), but rounds more in float32 (its transforms hold 4, 5, 8 and sixths): ~1e-5
relative at 128 channels against ~5e-7 (the GEMM's and PyTorch's: 3-7e-7). That is inside
one layer's parity (2e-4), yet a training run parts from PyTorch's: PyTorch's MNIST example
(tests/compat) ended 4e-4 apart in one weight, against the 2e-5 it allows (F(2x2, 3x3): within
it). So F(2x2, 3x3) is the default and F(4x4, 3x3) opt-in (``KERNELAB_WINOGRAD_TILE=4``).

The input gradient of a stride-1 3x3 convolution is the full correlation of the output
gradient with the 180°-rotated, transposed kernel (see ``conv.py``): the same three steps,
the output gradient framed by ``2 − padding`` zeros that the input transform reads as zeros
without a copy. The kernel gradient stays with the GEMM (``conv_algorithms.Gemm``).

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
TILES = {2: (tiles.input_tiles, tiles.output_tiles), 4: (tiles.input_tiles_4, tiles.output_tiles_4)}


def default_tile() -> int:
    """Outputs per tile side: 2, F(2x2, 3x3), unless ``KERNELAB_WINOGRAD_TILE=4`` asks for
    F(4x4, 3x3) (see the module for why it is opt-in)."""
    return 4 if os.environ.get("KERNELAB_WINOGRAD_TILE") == "4" else 2


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
    Computed in float64: G of F(4x4, 3x3) holds sixths."""
    u = G[tile] @ w.astype(np.float64) @ G[tile].T  # (C_out, C_in, α, α)
    u = u.reshape(w.shape[:2] + (-1,)).transpose(2, 0, 1)  # (α², C_out, C_in)
    return np.ascontiguousarray(u, w.dtype)


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


def sample_ranges(n: int, step: int, threads: int) -> list[tuple[int, int]]:
    """Ranges of about ``step`` samples covering n, a multiple of ``threads`` of them, of
    sizes that differ by at most one: the threads finish together."""
    chunks = -(-n // step)
    count = min(n, -(-chunks // threads) * threads)
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class Winograd:
    """Forward and input gradient by F(tile x tile, 3x3); the kernel gradient by the GEMM."""

    tile = None  # outputs per tile side; None: default_tile()

    @classmethod
    def forward(cls, ctx, xp, w, b, geometry: ConvGeometry):
        xp = np.ascontiguousarray(xp)  # (C_in, N, Hp, Wp)
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        y = np.empty((w.shape[0], xp.shape[1], oh, ow), xp.dtype)  # (C_out, N, OH, OW)
        ctx.tile = cls.tile or default_tile()
        correlate(xp, (0, 0), transformed_kernel(w, ctx.tile), b, y, (0, 0), (oh, ow))
        ctx.xp, ctx.w, ctx.geometry, ctx.direct = xp, w, geometry, False  # as Gemm's
        return y

    @staticmethod
    def backward(ctx, gy):
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
        if need_w:
            gemm = types.SimpleNamespace(
                xp=xp, w=w, geometry=geometry, direct=False, needs_input_grad=(False, True, False)
            )
            _, gw = Gemm.backward(gemm, gy)
        return gxp, gw
