"""Direct convolution for thin inputs (one to four channels: a network's first layer).

With K = C_in·kH·kW between 9 and 75 the GEMM's products are thin, BLAS runs them at 30-44
GFLOP/s, and its im2col copies the input kH·kW times into columns that outgrow the cache.
The kernels here (generated: ``conv_thin_source.py``) need no column matrix:

* forward: a task is (sample, block of OB output channels); it walks the output rows in
  tiles of JB columns, OB·JB accumulators in vector registers, each input pixel run broadcast
  against a weight. The input is *phased* for the horizontal stride sw: xph (C, N, Hp, sw, Wr)
  with ``xph[c, n, h, r, m] = xp[c, n, h, m·sw + r]``, so consecutive output columns read
  consecutive pixels for every kernel column q (phase ``q·dw mod sw``, shift ``q·dw div sw``);
  at stride 1 that is the padded input itself, unless the image is narrower than a vector.
* kernel gradient: a task is a few samples; per sample it copies the input into planes in
  which each tap meets the output pixels as one run, and sums run × output gradient into
  blocks of OB output channels × TQ taps (see the source module). Each task sums into its own
  partial kernel, and the partials are added pairwise: a float32 sum runs over a few hundred
  terms in a row, as BLAS's blocked sums do, and stays within PyTorch's rounding.

As with the direct convolution (``conv_generated.ready``), a kernel runs only if its
machine code is in numba's cache when a layer first asks (or ``KERNELAB_DIRECT_CONV=1``);
otherwise the process keeps the GEMM for that pass and a background process compiles the
kernel for the next run, so a first step on an empty cache does not wait for them (3.6 s of
the classic network's cold first step).

Layouts are channel-major as in ``conv_algorithms``: the padded input xp (C_in, N, Hp, Wp),
the output and its gradient (C_out, N, OH, OW). Each thread makes one call of a kernel, which
claims chunks of tasks until none is left (``conv_compiled.share``); the kernels are plain
loops, which compile in half the time ``prange`` loops take (0.3-0.9 s more cold), and whose
threads wait for no workqueue launch. The input gradient runs the GEMM's
(``conv_algorithms.Gemm``): a first layer's input needs none.
"""

from __future__ import annotations

import functools
import types

import numpy as np

from ..core import jit, team
from . import conv_compiled, conv_generated
from . import conv_thin_source as source
from .conv_algorithms import Gemm
from .geometry import ConvGeometry

MAX_CHANNELS = 4  # input channels; wider layers run the GEMM or the direct convolution
LANE_BYTES = 64  # JB·itemsize: the output columns of one 512-bit vector
OUT_BLOCK = 8  # forward: output channels per task (16 ran 15% faster, compiled 2.3x as long)
BLOCK = 4, 5  # kernel gradient: OB output channels × TQ taps per pass over a sample
TASK_TERMS = 4096  # kernel gradient: about this many pixels summed per task and accumulator
FLAGS = {"contract"}  # fused multiply-adds; each output still sums in a fixed order
DTYPES = (np.float32, np.float64)

_kernels: dict[str, jit.Kernel] = {}


def fits(geometry: ConvGeometry, w_shape) -> bool:
    """Whether this layer is thin: one group of at most MAX_CHANNELS input channels."""
    return geometry.groups == 1 and w_shape[1] <= MAX_CHANNELS


def compiled(name: str, text, *shape) -> jit.Kernel:
    """The generated kernel ``name`` whose source is ``text(*shape)`` (compiled on its first
    call, cached on disk); the source is generated only then."""
    kernel = _kernels.get(name)
    if kernel is None:
        kernel = _kernels[name] = jit.kernel_from_source(name, text(*shape), False, FLAGS)
    return kernel


