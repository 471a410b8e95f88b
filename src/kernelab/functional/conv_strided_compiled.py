"""The input gradient of strided convolutions, direct: no column matrix, no col2im.

At stride s the input pixel (y, x) of the padded input (v = y + top, u = x + left) receives
``Σ w[o, c, p, q] · gy[o, s, i, j]`` over the taps with ``v = i·sh + p·dh`` and
``u = j·sw + q·dw``: only the taps whose offset has the pixel's phase (v mod sh, u mod sw)
reach it, a stride-1 correlation of gy with a sub-kernel per phase. Run as four separate
correlations of 2x2, 2x1, 1x2 and 1x1 sub-kernels (3x3 at stride 2) the micro-kernels were
load-bound (1x1: 31 GFLOP/s) and lost to the GEMM (``bench/CONV_DIRECT.md``, "Phases").
Here one micro-kernel computes a tile of JB consecutive input columns of *every* horizontal
phase at once: the generated body knows, per tile column t, which kernel columns q reach it
and which gy column they read (the tile starts at a multiple of sw, so that is fixed by
``left mod sw``, baked in as ``r``), so the kW weight vectors of a kernel row are loaded
once and each gy pixel once for all the tile's columns that read it (3x3 at stride 2: 21
FMAs from 3 weight vectors and 8 pixels). The rows' phases are a loop over the kernel rows
that reach the row (an argument: one kernel serves every kernel height and vertical stride).

Layouts: gy (C_out, N, OH, OW), channel-major as in ``conv_algorithms`` or a view of
batch-first memory, read in place: each thread copies the sample it works on into a frame of
its own, zero columns on both sides (so every constant offset is inside it; one sample's 57
KB at ResNet sizes, which stays in the cache; a frame of the whole batch, written by a pass
of its own before the kernels, took 15-20% of their time); the kernel packed as (C_in/CB,
C_out, kH, kW, CB); gx unpadded, (C_in, N, H, W) or batch-first (N, C_in, H, W) memory for a
batch-first input, as the GEMM's col2im writes it. A task is one (sample, block of CB input
channels); each thread makes one call, which claims chunks of tasks until none is left
(``conv_compiled.share``: a thread that starts late or loses its core takes fewer; a plain
loop compiles faster than a ``prange`` one). The sums run over
output channels in blocks of C_out / (the most kernel offsets that reach a pixel, 4 at 3x3 of
stride 2) channels, each from zero, then added into the tile: at most C_out terms a block,
as the GEMM's column gradients sum. Blocks twice as long had 1.44x the GEMM's float32 error
at ``k3_stride2`` (3.2e-7 against 2.2e-7; these 2.24e-7), for about 5% more speed.
"""

from __future__ import annotations

import numpy as np

from ..core import jit, team
from . import conv_compiled
from .conv_direct_source import HEADER, names, store_tile
from .conv_generated import BLOCK_BYTES, FLAGS, VECTOR_BYTES, pack, ready
from .conv_thin_source import CLAIM, claimed
from .geometry import ConvGeometry

# JB, input columns per tile, from these rounded to multiples of sw (see tiles). With AVX-512,
# tiles of 16 (16 accumulators, the kW weight vectors and the broadcasts fit the 32 vector
# registers) measured 1.15-1.2x faster than two of 8 at ResNet-8's 16- and 32-wide inputs;
# with AVX2 a column's CB channels take two of the 16 registers: at most 6 columns
WIDTHS = (8, 14, 16) if VECTOR_BYTES == 64 else (4, 6)
MAX_STRIDE = 7 if VECTOR_BYTES == 64 else 3  # a tile (WIDTHS) holds 2 columns of each phase

_kernels: dict[str, jit.Kernel] = {}


def name(cb: int, jb: int, sw: int, dw: int, kw: int, r: int) -> str:
    """The driver's name in :func:`source`."""
    return f"strided_gradient_c{cb}_j{jb}_s{sw}_d{dw}_k{kw}_r{r}"


