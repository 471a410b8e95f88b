"""The input gradient of strided and dilated convolutions as stride-1, undilated correlations
(polyphase decomposition), each run by the direct convolution's micro-kernels.

Along one axis a convolution of stride s and dilation d sends output gradient row i through
kernel tap p to padded input row ``y = i·s + p·d``. With g = gcd(s, d), s = g·s', d = g·d',
only rows y ≡ 0 (mod g) receive anything, and those split by ``z = y / g`` modulo L' = s'·d'
into classes (the *phases*). In the class ρ = z mod L' the taps are p ≡ p₀ (mod s') and the
output rows i ≡ i₀ (mod d'), where ``d'·p₀ ≡ ρ (mod s')`` and ``s'·i₀ ≡ ρ (mod d')``; with
``p = p₀ + s'·t``, ``i = i₀ + d'·u`` and ``z = ρ + L'·m``::

    gx_ρ[m] = Σ_t w[p₀ + s'·t] · gy[i₀ + d'·(m − t − e)],   e = (s'·i₀ + d'·p₀ − ρ) / L'

a *full* stride-1 correlation of the output gradient's sub-grid ``gy[i₀::d']`` with the
sub-kernel ``w[p₀::s']``, undilated. A 3x3 layer of stride 2 is then four correlations of the
whole output gradient with 2x2, 2x1, 1x2 and 1x1 sub-kernels (9 taps in all, as the layer's
own), where the GEMM's col2im added 9 column planes back onto the input; a layer of dilation
2 and stride 1 is four 3x3 correlations, each of one quarter of the output gradient (the
sub-grids of even and odd rows and columns) onto one quarter of the input. Rows of no class
(y ≢ 0 mod g, or p₀ ≥ k: no tap) get no gradient: zeros.

Each class's correlation is ``conv_direct_compiled.correlate`` of a zero-framed copy of its
sub-grid with the 180°-rotated sub-kernel, (C_in, C_out, kH', kW'), and its result is
written into every L-th pixel of the input gradient (L = g·s'·d', the lcm of s and d). The
classes that read one sub-grid share its frame; a class may compute a few rows before its
first one (its ``lead``) so that they can. The arrays are channel-major, as in
``conv_algorithms``: gy (C_out, N, OH, OW), the result (C_in, N, H, W) without the padding.

Where it runs (:func:`suits`, ``conv_direct_compiled.passes``): strided layers whose every
sub-kernel is 3x3 or larger. The micro-kernels slow down with fewer kernel columns to unroll
(90 GFLOP/s at 3x3, 31 at 1x1), so at 3x3 of stride 2 the GEMM's input gradient is faster,
and at dilation 2 the copies into and out of the sub-grids cost what their 3x3 correlations
save on the dilated one (``bench/CONV_DIRECT.md``, "Phases"). Compiled path only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import prange

from ..core import jit
from . import conv_direct_compiled as direct
from .conv_algorithms import workspace
from .geometry import ConvGeometry


class Phase(NamedTuple):
    """One class of input rows (or columns) along an axis: the rows ``first::step`` of the
    unpadded input, ``count`` of them; the kernel taps that reach them (``taps``, a slice of
    the kernel axis; None: none does, their gradient is zero) and the frame they read
    (``frame``, an index into the axis's frames), whose correlation's first ``lead`` rows
    lie before them and are dropped."""

    first: int
    count: int
    taps: slice | None
    frame: int
    lead: int


class Frame(NamedTuple):
    """A zero-framed sub-grid of the output gradient along an axis: its rows ``grid`` placed
    from row ``offset`` (negative: the first ``−offset`` of them left out) in ``length``."""

    grid: slice
    offset: int
    length: int


def axis_phases(size: int, out: int, kernel: int, stride: int, dilation: int, before: int):
    """(step, phases, frames) along one axis of ``size`` unpadded input rows, ``out`` output
    rows and ``before`` rows of padding at the start (the algebra: see the module)."""
    g = math.gcd(stride, dilation)
    s, d = stride // g, dilation // g
    step = g * s * d
    phases, reads = [], {}  # reads: {phase: (i₀, e, its first m, its taps)} where taps reach
    for r in range(step):  # the padded rows r::step
        first = (r - before) % step
        count, rho = len(range(first, size, step)), r // g
        p0 = next(p for p in range(s) if (d * p - rho) % s == 0)
        if count and r % g == 0 and p0 < kernel:
            i0 = next(i for i in range(d) if (s * i - rho) % d == 0)
            e = (s * i0 + d * p0 - rho) // (s * d)
            reads[len(phases)] = i0, e, (first + before - r) // step, len(range(p0, kernel, s))
        taps = slice(p0, kernel, s) if len(phases) in reads else None
        phases.append(Phase(first, count, taps, -1, 0))
    frames = []
    for i0 in sorted({read[0] for read in reads.values()}):
        # row k of a phase's correlation is its m = k + e + T − 1 − offset: one offset that
        # suits every phase of the sub-grid, their leads m_first − e − T + 1 + offset ≥ 0
        group = {k: read for k, read in reads.items() if read[0] == i0}
        offset = max(e + t - 1 - m for _, e, m, t in group.values())
        length = 0
        for k, (_, e, m, t) in group.items():
            phases[k] = phases[k]._replace(frame=len(frames), lead=m - e - t + 1 + offset)
            length = max(length, phases[k].lead + phases[k].count + t - 1)
        frames.append(Frame(slice(i0, out, d), offset, length))
    return step, phases, frames


# Smallest sub-kernel side routed here: 3x3 layers of stride 2 (sub-kernels 2x2 to 1x1) ran
# 1.7-2.2x slower than the GEMM's input gradient, 5x5 (3x3 to 2x2) 1.3-1.4x, 6x6 (3x3) tied,
# 7x7 (4x4 to 3x3) 0.89-0.91x (bench/CONV_DIRECT.md, "Phases"): the micro-kernels lose speed
# with fewer kernel columns to unroll
MIN_SUB_KERNEL = 3


def suits(geometry: ConvGeometry) -> bool:
    """Whether the input gradient runs here: strided layers, not dilated, whose every phase's
    sub-kernel is at least MIN_SUB_KERNEL on a side."""
    (kh, kw), (sh, sw) = geometry.kernel_size, geometry.stride
    strided = (sh, sw) != (1, 1) and geometry.dilation == (1, 1)
    return strided and min(kh // sh, kw // sw) >= MIN_SUB_KERNEL


def layout(geometry: ConvGeometry, padded_shape, out_size) -> tuple:
    """((step, phases, frames) of the rows, of the columns), the unpadded size (H, W)."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    (top, bottom), (left, right) = geometry.padding
    h, width = padded_shape[2] - top - bottom, padded_shape[3] - left - right
    rows = axis_phases(h, out_size[0], kh, sh, dh, top)
    return (rows, axis_phases(width, out_size[1], kw, sw, dw, left)), (h, width)


def kernels(geometry: ConvGeometry, padded_shape, dtype) -> list:
    """The direct correlations :func:`input_gradient` runs for xp (C_in, N, Hp, Wp)."""
    out_size = geometry.output_size(*padded_shape[2:], padded=True)
    ((_, rows, _), (_, cols, _)), _ = layout(geometry, padded_shape, out_size)
    found = {}
    for col in cols:
        if col.taps is not None and any(row.taps is not None for row in rows):
            taps = len(range(*col.taps.indices(geometry.kernel_size[1])))
            kernel = direct.correlation_kernel(dtype, col.lead + col.count, 1, taps)
            found[kernel.__name__] = kernel
    return list(found.values())


def input_gradient(gy: np.ndarray, w: np.ndarray, geometry: ConvGeometry, padded_shape):
    """gx (C_in, N, H, W), the input gradient without the padding, from gy (C_out, N, OH, OW)
    C-contiguous and the kernel w (C_out, C_in, kH, kW): one stride-1 correlation per phase
    (see the module). ``padded_shape`` is the padded input's (C_in, N, Hp, Wp)."""
    c_out, n = gy.shape[:2]
    axes, (h, width) = layout(geometry, padded_shape, gy.shape[2:])
    (step_h, rows, frames_h), (step_w, cols, frames_w) = axes
    sizes = {
        (a, b): (fh.length, fw.length)
        for a, fh in enumerate(frames_h)
        for b, fw in enumerate(frames_w)
    }
    frames = carve(sizes, (c_out, n), gy.dtype, "phase frames")  # each (C_out, N, Lh, Lw)
    for (a, b), frame in frames.items():
        fill_frame(gy, frames_h[a], frames_w[b], frame)
    gx = np.empty((padded_shape[0], n, h, width), gy.dtype)  # (C_in, N, H, W)
    sizes = {
        (r, c): (row.lead + row.count, col.lead + col.count)
        for r, row in enumerate(rows)
        for c, col in enumerate(cols)
        if row.count and col.count and row.taps is not None and col.taps is not None
    }
    outputs = carve(sizes, gx.shape[:2], gy.dtype, "phase outputs")  # each (C_in, N, ., .)
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            at = row.first, step_h, col.first, step_w
            if (r, c) not in outputs:  # no tap reaches these pixels (or there are none)
                gx[:, :, row.first :: step_h, col.first :: step_w] = 0
                continue
            sub = w[:, :, row.taps, col.taps][:, :, ::-1, ::-1]  # (C_out, C_in, kH', kW')
            frame, y = frames[row.frame, col.frame], outputs[r, c]
            # the sums in blocks of about C_out terms, as the GEMM's column gradients take them
            direct.correlate(frame, sub.transpose(1, 0, 2, 3), None, (1, 1), (1, 1), y, c_out)
            copy_grid(y, (row.lead, 1, col.lead, 1), gx, at, row.count, col.count)
    return gx


def carve(sizes: dict, lead: tuple[int, int], dtype, slot: str) -> dict:
    """{key: a C-contiguous array (A, B, rows, columns)} for ``sizes`` {key: (rows, columns)},
    (A, B) = ``lead``, all in one workspace buffer (``conv_algorithms.workspace``): arrays
    made afresh on every call cost their page faults every time."""
    area = lead[0] * lead[1]
    bounds = np.cumsum([0] + [area * r * c for r, c in sizes.values()])
    buffer = workspace((int(bounds[-1]),), dtype, slot)
    return {
        key: buffer[start:stop].reshape(lead + size)
        for (key, size), start, stop in zip(sizes.items(), bounds[:-1], bounds[1:], strict=True)
    }


def fill_frame(gy: np.ndarray, rows: Frame, cols: Frame, frame: np.ndarray) -> None:
    """Write frame (C_out, N, Lh, Lw): gy's (C_out, N, OH, OW) sub-grid placed as ``rows``
    and ``cols`` say, zeros around it."""
    (into_h, from_h), (into_w, from_w) = placed(rows, gy.shape[2]), placed(cols, gy.shape[3])
    origin = from_h.start, from_h.step, from_w.start, from_w.step
    frame_grid(gy, origin, (into_h.start, into_h.stop, into_w.start, into_w.stop), frame)


def placed(frame: Frame, out: int) -> tuple[slice, slice]:
    """(into, from): the rows of ``frame`` that hold its sub-grid, and the output rows they
    hold (a slice of the ``out`` rows)."""
    size = len(range(*frame.grid.indices(out)))
    start, stop = max(0, frame.offset), max(0, min(frame.length, frame.offset + size))
    start = min(start, stop)
    grid = frame.grid.step
    first = frame.grid.start + (start - frame.offset) * grid
    return slice(start, stop), slice(first, first + (stop - start) * grid, grid)


@jit.kernel(parallel=True)
def frame_grid(src, origin, inside, frame):
    """``frame[c, n, i, j] = src[c, n, o0 + (i − i0)·o1, o2 + (j − j0)·o3]`` for
    i0 ≤ i < i1 and j0 ≤ j < j1, (i0, i1, j0, j1) = inside, (o0, o1, o2, o3) = origin;
    zero elsewhere. A task per (c, n); NumPy took the strided copy one short row at a time,
    3-4x slower at 14 columns of step 2."""
    n = frame.shape[1]
    for task in prange(frame.shape[0] * n):
        c, s = task // n, task % n
        for i in range(frame.shape[2]):
            into = frame[c, s, i]
            if i < inside[0] or i >= inside[1]:
                for j in range(frame.shape[3]):
                    into[j] = 0
                continue
            # indexed by the loop counter: no negative-index check (as conv_compiled's planes)
            run = src[c, s, origin[0] + (i - inside[0]) * origin[1], origin[2] :: origin[3]]
            for j in range(inside[2]):
                into[j] = 0
            for j in range(inside[3] - inside[2]):
                into[inside[2] + j] = run[j]
            for j in range(inside[3], frame.shape[3]):
                into[j] = 0


@jit.kernel(parallel=True)
def copy_grid(src, origin, dst, target, rows, cols):
    """``dst[c, n, t0 + i·t1, t2 + j·t3] = src[c, n, o0 + i·o1, o2 + j·o3]`` for i < rows,
    j < cols, (o0, o1, o2, o3) = origin, (t0, t1, t2, t3) = target; a task per (c, n)."""
    n = src.shape[1]
    for task in prange(src.shape[0] * n):
        c, s = task // n, task % n
        for i in range(rows):
            run = src[c, s, origin[0] + i * origin[1], origin[2] :: origin[3]]
            into = dst[c, s, target[0] + i * target[1], target[2] :: target[3]]
            for j in range(cols):
                into[j] = run[j]