@functools.cache  # its callers' arrays are read, never written
def taps(geometry: ConvGeometry, c_in: int, ow: int) -> np.ndarray:
    """(2, K): for each kernel tap (c, p, q) in C order, its plane (c, q, p·dh mod sh) and the
    start ⌊p·dh / sh⌋·OW of its run there (see ``conv_thin_source``); the last tap repeated
    up to a multiple K of TQ."""
    (kh, kw), (sh, _), (dh, _) = geometry.kernel_size, geometry.stride, geometry.dilation
    c, p, q = np.indices((c_in, kh, kw)).reshape(3, -1)  # (3, C_in·kH·kW)
    table = np.stack([(c * kw + q) * sh + p * dh % sh, p * dh // sh * ow]).astype(np.int64)
    return np.pad(table, ((0, 0), (0, -table.shape[1] % BLOCK[1])), mode="edge")


def geometry_arguments(geometry: ConvGeometry, c_in: int, ow: int) -> tuple:
    """(sh, sw, dw, planes, OW): the kernels' arguments after the tap table."""
    kw, (sh, sw), dw = geometry.kernel_size[1], geometry.stride, geometry.dilation[1]
    return sh, sw, dw, c_in * kw * sh, ow


@functools.cache
def tiles(ow: int, jb: int) -> np.ndarray:
    """Starts of the tiles of JB columns covering OW ≥ JB; the last one starts at OW − JB,
    overlapping its neighbour when JB does not divide OW."""
    return np.array([min(t * jb, ow - jb) for t in range(-(-ow // jb))], np.int64)


def phased(xp: np.ndarray, geometry: ConvGeometry, width: int) -> np.ndarray:
    """xph (C, N, Hp, sw, Wr) from xp (C, N, Hp, Wp) (see the module), zeros past the input,
    with Wr ≥ ``width`` columns per phase."""
    sw = geometry.stride[1]
    c, n, hp, wp = xp.shape
    wr = max(-(-wp // sw), width)
    if sw == 1 and wr == wp:
        return np.ascontiguousarray(xp).reshape(c, n, hp, 1, wp)  # (C, N, Hp, 1, Wp)
    xph = np.zeros((c, n, hp, wr, sw), xp.dtype)
    xph.reshape(c, n, hp, wr * sw)[..., :wp] = xp  # (C, N, Hp, Wr·sw): the row, then zeros
    return np.ascontiguousarray(xph.transpose(0, 1, 2, 4, 3))  # (C, N, Hp, sw, Wr)


@functools.cache
def column_taps(geometry: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(phase, shift) of each kernel column q in the phased input: ``q·dw = shift·sw + phase``."""
    (_, kw), (_, sw), (_, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    offsets = np.arange(kw, dtype=np.int64) * dw
    return offsets % sw, offsets // sw


def correlate(xph, w, bias, geometry: ConvGeometry, out_size) -> np.ndarray | None:
    """y (C_out, N, OH, OW) = bias + the correlation of the phased input with w (C_out, C_in,
    kH, kW); None when its kernel is not ready (see the module)."""
    c_out, n = w.shape[0], xph.shape[1]
    (oh, ow), jb, ob = out_size, LANE_BYTES // xph.itemsize, OUT_BLOCK
    blocks = -(-c_out // ob)
    wpk = np.zeros((blocks * ob,) + w.shape[1:], w.dtype)  # (C_out/OB·OB, C_in, kH, kW)
    wpk[:c_out] = w
    wpk = wpk.reshape((blocks, ob) + w.shape[1:])  # (C_out/OB, OB, C_in, kH, kW)
    wpk = np.ascontiguousarray(wpk.transpose(0, 2, 3, 4, 1))  # (C_out/OB, C_in, kH, kW, OB)
    padded_bias = np.zeros(blocks * ob, xph.dtype)
    if bias is not None:
        padded_bias[:c_out] = bias
    wide = max(ow, jb)  # narrower images are computed one vector wide, then cut
    y = np.empty((blocks * ob, n, oh, wide), xph.dtype)  # (C_out/OB·OB, N, OH, max(OW, JB))
    phase, shift = column_taps(geometry)
    kernel = compiled(source.correlation_name(ob, jb), source.correlation_source, ob, jb)
    (sh, _), (dh, _) = geometry.stride, geometry.dilation
    starts = tiles(wide, jb)
    arguments = xph, wpk, padded_bias, starts, sh, dh, phase, shift, y
    if not conv_generated.ready(kernel, (*arguments, team.new_control(1))):
        return None
    conv_compiled.share(kernel, arguments, n * blocks)  # tasks: (sample, block of channels)
    if wide != ow:
        return np.ascontiguousarray(y[:c_out, :, :, :ow])
    return y[:c_out]  # a contiguous view


def kernel_gradient(gy, xp, geometry: ConvGeometry) -> np.ndarray | None:
    """gw (C_out, C_in, kH, kW) from gy (C_out, N, OH, OW) and xp (C_in, N, Hp, Wp); None
    when its kernel is not ready (see the module)."""
    c_out, n, oh, ow = gy.shape
    c_in, (kh, kw), (ob, tq) = xp.shape[0], geometry.kernel_size, BLOCK
    if n == 0:
        return np.zeros((c_out, c_in, kh, kw), gy.dtype)
    table = taps(geometry, c_in, ow)
    per_task = max(1, min(TASK_TERMS // (oh * ow), -(-n // (jit.get_threads() or 1))))
    bounds = np.array(list(range(0, n, per_task)) + [n], np.int64)
    blocks, groups = -(-c_out // ob), table.shape[1] // tq
    partial = np.zeros((len(bounds) - 1, blocks, groups, ob, tq), xp.dtype)
    name = source.kernel_gradient_name(ob, tq)
    kernel = compiled(name, source.kernel_gradient_source, ob, tq)
    gy3 = np.ascontiguousarray(gy).reshape(c_out, n, oh * ow)  # (C_out, N, OH·OW)
    xp = np.ascontiguousarray(xp)  # one compiled signature
    arguments = geometry_arguments(geometry, c_in, ow)
    arguments = gy3, xp, bounds, table, *arguments, partial
    if not conv_generated.ready(kernel, (*arguments, team.new_control(1))):
        return None
    conv_compiled.share(kernel, arguments, len(bounds) - 1)
    total = pairwise_sum(partial).transpose(0, 2, 1, 3)  # (C_out/OB, OB, K/TQ, TQ)
    total = total.reshape(blocks * ob, groups * tq)  # (C_out', K)
    return total[:c_out, : c_in * kh * kw].reshape(c_out, c_in, kh, kw)


def pairwise_sum(parts: np.ndarray) -> np.ndarray:
    """Σ over the first axis as a tree of additions (in place): rounding grows with its
    depth, log2 T, not with T."""
    count = parts.shape[0]
    while count > 1:
        half = count // 2
        parts[:half] += parts[count - half : count]
        count -= half
    return parts[0]


class ThinCompiled:
    """The direct forward and kernel gradient for thin inputs of float32 or float64; the
    GEMM's input gradient, and the GEMM's passes for other dtypes or while a kernel is not
    ready (see the module)."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        direct = geometry.kernel_size == (1, 1) and geometry.stride == (1, 1)
        xp = np.ascontiguousarray(xp)  # (C_in, N, Hp, Wp): thin, so a small copy if any
        ctx.xp, ctx.w, ctx.geometry, ctx.direct = xp, w, geometry, direct  # as Gemm's
        if xp.dtype not in DTYPES:
            return Gemm.forward(ctx, xp, w, b, geometry)
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        shift = column_taps(geometry)[1][-1]
        xph = phased(xp, geometry, max(ow, LANE_BYTES // xp.itemsize) + shift)
        y = correlate(xph, w, b, geometry, (oh, ow))  # (C_out, N, OH, OW)
        return Gemm.forward(ctx, xp, w, b, geometry) if y is None else y

    @staticmethod
    def backward(ctx, gy):
        need_x, need_w, _ = ctx.needs_input_grad
        gw = gxp = None
        if need_w and gy.dtype in DTYPES:
            gw = kernel_gradient(gy, ctx.xp, ctx.geometry)
        rest = (need_x, need_w and gw is None, False)
        if any(rest):  # the GEMM's backward for the passes left to it
            gemm = types.SimpleNamespace(
                xp=ctx.xp, w=ctx.w, geometry=ctx.geometry, direct=ctx.direct, needs_input_grad=rest
            )
            gxp, gemm_w = Gemm.backward(gemm, gy)
            gw = gw if gemm_w is None else gemm_w
        return gxp, gw