def reach(jb: int, sw: int, dw: int, kw: int, r: int) -> list[tuple[int, int, int]]:
    """(q, t, k): kernel column q reaches tile column t from the frame's column ``o + k``,
    o the tile's first column divided by sw; ``lead(sw, dw, kw)`` zero columns before gy."""
    out = []
    for q in range(kw):
        for t in range(jb):
            if (r + t - q * dw) % sw == 0:
                out.append((q, t, (r + t - q * dw) // sw + lead(sw, dw, kw)))
    return out


def lead(sw: int, dw: int, kw: int) -> int:
    """Frame columns a tile may read before its first column's gy column: ⌈(kW − 1)·dw / sw⌉."""
    return -(-(kw - 1) * dw // sw)


def source(cb: int, jb: int, sw: int, dw: int, kw: int, r: int) -> str:
    """A kernel ``(gy, strides, shape, wpk, starts, top, left, sh, dh, oc, batch_first, gx,
    control)``::

        gx[c, s, y, x] = Σ_{o,p,q} wpk[c // CB, o, p, q, c % CB] · gy[o, s, i, j]

    over ``y + top = i·sh + p·dh``, ``x + left = j·sw + q·dw``, for gy flat (1-D) with
    ``strides`` (sample, channel) in elements and ``shape`` (OH, OW, shift, OWf): each
    thread frames the sample it works on, (C_out, OH, OWf) with gy's column j at ``j +
    shift`` (see :func:`input_gradient`); wpk (C_in/CB, C_out, kH, kW, CB) and gx (C_in, N,
    H, W), or (N, C_in, H, W) when ``batch_first``; tiles of JB columns start at ``starts``
    (multiples of sw), ``left ≡ r`` (mod sw). The sums run over (p, o, q) in blocks of
    ``oc`` output channels.
    """
    taps = reach(jb, sw, dw, kw, r)
    body = [
        "@block",
        "def tile_sums(frame, wpk, zero, cblk, v, x0, sh, dh, tile, oc):",
        "    c_out, kh, oh = frame.shape[0], wpk.shape[2], frame.shape[1]",
        f"    o = np.uint64(x0 // {sw})",
    ]
    body += [f"    u{k} = np.uint64({k})" for k in sorted({k for _, _, k in taps} - {0})]
    body += ["    for o0 in range(0, c_out, oc):"]
    body += [f"        {names(f'a{t}_', cb)} = {names('zero[', cb, ']')}" for t in range(jb)]
    body += [
        # the kernel rows that reach input row v, outside the channel loop: a division
        # per (channel, row) had cost more than the row's FMAs
        "        for p in range(kh):",
        "            i = (v - p * dh) // sh",
        "            if v - p * dh < 0 or i * sh != v - p * dh or i >= oh:",
        "                continue",
        "            for c in range(o0, min(o0 + oc, c_out)):",
        "                gr, wr = frame[c, i], wpk[cblk, c, p]",
    ]
    for q in range(kw):
        reached = [(t, k) for tap, t, k in taps if tap == q]
        if reached:
            body.append(f"                {names('w', cb)} = {names(f'wr[{q}, ', cb, ']')}")
        for t, k in reached:
            body.append(f"                x = gr[o + u{k}]" if k else "                x = gr[o]")
            body += [f"                a{t}_{b} += x * w{b}" for b in range(cb)]
    body += store_tile("o0 == 0", jb, cb)
    return CLAIM + HEADER + "\n".join(body) + "\n\n" + _driver(cb, jb, sw, dw, kw, r)


def _driver(cb: int, jb: int, sw: int, dw: int, kw: int, r: int) -> str:
    """The driver of :func:`source`: the tasks (sample, block of CB channels), in that order,
    that it claims (``conv_thin_source.claimed``)."""
    return f"""
def {name(cb, jb, sw, dw, kw, r)}(gy, strides, shape, wpk, starts, top, left, sh, dh, oc,
                                  batch_first, gx, control):
    blocks, c_out = wpk.shape[0], wpk.shape[1]
    n, c_in = (gx.shape[0], gx.shape[1]) if batch_first else (gx.shape[1], gx.shape[0])
    h, w = gx.shape[2], gx.shape[3]
    oh, ow, shift, width = shape[0], shape[1], shape[2], shape[3]
    tile, zero = np.empty(({jb}, {cb}), gx.dtype), np.zeros({cb}, gx.dtype)
    # the sample framed last, zeros around gy's columns into:end (they stay zero)
    frame, framed = np.zeros((c_out, oh, width), gx.dtype), -1
    into, end = max(0, shift), min(width, shift + ow)
""" + claimed(
        "n * blocks",
        f"""s, cblk = task // blocks, task % blocks
if s != framed:
    for c in range(c_out):
        for i in range(oh):
            src = gy[s * strides[0] + c * strides[1] + i * ow + into - shift :]
            line = frame[c, i, into:]
            for j in range(end - into):  # indexed from 0: vectorised, no index checks
                line[j] = src[j]
    framed = s
for y in range(h):
    for k in range(starts.shape[0]):
        x0 = starts[k]
        tile_sums(frame, wpk, zero, cblk, y + top, x0, sh, dh, tile, oc)
        stop = min({jb}, w - x0)
        # a row's run indexed from 0 by the loop counter: indexed as gx[c, s, y, x]
        # per pixel, these copies took as long as the sums
        for b in range(min({cb}, c_in - cblk * {cb})):
            c = cblk * {cb} + b
            run = gx[s, c, y, x0:] if batch_first else gx[c, s, y, x0:]
            for t in range(stop):
                run[t] = tile[t, b]
""",
    )


def tiles(width: int, sw: int) -> tuple[int, np.ndarray]:
    """(JB, starts): tiles of JB columns (a multiple of sw) whose starts are multiples of sw
    and cover ``width`` columns with the fewest computed; the last one may overlap its
    neighbour or run past the edge (its columns there are not stored)."""
    widths = sorted({max(sw, jb // sw * sw) for jb in WIDTHS})
    best = None
    for jb in widths:
        last = -(-max(0, width - jb) // sw) * sw  # the last start, rounded up to a multiple
        starts = sorted({min(t * jb, last) for t in range(-(-width // jb))})
        if best is None or len(starts) * jb <= len(best[1]) * best[0]:  # ties: fewer tiles
            best = jb, starts
    return best[0], np.array(best[1], np.int64)


def kernel(dtype, width: int, sw: int, dw: int, kw: int, left: int) -> jit.Kernel:
    """The kernel for an input gradient ``width`` columns wide (see :func:`source`)."""
    cb = BLOCK_BYTES // np.dtype(dtype).itemsize
    shape = cb, tiles(width, sw)[0], sw, dw, kw, left % sw
    key = name(*shape)
    if key not in _kernels:
        _kernels[key] = jit.kernel_from_source(key, source(*shape), False, FLAGS)
    return _kernels[key]


def suits(geometry: ConvGeometry) -> bool:
    """Whether the kernels here run this layer's input gradient: strided (not 1x1), one
    group, horizontal stride at most MAX_STRIDE."""
    return (
        geometry.stride != (1, 1)
        and geometry.groups == 1
        and geometry.stride[1] <= MAX_STRIDE
        and geometry.kernel_size != (1, 1)
    )


def routes(geometry: ConvGeometry, w_shape) -> bool:
    """Whether ``conv_direct_compiled.passes`` gives a layer's input gradient to these
    kernels: stride 2 from 4 taps, stride 3 from 9, where they measured faster than the
    GEMM's products and col2im (``bench/CONV_DIRECT.md``, "Strided input gradient"; one
    thread, CPU time, time / PyTorch's: 3x3 0.58 against 0.78, 2x2 0.57-0.61 against
    0.59-0.64, 5x5 0.71 against 1.27, 3x3 at dilation 2 0.59 against 0.76, 3x3 at stride 3
    0.46-0.52 against 0.58-0.60). Wider strides and thinner kernels (a pixel reached by one
    offset or none) were not measured."""
    taps, stride = w_shape[2] * w_shape[3], max(geometry.stride)
    return suits(geometry) and ((stride <= 2 and taps >= 4) or (stride == 3 and taps >= 9))


def compiled_for(xp_shape, dtype, geometry: ConvGeometry) -> bool:
    """Whether this layer's kernel may run in this process (``conv_generated.ready``:
    in numba's cache, or ``KERNELAB_DIRECT_CONV=1``)."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        return False
    width = xp_shape[3] - sum(geometry.padding[1])
    (_, kw), (_, sw), (_, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    chosen = kernel(dtype, width, sw, dw, kw, geometry.padding[1][0])
    return ready(chosen, _examples(dtype))


def _examples(dtype) -> tuple:
    """Arguments of the types the kernel is called with."""
    index, one = np.zeros(1, np.int64), np.zeros(1, dtype)
    four, five = np.zeros((1,) * 4, dtype), np.zeros((1,) * 5, dtype)
    return one, index, index, five, index, 1, 1, 1, 1, 1, 0, four, team.new_control(1)


def input_gradient(gy, w, geometry: ConvGeometry, size, batch_first=False):
    """gx (C_in, N, H, W) for an input of ``size`` (H, W), from gy (C_out, N, OH, OW)
    (channel-major or a view of batch-first memory) and w (C_out, C_in, kH, kW); with
    ``batch_first`` a view of batch-first memory (N, C_in, H, W)."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    top, left = geometry.padding[0][0], geometry.padding[1][0]
    c_out, n, oh, ow = gy.shape
    c_in, (h, width) = w.shape[1], size
    cb = BLOCK_BYTES // gy.itemsize
    jb, starts = tiles(width, sw)
    # frame column of gy's column j: j + shift; a tile at x0 reads o = x0 / sw onwards
    shift = lead(sw, dw, kw) - (left - left % sw) // sw
    frame_width = int(starts[-1]) // sw + (left % sw + jb - 1) // sw + lead(sw, dw, kw) + 1
    shape = np.array([oh, ow, shift, frame_width], np.int64)
    flat, strides = flat_samples(gy)
    wpk = pack(w.transpose(1, 0, 2, 3), cb)  # (C_in/CB, C_out, kH, kW, CB)
    gx = np.empty((n, c_in, h, width) if batch_first else (c_in, n, h, width), gy.dtype)
    # blocks of the sums (see the module): at most C_out terms, as the GEMM's column gradients
    blocks = most_taps(kh, sh, dh) * most_taps(kw, sw, dw)  # the most offsets that reach a pixel
    oc = -(-c_out // blocks)
    chosen = kernel(gy.dtype, width, sw, dw, kw, left)
    arguments = flat, strides, shape, wpk, starts, top, left, sh, dh, oc, int(batch_first), gx
    conv_compiled.share(chosen, arguments, n * -(-c_in // cb))  # (sample, block of CB channels)
    return gx.transpose(1, 0, 2, 3) if batch_first else gx  # (C_in, N, H, W)


def most_taps(k: int, s: int, d: int) -> int:
    """The most kernel offsets along an axis (k taps, stride s, dilation d) that reach one
    input pixel: those of one phase, ``q·d mod s`` equal."""
    return max(sum(1 for q in range(k) if q * d % s == phase) for phase in range(s))


def flat_samples(gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat, strides): gy (C_out, N, OH, OW) as one run of memory and the (sample, channel)
    strides in it, in elements: its own memory if channel-major or batch-first, else (or if
    read-only, a type of its own to numba) a channel-major copy. One array type, so one
    compiled signature, for both layouts."""
    c_out, n, oh, ow = gy.shape
    samples = gy.transpose(1, 0, 2, 3)  # (N, C_out, OH, OW)
    if samples.flags.c_contiguous and samples.flags.writeable:
        return samples.reshape(-1), np.array([c_out * oh * ow, oh * ow], np.int64)
    gy = np.ascontiguousarray(gy) if gy.flags.writeable else gy.copy()  # (C_out, N, OH, OW)
    return gy.reshape(-1), np.array([oh * ow, n * oh * ow], np.int64)
