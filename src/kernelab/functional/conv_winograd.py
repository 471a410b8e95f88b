"""Winograd convolution F(2x2, 3x3): 3x3 kernels at stride 1, on the compiled path.

A 2x2 block of outputs of a 3x3 correlation reads a 4x4 patch d of the input. Winograd's
minimal filtering algorithm computes it with 16 multiplications instead of 36::

    y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A

with G (4x3), B (4x4) and A (4x2) the fixed matrices below (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", 2015). Summed over input channels, the ⊙ of each of the
16 transform elements ξ becomes a matrix product over channels::

    M[ξ] = U[ξ] · V[ξ],  U = G g Gᵀ (16, C_out, C_in),  V = Bᵀ d B (16, C_in, tiles)

so a layer is: the input tiles transformed (compiled, ``conv_winograd_compiled.py``), 16 BLAS
products with K = C_in, the output tiles transformed back (with the bias). The GEMM's
product for the same layer has K = 9·C_in and 4 output columns per tile: 2.25x the
multiplications.

The input gradient of a stride-1 3x3 convolution is the full correlation of the output
gradient with the 180°-rotated, transposed kernel (see ``conv.py``): the same three steps,
the output gradient framed by ``2 − padding`` zeros that the input transform reads as zeros
without a copy. The kernel gradient stays with the GEMM (``conv_algorithms.Gemm``).

Arrays are channel-major as in ``conv_algorithms``: xp (C_in, N, Hp, Wp), y (C_out, N, OH, OW).
Like the GEMM's training passes, each thread takes its own ranges of samples, with BLAS on
one thread inside it (``conv_compiled.run``).
"""

from __future__ import annotations

import types

import numpy as np

from . import conv_compiled
from . import conv_winograd_compiled as tiles
from .conv_algorithms import Gemm, workspace
from .geometry import ConvGeometry

# the kernel transform of F(2x2, 3x3); the input's Bᵀ and the output's Aᵀ are written out
# in conv_winograd_compiled.py (additions only)
# A thread's V and M of one chunk: they stay in its core's cache between the transforms and
# the products (1-2 MB measured 5-10% faster than 4-16 MB; the products of one sample's
# tiles run faster than those of many)
CHUNK_BYTES = 2 << 20
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


# Layers thinner than this keep the GEMM: ResNet-8's stem (3→16) ran at 0.6x the GEMM's
# speed, its transforms outweighing products with K = 3; 16-128 channels measured faster.
MIN_CHANNELS = 16


def suits(geometry: ConvGeometry, w_shape) -> bool:
    """Whether ``conv2d`` runs this convolution here: a 3x3 kernel, stride 1, no dilation,
    one group, at least MIN_CHANNELS channels in and out."""
    plain = geometry.stride == (1, 1) and geometry.dilation == (1, 1) and geometry.groups == 1
    return plain and tuple(w_shape[2:]) == (3, 3) and min(w_shape[:2]) >= MIN_CHANNELS


def transformed_kernel(w: np.ndarray) -> np.ndarray:
    """U = G g Gᵀ of every (C_out, C_in) kernel g (3x3) of w: (16, C_out, C_in)."""
    g = G.astype(w.dtype)
    u = np.einsum("ap,ocpq,bq->aboc", g, w, g)  # (4, 4, C_out, C_in)
    return np.ascontiguousarray(u.reshape((16,) + w.shape[:2]))  # (16, C_out, C_in)


def correlate(src, origin, u, bias, dst, target, out_size) -> None:
    """3x3 correlation of src (C_in, N, H, W) with the transformed kernels u (16, C_out, C_in),
    plus ``bias`` (C_out,) or None: output pixel (i, j) reads the window at row
    ``origin[0] + i``, column ``origin[1] + j`` of src framed by zeros, and is written to
    ``dst[:, :, target[0] + i, target[1] + j]`` for (i, j) within ``out_size``."""
    src = np.ascontiguousarray(src)  # one compiled signature per dtype
    c_in, n = src.shape[:2]
    c_out, (oh, ow) = u.shape[1], out_size
    tiles_h, tiles_w = (oh + 1) // 2, (ow + 1) // 2
    threads = conv_compiled.threads()
    per_sample = 16 * (c_in + c_out) * tiles_h * tiles_w * src.itemsize
    step = max(1, CHUNK_BYTES // per_sample)
    bias = np.zeros(c_out, src.dtype) if bias is None else np.ascontiguousarray(bias)

    def chunk(start, stop):
        count = (stop - start) * tiles_h * tiles_w
        v = workspace((16, c_in, count), src.dtype, "winograd input")
        m = workspace((16, c_out, count), src.dtype, "winograd products")
        tiles.input_tiles(src, start, origin[0], origin[1], tiles_h, tiles_w, v)
        np.matmul(u, v, out=m)  # 16 products (C_out, C_in)·(C_in, tiles)
        tiles.output_tiles(m, bias, start, target[0], target[1], oh, ow, tiles_w, dst)

    conv_compiled.run(chunk, sample_ranges(n, step, threads))


def sample_ranges(n: int, step: int, threads: int) -> list[tuple[int, int]]:
    """Ranges of about ``step`` samples covering n, a multiple of ``threads`` of them, of
    sizes that differ by at most one: the threads finish together."""
    chunks = -(-n // step)
    count = min(n, -(-chunks // threads) * threads)
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class Winograd:
    """Forward and input gradient by F(2x2, 3x3); the kernel gradient by the GEMM."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        xp = np.ascontiguousarray(xp)  # (C_in, N, Hp, Wp)
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        y = np.empty((w.shape[0], xp.shape[1], oh, ow), xp.dtype)  # (C_out, N, OH, OW)
        correlate(xp, (0, 0), transformed_kernel(w), b, y, (0, 0), (oh, ow))
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
            correlate(gy, origin, transformed_kernel(rotated), None, gxp, (top, left), size)
        if need_w:
            gemm = types.SimpleNamespace(
                xp=xp, w=w, geometry=geometry, direct=False, needs_input_grad=(False, True, False)
            )
            _, gw = Gemm.backward(gemm, gy)
        return gxp, gw
