"""Direct convolution through generated, register-blocked micro-kernels: no column matrix.

The micro-kernels (``conv_direct_source.py``) hold a block of CB output channels × JB output
columns in scalar accumulators that LLVM keeps in vector registers. CB·itemsize is 64 bytes
(16 float32 or 8 float64 channels: one AVX-512 register, two AVX2 ones), so the kernel offset's
weights for a block are one contiguous load; the kernel gradient's is 128 bytes where C_out
allows and the machine has AVX-512 (:func:`gradient_block`). JB and the kernel gradient's
channels per block are sized by the machine's vector registers (``conv_generated.VECTOR_BYTES``):
AVX2 has half as many, of half the width. Layouts, channel-major as in ``conv_algorithms``:

* every pass reads its input unpadded, x (C_in, N, H, W) channel-major or a view of
  batch-first memory (a network's input), as it comes: each thread copies the planes of the
  sample it works on into a zero-framed (C_in, Hp, Wp) buffer of its own, which stays in its
  core's cache, and runs the micro-kernel there. A whole padded copy (``conv.pad``) had been
  a memory-bound pass before every layer, slower at two threads than at one (ResNet-8's
  inference: 3.9 ms of CPU a step, 5.3 ms wall at two threads), and was kept for the
  backward.
* forward: the kernel repacked
  (C_out/CB, C_in, kH, kW, CB), output channels zero-padded to a multiple of CB. Each sum
  over K = C_in·kH·kW is taken in blocks of about ``conv_direct_source.K_BLOCK`` terms
  (whole input channels), each from zero, as BLAS takes its products' sums.
* input gradient (stride 1): the *full* correlation of the output gradient, zero-padded by
  ``d·(k−1)`` on every side (framed a sample at a time, as above), with the 180°-rotated,
  transposed kernel (C_in, C_out, kH, kW): the forward's micro-kernel again. Only the
  unpadded input's pixels are computed, and returned without the padding (``Conv2d`` takes
  it so): at 14x14 with a 5x5 kernel the padded plane is 1.7x larger.
* kernel gradient: a sum over N·OH·OW, taken in blocks as BLAS takes it: each run of about
  K_BLOCK of a sample's terms (whole output rows) from zero in the accumulators, added into
  its task's partial kernel (T, C_out/CB,
  C_in, kH, kW, CB), the T partials added pairwise. Each sample's output gradient is
  repacked channels innermost, (C_out/CB, OH, OW, CB), by the thread that sums it, into a
  buffer of its own, for the same contiguous (CB,) loads.

Each generated kernel is a team kernel (``core/team.py``): the calling thread and the team's
spinning helpers make one call each a pass (``conv_compiled.share``), each claiming chunks of
tasks as it comes free, with buffers of its own, where one ``prange`` launch a pass had woken
numba's workers each time (an empty 2-thread launch: 164 us back to back, 270-334 us after
Python). A task is a sample (or a part of its blocks of CB output channels,
with few samples) for the correlations, framed once per task, a run of samples for the
kernel gradient (RUNS). A pass another algorithm measured faster at
(see :func:`passes`) runs Winograd's or the GEMM's (:class:`DirectCompiled`).

Compilation, and what it means for reproducibility. A generated kernel (one per dtype, kernel
width, horizontal stride, tile width and, for the correlation, horizontal dilation) takes 5-20
s to compile cold, where the GEMM needs none, so by default a process runs a pass direct only
if the pass's kernel is already in numba's on-disk cache when the layer first runs
(:func:`ready`). If it is not, the pass runs the GEMM's for the rest of the process and a
background process compiles the kernel into the cache (``jit.compile_in_background``), for
the next process. So the first training step never
waits for these compilations, and within one process a layer always takes the same path: its
numbers are reproducible run to run *given the cache's state*, but a process started with an
empty cache computes with the GEMM where a later one computes direct. The two agree to
float32 rounding (a 3x3 forward to the bit), not bit for bit; processes that must compute
alike (the ranks of one distributed run, a rerun compared bit for bit) should set the mode
explicitly. ``KERNELAB_DIRECT_CONV``:
unset (or ``auto``) is that default; ``1`` always runs the direct passes, compiling on first
call in the process if needed (the same path whatever the cache holds); ``0`` never does (the
GEMM's numbers, as before the direct convolution).
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np

from ..core import jit, team
from . import conv_compiled, conv_winograd
from . import conv_direct_source as source
from . import conv_strided_compiled as strided
from .conv import pad
from .conv_algorithms import Gemm, contiguous
from .conv_generated import BLOCK_BYTES, FLAGS, VECTOR_BYTES, mode, pack, ready
from .geometry import ConvGeometry

WIDE_BLOCK_BYTES = 128  # the kernel gradient's CB·itemsize where C_out allows (gradient_block)
# JB, output columns per tile. With AVX-512, CB·JB accumulators fill at most 14 of the 32
# vector registers: 14 fits 14 and 28 columns; 8 fits 8, 16 and 32 (and 18 or 30 best).
# Measured no faster: tiles of 7 (fewer accumulators than FMA latency needs in flight). With
# AVX2 a column's CB channels take two of the 16 registers: 4 columns, 8 registers (32→64
# channels, 28x28, one thread, CPU time, Zen 3: 3x3 forward 4.00x → 1.07x PyTorch's time,
# 5x5 2.34x → 1.24x, against tiles of 8 and 14 that spilled; blocks of 8 float32 channels in
# tiles of 8 or 12 columns: 1.43x and 1.21x). Tiles of 5 or 6 columns took 1.15-1.7x the
# time of 4 at ResNet-8's 3x3 layers and 5x5 ones at 14x14 and 28x28
COLUMNS = (8, 14) if VECTOR_BYTES == 64 else (4,)
# Narrower last tiles: with AVX2, 2 columns (4 accumulators, no spills) cost less than a
# whole tile of 4 overlapping its neighbour by 2 (the classic network's conv2, 5x5 at 14x14,
# N=256, one thread: 1.25-1.39x PyTorch's forward time against 1.43-1.45x, the same numbers
# to the bit); tails of 1 or 3 columns measured slower than the overlap (3x3, 13x13, 15x15)
TAILS = () if VECTOR_BYTES == 64 else (2,)
# With AVX2, where a tile of 4 columns would span more than FRESH_PIXELS pixels of a kernel
# row (7x7 kernels, 3x3 at stride 2), tiles of 6 columns (12 accumulators, tails of 2 and 4)
# whose kernel columns load their pixels afresh (``fresh`` in conv_direct_source): tiles of
# 4 held a kernel row's pixels for all their FMAs (AVX2's FMAs take no broadcast from
# memory), and spilled them (9 of a 7x7 row's 10), and their 8 accumulators each took a new
# FMA every 4 cycles, the FMA's latency, leaving the scheduler no slack. 32→64 channels,
# 28x28, forward, CPU time: 7x7 at one thread, alternating processes, 134-159 ms against
# 153-189 (PyTorch's 110-131), 14x14 (N=256) 150-153 against 159-162; 3x3 at stride 2,
# interleaved in one process, medians 0.88x PyTorch's time against 1.40x at two threads,
# 1.02-1.05x against 1.12-1.21x at one; ResNet-8's stride-2 layers alike or faster. Not
# where the row spans 8 (5x5: alone 7-10% faster at one thread, but the k5 case at two
# threads and the classic network's step alike within the noise) or fewer (3x3: tiles of 6
# alike, tiles of 4 loading afresh 1.1-1.6x slower); bench/CONV_DIRECT.md
FRESH_PIXELS = 8
FRESH_COLUMNS, FRESH_TAILS = (6,), (2, 4)
# CC = ⌈TAPS / kW⌉ input channels per kernel-gradient block, so CC·kW ≥ TAPS accumulators
# (enough FMAs in flight); ⌈16 / kW⌉ measured no faster and took twice as long to compile
TAPS = 8
# and at most PAIR_REGISTERS // (vectors per channel block) (c, q) pairs where a block of
# channels takes more than one register: 24 of AVX-512's 32 registers (the wide block: 14
# pairs, 7x7 kernels, spilled, at 0.57x the speed of 7), 12 of AVX2's 16 (5x5 kernel gradient
# 2.32x → 1.10x PyTorch's time, 3x3 1.87x → 1.09x, against 8 pairs and more)
PAIR_REGISTERS = 24 if VECTOR_BYTES == 64 else 12
# With AVX2, where a kernel gradient's accumulators fill PAIR_REGISTERS (2x2
# and 3x3 kernels: 6 pairs of two vectors), each pair loads its pixel afresh (``fresh`` in
# conv_direct_source): with 2 registers left for the pairs' 6 pixels, LLVM had loaded them
# all first and spilled them. 32→64 channels, 28x28, one thread, CPU time, interleaved in
# one process, medians against PyTorch's: 3x3 0.80x (1.02x before), at stride 2 1.05x
# (1.29x; at two threads 1.05x against 1.77x), 2x2 1.15x (1.37x); ResNet-8's 3x3 layers
# 0.85-1.25x (1.04-1.55x); the same numbers to the bit. Fewer accumulators keep their
# loads: 5x5 (10) 1.19x against 0.99x.

# The generated drivers' tasks are claimed in chunks by whichever thread is free: a thread
# whose core another program takes for a while then takes fewer, where equal shares would
# make the pass wait for it (two cores shared with other jobs, as on the bench machine);
# a correlation splits a sample's blocks of output channels into parts when it has fewer than
# this many samples a thread
TASKS_PER_THREAD = 4
# The kernel gradient's runs of samples, each summed into a partial kernel of its own and
# taken by whichever thread is free: one run a thread made a pass wait for a thread whose
# core another program held. RUNS, 4 a thread at two threads, whatever the thread count (so
# one and two threads give the same numbers), one a thread at least; fewer (2 at least)
# where their partial kernels would outgrow PARTIAL_BYTES, which are zeroed and added
RUNS = 8
PARTIAL_BYTES = 2 << 20

_kernels: dict[str, jit.Kernel] = {}
WINOGRAD_FORWARD_CHANNELS = 128  # from this many channels in and out, see passes


class Passes(NamedTuple):
    """Which passes run the direct convolution (the others run the GEMM's)."""

    forward: bool
    input_gradient: bool
    kernel_gradient: bool


def passes(geometry: ConvGeometry, w_shape) -> Passes:
    """The passes where the direct convolution measured fastest (``bench/CONV_DIRECT.md``,
    "Routing per pass": float32, N=64, 32→64 channels, 28x28; time against PyTorch's, one
    thread, CPU time; the GEMM's and Winograd's beside it):

    * forward from 2x2 kernels, stride 2 and dilation 2 included: 1.02-1.17x PyTorch's time
      where the GEMM took 1.6-1.85x and Winograd F(2x2, 3x3) 1.23x; but Winograd's at
      stride-1 3x3 layers of 128 channels and more; at 1x1 the GEMM, whose product needs no
      im2col (0.71x against 1.30x);
    * input gradient at stride 1 from 4x4: 1.10-1.43x (GEMM 1.5-1.8x; dilation 2 from 4x4:
      1.22-1.45x, GEMM 1.53-1.85x); below 3x3 too since the unrolled loads (2x2: 0.79x
      against the GEMM's 1.25x; the GEMM had led before them, 1.27x against 1.83x); at 3x3 direct
      (0.90x against Winograd's 0.98x; ResNet-8's step 1% faster at one thread, 3-5% at
      two, where Winograd's tiles gain little from the second core) but Winograd's with its
      forward from 128 channels (:func:`winograd_route`), with dilation 2 direct too
      (1.03x against the GEMM's 1.23x); at strides 2 and 3 direct too, every phase in one
      micro-kernel (``conv_strided_compiled.routes``: 3x3 0.58x against the GEMM's 0.78x);
    * kernel gradient from 2x2, any stride and dilation: 0.88-1.24x (GEMM 1.32-2.15x); at
      1x1 a tie, which keeps the GEMM.

    Thinner layers, which were not measured, keep the GEMM. None with
    ``KERNELAB_DIRECT_CONV=0``. Whether a pass's kernel is compiled yet is :func:`usable`'s
    question, not this one's.
    """
    c_out, c_in = w_shape[:2]
    taps = w_shape[2] * w_shape[3]
    if mode() == "off" or geometry.groups != 1 or c_in < 16 or c_out < 16:
        return Passes(False, False, False)
    plain = geometry.stride == (1, 1) and geometry.dilation == (1, 1)
    # Winograd's forward measured 1.25x the direct one's speed at 128 channels (8x8), 0.92-0.94x
    # at 32-64 (bench/CONV_DIRECT.md, the Winograd section)
    winograd_forward = plain and taps == 9 and min(c_in, c_out) >= WINOGRAD_FORWARD_CHANNELS
    # the 3x3 input gradient: direct 0.90x PyTorch's time, Winograd's 0.98x, since the direct
    # kernels load each input pixel once per kernel row (bench/CONV_DIRECT.md)
    three = plain and taps == 9 and not winograd_forward
    # dilated, stride 1, from 4x4: 0.67-0.95x the GEMM's time (bench/CONV_DIRECT.md, "Phases");
    # 3x3 with dilation 2 since the unrolled loads: 0.84x (bench/CONV_DIRECT.md, "Strided
    # and dilated layers")
    dilated = geometry.stride == (1, 1) and geometry.dilation != (1, 1) and taps == 9
    # from 2x2 at stride 1: 0.79x PyTorch's time against the GEMM's 1.25x at 2x2 since the
    # unrolled loads (bench/conv_routing.py, one thread; with dilation 2 0.77x against 1.10x)
    small = geometry.stride == (1, 1) and 4 <= taps < 9  # smaller ones were not measured
    gradient = (geometry.stride == (1, 1) and taps >= 16) or three or dilated or small
    gradient = gradient or strided.routes(geometry, w_shape)
    return Passes(taps >= 4 and not winograd_forward, gradient, taps >= 4)


def usable(wanted: Passes, xp_shape, dtype, geometry: ConvGeometry, c_out: int = 0) -> Passes:
    """The ``wanted`` passes whose kernels are :func:`ready` for xp (C_in, N, Hp, Wp) and
    ``c_out`` output channels (0: not known, the kernel gradient's narrow block); none for
    dtypes other than float32 and float64 (never measured, and an int8 block would hold 64
    channels)."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        return Passes(False, False, False)
    (_, kw), (_, sw), (_, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    ow = geometry.output_size(*xp_shape[2:], padded=True)[1]
    width = xp_shape[3] - sum(geometry.padding[1])  # the input gradient's output width
    correlation, gradient = _examples(dtype)
    if geometry.stride != (1, 1):  # every phase in one kernel (conv_strided_compiled)
        input_gradient = wanted.input_gradient and strided.compiled_for(xp_shape, dtype, geometry)
    else:
        input_gradient = wanted.input_gradient and ready(
            correlation_kernel(dtype, width, 1, dw, kw), correlation
        )
    return Passes(
        wanted.forward and ready(correlation_kernel(dtype, ow, sw, dw, kw), correlation),
        input_gradient,
        wanted.kernel_gradient and ready(gradient_kernel(dtype, sw, kw, c_out), gradient),
    )


def _examples(dtype) -> tuple[tuple, tuple]:
    """Arguments of the types the correlation and the kernel gradient are called with."""

    def array(ndim, kind=dtype):
        return np.zeros((1,) * ndim, kind)

    index, frame = array(1, np.int64), (array(4), 0, 0, 0, 1, 1)  # x, layout, origin, size
    control = team.new_control(1)
    correlation = *frame, array(5), array(1), index, 1, 1, 1, 1, 0, array(4), control
    sums = np.zeros((1, 1))  # (N, C_out), float64 whatever the dtype
    return correlation, (array(4), 0, sums, *frame, index, 1, 1, 1, array(6), control)


def compiled(name_of, source_of, shape: tuple[int, ...]) -> jit.Kernel:
    """The generated kernel ``name_of(*shape)`` (compiled on its first call, cached on disk).
    Its source is generated only the first time: that took 0.1-0.2 ms a call, 17% of a
    3x3 stride-2 layer's time."""
    name = name_of(*shape)
    kernel = _kernels.get(name)
    if kernel is None:
        kernel = _kernels[name] = jit.kernel_from_source(name, source_of(*shape), False, FLAGS)
    return kernel


def correlation_kernel(dtype, ow: int, sw: int, dw: int, kw: int) -> jit.Kernel:
    """The correlation's kernel for an output ``ow`` wide (see :func:`correlate`)."""
    cb = BLOCK_BYTES // np.dtype(dtype).itemsize
    tiles = tiling(kw, sw, dw)
    jb, _, tail = column_tiles(max(ow, min(tiles.columns)), tiles)
    shape = cb, jb, sw, dw, kw, tail, tiles.fresh
    return compiled(source.correlation_name, source.correlation_source, shape)


class Tiling(NamedTuple):
    """The correlation's tiles of output columns: their widths, the narrower last ones', and
    whether their kernel columns load their pixels afresh (see FRESH_PIXELS)."""

    columns: tuple[int, ...]
    tails: tuple[int, ...]
    fresh: bool


def tiling(kw: int, sw: int, dw: int) -> Tiling:
    """The tiles of a correlation by a kernel ``kw`` wide at horizontal stride ``sw`` and
    dilation ``dw``."""
    spans = (COLUMNS[0] - 1) * sw + (kw - 1) * dw + 1  # pixels of a kernel row, tile of 4
    if VECTOR_BYTES == 32 and spans > FRESH_PIXELS:
        return Tiling(FRESH_COLUMNS, FRESH_TAILS, True)
    return Tiling(COLUMNS, TAILS, False)


def gradient_kernel(dtype, sw: int, kw: int, c_out: int = 0) -> jit.Kernel:
    """The kernel gradient's kernel (see :func:`kernel_gradient`) for ``c_out`` channels."""
    cb = gradient_block(dtype, c_out, kw)
    cc = -(-TAPS // kw)  # a fixed count: fewer channels would be another compiled kernel
    vectors = cb * np.dtype(dtype).itemsize // VECTOR_BYTES  # per (channel, column) pair
    cc = min(cc, max(1, PAIR_REGISTERS // vectors // kw))
    # AVX2: pixels loaded afresh where the accumulators fill PAIR_REGISTERS (see there)
    fresh = VECTOR_BYTES == 32 and cc * kw * vectors >= PAIR_REGISTERS
    shape = cb, cc, sw, kw, fresh
    return compiled(source.kernel_gradient_name, source.kernel_gradient_source, shape)


def gradient_block(dtype, c_out: int, kw: int) -> int:
    """CB of the kernel gradient: with AVX-512, two vectors of channels (WIDE_BLOCK_BYTES)
    where C_out is a multiple of them, else one. Each input pixel's broadcast then feeds two
    FMAs: the pass was bound by its loads (one per FMA), and ran 1.2-1.3x faster at 32→64
    channels (``bench/CONV_DIRECT.md``); layers of 16 float32 channels keep one vector, which
    wastes none. With AVX2, BLOCK_BYTES is already two vectors; one where a kernel row's kW
    pairs of them would outgrow PAIR_REGISTERS (7x7, 32→64 channels, 28x28, one thread: 337
    → 205 ms of CPU; 5x5 kept two: 73 against 87 ms)."""
    itemsize = np.dtype(dtype).itemsize
    if VECTOR_BYTES == 64:
        wide = c_out > 0 and c_out * itemsize % WIDE_BLOCK_BYTES == 0
        return (WIDE_BLOCK_BYTES if wide else BLOCK_BYTES) // itemsize
    fits = kw * BLOCK_BYTES // VECTOR_BYTES <= PAIR_REGISTERS
    return (BLOCK_BYTES if fits else VECTOR_BYTES) // itemsize


def column_tiles(ow: int, tiles: Tiling) -> tuple[int, np.ndarray, int]:
    """(JB, starts, tail): tiles of JB in ``tiles.columns`` covering OW ≥ the least of them,
    the JB that computes the fewest extra columns. The last OW mod JB columns take a narrower
    tile of their own (``tail``) where that is in ``tiles.tails``; otherwise the last tile
    starts at ``OW − JB``, overlapping its neighbour."""
    fitting = [width for width in tiles.columns if width <= ow]
    jb = min(fitting, key=lambda width: (-(-ow // width) * width, -width))
    tail = ow % jb if ow % jb in tiles.tails else 0
    starts = [min(t * jb, ow - jb) for t in range(-(-(ow - tail) // jb))]
    return jb, np.array(starts, np.int64), tail


def correlate(
    x, origin, size, w, bias, stride, dilation, y, block=source.K_BLOCK, batch_first=False
) -> None:
    """``y[o, s, i, j] = bias[o] + Σ w[o, c, p, q] · xp[c, s, i·sh + p·dh, j·sw + q·dw]``
    for xp (C, N, Hp, Wp), ``size`` = (Hp, Wp), the input x (C, N, H, W) placed at ``origin``
    = (top, left) of a zero frame (negative: rows or columns of x cut), w (C_out, C, kH, kW)
    and y (C_out, N, OH, OW) (with ``batch_first``: (N, C_out, OH, OW)); the sums over
    (c, p, q) in runs of about ``block`` terms (whole channels), each from zero. The frame
    is built a sample at a time inside the kernel (``conv_direct_source``), never whole."""
    memory, x_batch_first = planes(x)
    cb = BLOCK_BYTES // memory.itemsize
    (sh, sw), (dh, dw), (hp, wp) = stride, dilation, size
    out = y
    tiles = tiling(w.shape[3], sw, dw)
    if y.shape[3] < min(tiles.columns):  # zero columns on the right: a whole tile fits
        wide = min(tiles.columns)
        wp = max(wp, (wide - 1) * sw + (w.shape[3] - 1) * dw + 1)
        out = np.empty(y.shape[:3] + (wide,), y.dtype)  # (C_out or N, N or C_out, OH, JB)
    starts = column_tiles(out.shape[3], tiles)[1]
    kernel = correlation_kernel(memory.dtype, out.shape[3], sw, dw, w.shape[3])
    padded_bias = np.zeros(-(-w.shape[0] // cb) * cb, memory.dtype)
    if bias is not None:
        padded_bias[: w.shape[0]] = bias
    channels = max(1, block // (w.shape[2] * w.shape[3]))  # per block of the sums
    # the layouts as ints: a background compilation types its arguments as ints or arrays
    frame = memory, int(x_batch_first), *origin, hp, wp
    n, blocks = y.shape[0] if batch_first else y.shape[1], padded_bias.shape[0] // cb
    # a task: a part of a sample's blocks, a whole sample when there are samples enough
    parts = min(blocks, -(-TASKS_PER_THREAD * (jit.get_threads() or 1) // n))
    arguments = *frame, pack(w, cb), padded_bias, starts, sh, dh, channels, parts
    conv_compiled.share(kernel, (*arguments, int(batch_first), out), n * parts)
    if out is not y:
        y[...] = out[..., : y.shape[3]]


def input_gradient(gy, w, geometry: ConvGeometry, size, batch_first=False):
    """gx (C_in, N, H, W), the input gradient without the padding (``Conv2d`` takes it so),
    for stride 1 and an input of ``size`` (H, W): the full correlation of gy (C_out, N, OH,
    OW), channel-major or a view of batch-first memory, with the rotated kernel (see the
    module), computed only inside the padding. With ``batch_first`` gx is a view of
    batch-first memory (N, C_in, H, W), the layout of an input that came so: as a leaf's
    ``.grad`` it then needs no transposing copy."""
    (kh, kw), (dh, dw) = geometry.kernel_size, geometry.dilation
    (top, _), (left, _) = geometry.padding
    n, (h, width) = gy.shape[1], size
    # gy framed so that the correlation's output is the unpadded input: full padding
    # d·(k − 1) on each side, less the input's own padding (negative: rows of gy cut)
    ph, pw = (kh - 1) * dh, (kw - 1) * dw
    rotated = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kH, kW)
    c_in = w.shape[1]
    gx = np.empty((n, c_in, h, width) if batch_first else (c_in, n, h, width), gy.dtype)
    # blocks of K_BLOCK would hold 4-8x the terms the GEMM's column gradients sum (C_out
    # each, kH·kW of them then added up): their float32 error was 1.7x the GEMM's at 5x5
    origin, frame = (ph - top, pw - left), (h + ph, width + pw)
    correlate(gy, origin, frame, rotated, None, (1, 1), (dh, dw), gx, gy.shape[0], batch_first)
    return gx.transpose(1, 0, 2, 3) if batch_first else gx  # (C_in, N, H, W)


def kernel_gradient(gy, x, geometry: ConvGeometry, bias: bool = False):
    """(gw, gb): gw (C_out, C_in, kH, kW) from gy (C_out, N, OH, OW) and the unpadded input
    x (C_in, N, H, W), each channel-major or a view of batch-first memory; with ``bias`` the
    bias gradient gb (C_out,) too, summed while gy is repacked (else None). The kernel
    frames each sample's planes and repacks its output gradient itself, in its thread's
    cache (see ``kernel_gradient_source``)."""
    c_out, n = gy.shape[:2]
    c_in, (kh, kw) = x.shape[0], geometry.kernel_size
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    cb = gradient_block(x.dtype, c_out, kw)
    blocks = -(-c_out // cb)
    sums = np.empty((n, c_out) if bias else (0, 0))  # (N, C_out), float64 as channel_sums
    gy_memory, gy_batch_first = planes(gy)
    threads = jit.get_threads() or 1
    size = blocks * c_in * kh * kw * cb * gy.itemsize  # bytes of one partial kernel
    runs = max(threads, min(RUNS, max(2, PARTIAL_BYTES // size)))
    tasks = min(n, runs)  # runs of samples, each summed into its own partial
    bounds = np.array([n * t // tasks for t in range(tasks + 1)], np.int64)
    partial = np.zeros((tasks, blocks, c_in, kh, kw, cb), gy.dtype)
    kernel = gradient_kernel(x.dtype, sw, kw, c_out)
    memory, x_batch_first = planes(x)
    (top, _), (left, _) = geometry.padding
    frame = memory, int(x_batch_first), top, left, *geometry.padded_size(*x.shape[2:])
    arguments = gy_memory, int(gy_batch_first), sums, *frame, bounds, sh, dh, dw, partial
    conv_compiled.share(kernel, arguments, tasks)
    gw = pairwise_sum(partial).transpose(0, 4, 1, 2, 3)  # (C_out/CB, CB, C_in, kH, kW)
    gb = sums.sum(axis=0).astype(gy.dtype) if bias else None
    return gw.reshape(blocks * cb, c_in, kh, kw)[:c_out], gb


def planes(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """(memory, batch_first): the C-contiguous, writeable array behind a (C, N, H, W),
    batch-first (N, C, H, W) when a is its channel-major view; a copy if a is neither (a
    read-only array would be another compiled signature)."""
    batch_first = a.transpose(1, 0, 2, 3)  # (N, C, H, W)
    if not a.flags.c_contiguous and batch_first.flags.c_contiguous:
        memory, flag = batch_first, True
    else:
        memory, flag = contiguous(a), False
    return (memory if memory.flags.writeable else memory.copy()), flag


def pairwise_sum(parts: np.ndarray) -> np.ndarray:
    """``parts.sum(axis=0)`` by halves, so the error grows with log(T), not T."""
    while parts.shape[0] > 1:
        half = parts.shape[0] // 2
        paired = parts[:half] + parts[half : 2 * half]
        parts = np.concatenate([paired, parts[2 * half :]]) if parts.shape[0] % 2 else paired
    return parts[0]


class DirectCompiled:
    """Each pass by its fastest algorithm (``bench/CONV_DIRECT.md``, "Routing per pass"): the
    direct convolution for the passes :func:`passes` gives it and whose kernels are
    :func:`usable`; Winograd F(2x2, 3x3) for the stride-1 3x3 layers' input gradient, and for
    their forward when its direct kernel is not compiled yet (:func:`winograd_route`); the
    GEMM for the rest (groups of 1 only). The choice is made at the layer's forward from the
    shape, the mode and what was compiled when the process first asked, so within a process
    a layer always takes the same path.

    ``unpadded_input``: ``Conv2d`` hands the forward the input x (C_in, N, H, W) unpadded, in
    the layout it came in: the direct passes frame each sample in their threads' caches, and
    only a pass left to Winograd's or the GEMM's gets the padded copy (``conv.pad``). The
    context keeps x, not the padded copy.

    ``any_layout``: ``Conv2d`` hands the backward the output gradient as it comes, channel-major
    view or not: the direct passes read either (the kernel gradient's repack sums the bias
    gradient too, left in ``ctx.bias_gradient``), and only the GEMM's and Winograd's products
    get a channel-major copy."""

    any_layout = True
    unpadded_input = True

    @staticmethod
    def forward(ctx, x, w, b, geometry: ConvGeometry):
        forward, input_gradient, kernel_gradient = passes(geometry, w.shape)
        need_x, need_w = ctx.needs_input_grad[:2]  # no compilation asked for passes not run
        wanted = Passes(forward, input_gradient and need_x, kernel_gradient and need_w)
        padded = x.shape[:2] + geometry.padded_size(*x.shape[2:])  # (C_in, N, Hp, Wp)
        ctx.passes = usable(wanted, padded, x.dtype, geometry, w.shape[0])
        return DirectCompiled.run_forward(ctx, x, w, b, geometry)

    @staticmethod
    def run_forward(ctx, x, w, b, geometry: ConvGeometry):
        """The forward of x (C_in, N, H, W) for the passes already in ``ctx.passes`` (tests
        and benchmarks set them to run every pass direct)."""
        padded = x.shape[:2] + geometry.padded_size(*x.shape[2:])  # (C_in, N, Hp, Wp)
        ctx.winograd = winograd_route(padded, w.shape, geometry)
        ctx.x, ctx.w, ctx.geometry = x, w, geometry
        ctx.direct = geometry.kernel_size == (1, 1) and geometry.stride == (1, 1)  # as Gemm's
        ctx.small, ctx.tile = False, conv_winograd.default_tile()  # as Winograd's
        if not ctx.passes.forward:
            algorithm = conv_winograd.Winograd if ctx.winograd else Gemm
            return algorithm.forward(ctx, pad(x, geometry.padding), w, b, geometry)
        oh, ow = geometry.output_size(*x.shape[2:])
        y = np.empty((w.shape[0], x.shape[1], oh, ow), x.dtype)  # (C_out, N, OH, OW)
        (top, _), (left, _) = geometry.padding
        correlate(x, (top, left), padded[2:], w, b, geometry.stride, geometry.dilation, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        need_x, need_w = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        x, w, geometry = ctx.x, ctx.w, ctx.geometry
        gxp = gw = gb = None
        if need_x and ctx.passes.input_gradient:
            batch_first = getattr(ctx, "batch_first_input", False)
            plain = geometry.stride == (1, 1)
            gradient = input_gradient if plain else strided.input_gradient
            gxp = gradient(gy, w, geometry, x.shape[2:], batch_first)
        if need_w and ctx.passes.kernel_gradient:
            gw, gb = kernel_gradient(gy, x, geometry, bias=need_b)
        rest = (need_x and gxp is None, need_w and gw is None, False)
        if any(rest) or (need_b and gb is None):  # the products want gy channel-major
            gy = contiguous(gy)
        if any(rest):  # the passes left to Winograd's or the GEMM's backward
            algorithm = conv_winograd.Winograd if ctx.winograd else Gemm
            other = types.SimpleNamespace(**vars(ctx))
            if not hasattr(other, "xp"):  # the forward ran direct: no padded x was made
                other.xp = padded_input(x, geometry, rest[1])  # (C_in, N, Hp, Wp)
            other.needs_input_grad = rest
            other_x, other_w = algorithm.backward(other, gy)
            gxp, gw = gxp if other_x is None else other_x, gw if other_w is None else other_w
        if need_b and gb is None:
            gb = np.empty(gy.shape[0], gy.dtype)
            conv_compiled.channel_sums(gy.reshape(gy.shape[0], gy.shape[1], -1), gb)
        ctx.bias_gradient = gb  # for Conv2d, which would otherwise sum gy again
        return gxp, gw


def padded_input(x, geometry: ConvGeometry, values: bool) -> np.ndarray:
    """The padded input (C_in, N, Hp, Wp) for the backward passes left to the GEMM's or
    Winograd's: a copy (``conv.pad``) when they need its ``values`` (a kernel gradient),
    else a stand-in of its shape and dtype that takes no memory and no copy: their input
    gradient reads only those (a 3x3 stride-2 layer's, the GEMM's)."""
    if values:
        return contiguous(pad(x, geometry.padding))
    shape = x.shape[:2] + geometry.padded_size(*x.shape[2:])
    return np.broadcast_to(np.zeros((), x.dtype), shape)


def winograd_route(xp_shape, w_shape, geometry: ConvGeometry) -> bool:
    """Whether the passes not run direct run Winograd's (else the GEMM's): for the stride-1
    3x3 layers it suits (``conv_winograd.suits``) of at least its MIN_FLOPS. Its input
    gradient measured 0.80x the direct one's time at 32→64 channels, 28x28, its forward
    1.05x (one thread, CPU time), so :func:`passes` leaves it the input gradient."""
    if not conv_winograd.suits(geometry, w_shape):
        return False
    oh, ow = geometry.output_size(*xp_shape[2:], padded=True)
    return 2 * np.prod(w_shape) * xp_shape[1] * oh * ow >= conv_winograd.MIN_FLOPS
