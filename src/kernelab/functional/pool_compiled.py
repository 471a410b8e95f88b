"""Compiled twins of the pooling kernels in ``pool.py``: one thread per group of planes.

Every (sample, channel) plane is pooled on its own, so the kernels see a C-contiguous
(A, B, H, W) array of planes — (N, C, H, W), or (C, N, H, W) when the input is channel-major
after a convolution — and return results in that same memory, never transposing a copy.
Padding is not materialised: each window is clipped to the input, which is what padding with
−inf (max) or zeros (average) amounts to. A window is read cell by cell in the order of the
NumPy reference (row by row), so ties and NaN resolve alike: the first maximum wins, and any
NaN replaces the running maximum (PyTorch's rule), so the last NaN is the arg-max.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..core import jit, team
from ..core.team import claim
from .geometry import ConvGeometry, adaptive_bins

SUMS = {"reassoc", "contract"}  # sums may be reordered (vectorised); NaN and inf stay exact

# ---- layout


def planes(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(A, B, H, W) C-contiguous planes of an (N, C, H, W) array, and whether A is C.

    A channel-major view gives its (C, N, H, W) memory as is; any other layout is copied to
    (N, C, H, W).
    """
    if x.flags.c_contiguous:
        return x, False
    channel_major = x.transpose(1, 0, 2, 3)  # (C, N, H, W)
    if channel_major.flags.c_contiguous:
        return channel_major, True
    return np.ascontiguousarray(x), False


def as_layout(g: np.ndarray, channel_major: bool) -> np.ndarray:
    """An (N, C, H, W) gradient as C-contiguous planes in the layout of the forward's input."""
    return np.ascontiguousarray(g.transpose(1, 0, 2, 3) if channel_major else g)


def flat(a: np.ndarray) -> np.ndarray:
    """(A, B, H, W) planes as one (A·B, H, W) stack, the kernels' view (a copy only when the
    two leading axes do not merge)."""
    return a.reshape((-1,) + a.shape[2:])  # (A·B, H, W)


def view(a: np.ndarray, channel_major: bool) -> np.ndarray:
    """Planes back to an (N, C, H, W) view of the same memory."""
    return a.transpose(1, 0, 2, 3) if channel_major else a


def settings(geometry: ConvGeometry) -> tuple[int, ...]:
    """The window as 8 ints for the kernels: kH, kW, sH, sW, top, left, dH, dW."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    (top, _), (left, _) = geometry.padding
    return kh, kw, sh, sw, top, left, dh, dw


# ---- max pooling


def max_pool(x: np.ndarray, geometry: ConvGeometry, out_size, track: bool = True):
    """Window maxima (N, C, OH, OW) in x's layout, the arg-max offset p·kW + q per output (None
    for 2x2 windows at stride 2 without ``track``), and whether the planes are channel-major.
    (Inference, which needs no arg-max, stays on NumPy's strided maxima unless the windows are
    2x2 at stride 2: they beat the general loop here, but not the 2x2 kernel.)"""
    xs, channel_major = planes(x)
    kh, kw = geometry.kernel_size
    y = np.empty(xs.shape[:2] + tuple(out_size), xs.dtype)  # (A, B, OH, OW)
    index_dtype = np.uint8 if kh * kw <= 256 else np.int32
    halves = halving(geometry, xs.shape[2:], out_size)
    index = np.empty(y.shape, index_dtype) if track or not halves else None
    if halves:
        halve(xs, y, index, None)
    elif threes(geometry):
        max_pool_3x3_stride_2(flat(xs), flat(y), flat(index), settings(geometry))
    else:
        max_pool_forward(flat(xs), flat(y), flat(index), settings(geometry))
    return view(y, channel_major), index, channel_major


def halving(geometry: ConvGeometry, size, out_size) -> bool:
    """Whether the pooling is the common 2x2 at stride 2, every window inside the input."""
    (top, _), (left, _) = geometry.padding
    return (
        geometry.kernel_size == geometry.stride == (2, 2)
        and geometry.dilation == (1, 1)
        and top == left == 0
        and 2 * out_size[0] <= size[0]
        and 2 * out_size[1] <= size[1]
    )


def threes(geometry: ConvGeometry) -> bool:
    """Whether the pooling is 3x3 at stride 2, undilated (any padding)."""
    three, two, one = (3, 3), (2, 2), (1, 1)
    return (geometry.kernel_size, geometry.stride, geometry.dilation) == (three, two, one)


# The 2x2 kernels (here, and ReLU's backward in fused_compiled.py) are team kernels (core/team.py),
# over planes: bound by memory, and numba's parallel pipeline took 1.4-2.2 s to compile each
# where a one-thread kernel takes 0.5, seconds of a cold first training step.


def halve(xs: np.ndarray, y: np.ndarray, index, zero) -> None:
    """:func:`max_pool_halve` of the planes xs (A, B, H, W) into y (A, B, OH, OW) and index
    (or None), on the team; ReLU's too where ``zero`` (0 of xs's dtype) is not None."""
    stack = flat(xs)
    args = stack, flat(y), None if index is None else flat(index), zero
    team.run(max_pool_halve, args, stack.shape[0], unit=stack.shape[1] * stack.shape[2])


@jit.kernel()
def max_pool_halve(x, y, index, zero, control):
    """:func:`max_pool_forward` for 2x2 windows at stride 2, all inside the input; the arg-max
    only where ``index`` is not None (compiled apart: inference's maxima alone took 3.1-3.7 ms
    against 5.2-5.8 with it, ReLU → 2x2 pool on 256x32x28x28, one thread). Where ``zero`` is
    not None, each maximum ≤ 0 is written as ``zero`` (NaN stays NaN): ReLU before the
    pooling (``fused_compiled.relu_max_pool``), compiled apart too."""
    oh, ow = y.shape[1], y.shape[2]
    done = 0
    start, stop = claim(control, x.shape[0])
    while start < stop:
        for plane in range(start, stop):
            for i in range(oh):
                upper, lower = x[plane, 2 * i], x[plane, 2 * i + 1]
                y_row = y[plane, i]
                for j in range(ow):
                    best, k = four_cells(upper, lower, 2 * j)
                    if zero is None:
                        y_row[j] = best
                    else:
                        y_row[j] = zero if best <= 0 else best
                    if index is not None:
                        index[plane, i, j] = k
        done += stop - start
        start, stop = claim(control, x.shape[0])
    return done


@njit(cache=True, nogil=True, inline="always")
def four_cells(upper, lower, c):
    """Maximum and arg-max (0-3) of the 2x2 window at column c of rows ``upper``, ``lower``,
    the cells in the reference's order (see :func:`greater_cell`)."""
    a, b, d, e = upper[c], upper[c + 1], lower[c], lower[c + 1]
    best, k = greater_cell(b, 1, a, 0)
    best, k = greater_cell(d, 2, best, k)
    best, k = greater_cell(e, 3, best, k)
    best, k = nan_cell(b, 1, best, k)
    best, k = nan_cell(d, 2, best, k)
    return nan_cell(e, 3, best, k)


@jit.kernel(parallel=True)
def max_pool_3x3_stride_2(x, y, index, window):
    """:func:`max_pool_forward` for 3x3 windows at stride 2 (ResNet's first pooling): where a
    window lies inside the input, its nine cells loaded at constant offsets and taken by
    selects (:func:`nine_cells`); windows at the borders go through the general loop's code.
    """
    top, left = window[4], window[5]
    n_planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    j0 = min(ow, (left + 1) // 2)  # the first column whose window starts inside
    j1 = max(j0, min(ow, (w - 3 + left) // 2 + 1))  # one past the last inside
    for plane in prange(n_planes):
        for i in range(oh):
            r0 = 2 * i - top
            p_lo, p_hi = max(0, -r0), min(3, h - r0)
            y_row, index_row = y[plane, i], index[plane, i]
            if p_lo == 0 and p_hi == 3:  # from column 2·j0 − left, rows r0..r0 + 2
                c = 2 * j0 - left
                upper, middle, lower = x[plane, r0, c:], x[plane, r0 + 1, c:], x[plane, r0 + 2, c:]
                nine_cells(upper, middle, lower, y_row[j0:j1], index_row[j0:j1])
            else:
                inner_arg_max(x[plane], y_row, index_row, r0, p_lo, p_hi, j0, j1, window)
            for e in range(j0 + ow - j1):  # the border columns, left then right
                j = e if e < j0 else j1 + e - j0
                clipped_max(x[plane], y_row, index_row, r0, p_lo, p_hi, j, window)


@njit(cache=True, nogil=True, inline="always")
def nine_cells(upper, middle, lower, y_row, index_row):
    """Maxima and arg-maxima of 3x3 windows at stride 2 whose rows start at ``upper``,
    ``middle``, ``lower``, window j at column 2·j, the cells in the reference's order."""
    for j in range(y_row.size):
        c = 2 * j
        cells = (
            (upper[c], upper[c + 1], upper[c + 2])
            + (middle[c], middle[c + 1], middle[c + 2])
            + (lower[c], lower[c + 1], lower[c + 2])
        )
        best, k = cells[0], 0  # the first cell starts the maximum
        for q in range(1, 9):
            best, k = greater_cell(cells[q], q, best, k)
        for q in range(1, 9):
            best, k = nan_cell(cells[q], q, best, k)
        y_row[j], index_row[j] = best, k


@njit(cache=True, nogil=True, inline="always")
def greater_cell(v, q, best, k):
    """(v, q) if cell v is strictly greater than the maximum so far, else (best, k).

    A maximum takes the first of equal cells and the last NaN. Both rules in one condition,
    ``(v > best) | (v != v)``, made the AVX2 machine code branch on it (on the AVX-512
    machine of earlier rounds such selects had run 4x faster than a branching loop), and a
    branch on random data mispredicts half the time: ReLU → 2x2 max pool on 256x32x28x28
    took 27 ms so at one thread, 5.6-6.9 with the comparison apart from the NaN test
    (:func:`nan_cell`, after every cell's comparison, so that the two selects of a cell are
    never merged into one): each select then has one comparison and is a blend."""
    k = q if v > best else k
    best = v if v > best else best
    return best, k


@njit(cache=True, nogil=True, inline="always")
def nan_cell(v, q, best, k):
    """(v, q) if cell v is NaN, else (best, k): applied to the cells in order after
    :func:`greater_cell`'s, the last NaN wins (its comparisons with a NaN maximum all fail)."""
    k = q if v != v else k
    best = v if v != v else best
    return best, k


@jit.kernel(parallel=True)
def max_pool_forward(x, y, index, window):
    """y[plane, i, j] = max of window (i, j) of a plane; its offset into ``index``.

    Rows are clipped to the input once per output row; columns only for the few windows at
    the left and right borders, so the inner loops carry no bounds arithmetic.
    """
    kh, kw, sh, sw, top, left, dh, dw = window
    n_planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    j0 = min(ow, (left + sw - 1) // sw)  # the first column whose window starts inside
    j1 = max(j0, min(ow, (w - 1 - (kw - 1) * dw + left) // sw + 1))  # one past the last inside
    for plane in prange(n_planes):
        for i in range(oh):
            r0 = i * sh - top
            p_lo = 0 if r0 >= 0 else (dh - 1 - r0) // dh
            p_hi = min(kh, (h - r0 + dh - 1) // dh)
            y_row = y[plane, i]
            index_row = index[plane, i]
            inner_arg_max(x[plane], y_row, index_row, r0, p_lo, p_hi, j0, j1, window)
            for e in range(j0 + ow - j1):  # the border columns, left then right
                j = e if e < j0 else j1 + e - j0
                clipped_max(x[plane], y_row, index_row, r0, p_lo, p_hi, j, window)


@njit(cache=True, nogil=True, inline="always")
def inner_arg_max(x, y_row, index_row, r0, p_lo, p_hi, j0, j1, window):
    """Maxima and arg-maxima of the windows (·, j0..j1) that lie inside the input's columns,
    cell by cell in the reference's order, each cell taken by a select, not a branch."""
    kh, kw, sh, sw, top, left, dh, dw = window
    for j in range(j0, j1):
        c0 = j * sw - left
        best, k = -np.inf, p_lo * kw if p_lo < p_hi else 0
        for p in range(p_lo, p_hi):
            x_row = x[r0 + p * dh]
            for q in range(kw):
                best, k = greater_cell(x_row[c0 + q * dw], p * kw + q, best, k)
        for p in range(p_lo, p_hi):
            x_row = x[r0 + p * dh]
            for q in range(kw):
                best, k = nan_cell(x_row[c0 + q * dw], p * kw + q, best, k)
        y_row[j] = best
        index_row[j] = k


@njit(cache=True, nogil=True, inline="always")
def clipped_max(x, y_row, index_row, r0, p_lo, p_hi, j, window):
    """Window (·, j) of rows p_lo..p_hi, its columns clipped to the input, cell by cell."""
    kh, kw, sh, sw, top, left, dh, dw = window
    c0 = j * sw - left
    q_lo = 0 if c0 >= 0 else (dw - 1 - c0) // dw
    q_hi = min(kw, (x.shape[1] - c0 + dw - 1) // dw)
    best = -np.inf
    k = p_lo * kw + q_lo if p_lo < p_hi and q_lo < q_hi else 0
    for p in range(p_lo, p_hi):
        for q in range(q_lo, q_hi):
            best, k = greater_cell(x[r0 + p * dh, c0 + q * dw], p * kw + q, best, k)
    for p in range(p_lo, p_hi):
        for q in range(q_lo, q_hi):
            best, k = nan_cell(x[r0 + p * dh, c0 + q * dw], p * kw + q, best, k)
    y_row[j] = best
    index_row[j] = k


def max_pool_grad(gy, index, channel_major: bool, geometry: ConvGeometry, size):
    """The input gradient (N, C, H, W) in the forward input's layout: each output gradient
    added onto the pixel its window's arg-max came from.

    gy is read where it lies when its planes are evenly spaced, gaps between rows allowed (a
    convolution's input gradient with its padding cut off is): at conv2's, 0.77 ms against
    0.93 with a copy first, and 0.46 against 0.64 at two threads, where the copy is serial.
    """
    gys = gy.transpose(1, 0, 2, 3) if channel_major else gy  # (A, B, OH, OW), a view
    gx = np.empty(gys.shape[:2] + tuple(size), gys.dtype)  # (A, B, H, W)
    max_pool_backward(flat(gys), flat(index), flat(gx), settings(geometry))
    return view(gx, channel_major)


@jit.kernel(parallel=True)
def max_pool_backward(gy, index, gx, window):
    """gx = Σ over outputs of gy sent to the arg-max pixel (padding cells send nothing).

    Each plane is zeroed, then takes its scatter while still in cache: writing every pixel
    once instead (gy at the arg-max, else 0, for windows that do not overlap) measured
    1.4-3.6x slower. The offset's row and column come from two small tables: a division by a
    kernel width unknown at compile time cost more than the rest of the loop (2x).
    """
    kh, kw, sh, sw, top, left, dh, dw = window
    n_planes, h, w = gx.shape
    oh, ow = gy.shape[1], gy.shape[2]
    row_of, column_of = np.empty(kh * kw, np.int64), np.empty(kh * kw, np.int64)
    for k in range(kh * kw):
        row_of[k], column_of[k] = (k // kw) * dh - top, (k % kw) * dw - left
    for plane in prange(n_planes):
        gx[plane] = 0
        for i in range(oh):
            for j in range(ow):
                k = index[plane, i, j]
                r, c = i * sh + row_of[k], j * sw + column_of[k]
                if 0 <= r < h and 0 <= c < w:
                    gx[plane, r, c] += gy[plane, i, j]


# ---- average pooling


def avg_pool(x: np.ndarray, geometry: ConvGeometry, out_size, divisor: np.ndarray):
    """Window sums over ``divisor`` (OH, OW): (N, C, OH, OW) in x's layout, and the layout."""
    xs, channel_major = planes(x)
    y = np.empty(xs.shape[:2] + tuple(out_size), xs.dtype)  # (A, B, OH, OW)
    if halving(geometry, xs.shape[2:], out_size):
        avg_pool_halve(flat(xs), flat(y), divisor)
    else:
        avg_pool_forward(flat(xs), flat(y), divisor, settings(geometry))
    return view(y, channel_major), channel_major


@jit.kernel(parallel=True)
def avg_pool_halve(x, y, divisor):
    """:func:`avg_pool_forward` for 2x2 windows at stride 2, all inside the input: the four
    cells added in the reference's order, vectorised along the output row with each pair of
    cells as interleaved loads (4x the general loop's speed)."""
    oh, ow = y.shape[1], y.shape[2]
    for plane in prange(x.shape[0]):
        for i in range(oh):
            upper, lower = x[plane, 2 * i], x[plane, 2 * i + 1]
            y_row, divisor_row = y[plane, i], divisor[i]
            for j in range(ow):
                total = upper[2 * j] + upper[2 * j + 1] + lower[2 * j] + lower[2 * j + 1]
                y_row[j] = total / divisor_row[j]


@jit.kernel(parallel=True)
def avg_pool_forward(x, y, divisor, window):
    """y[plane, i, j] = (Σ of window (i, j) inside the input) / divisor[i, j].

    The rows of a window row are first summed column by column (unit-stride vector adds),
    then the windows inside the input's columns take their kW columns of those sums; the
    border windows are clipped one by one.
    """
    kh, kw, sh, sw, top, left, _, _ = window
    n_planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    j0 = min(ow, (left + sw - 1) // sw)  # the first column whose window starts inside
    j1 = max(j0, min(ow, (w - kw + left) // sw + 1))  # one past the last inside
    zero = divisor[0, 0] - divisor[0, 0]  # of x's dtype: sums stay in it, as on the NumPy path
    for plane in prange(n_planes):
        x_plane, y_plane = x[plane], y[plane]
        column_sums = np.empty(w, x.dtype)  # the window's rows summed: unit-stride vector adds
        for i in range(oh):
            r0 = i * sh - top
            r_lo, r_hi = max(r0, 0), min(r0 + kh, h)
            y_row = y_plane[i]
            column_sums[:] = zero
            for r in range(r_lo, r_hi):
                x_row = x_plane[r]
                for c in range(w):
                    column_sums[c] += x_row[c]
            y_row[j0:j1] = zero
            for q in range(kw):
                for j in range(j0, j1):
                    y_row[j] += column_sums[j * sw + q - left]
            for j in range(j0, j1):
                y_row[j] /= divisor[i, j]
            for e in range(j0 + ow - j1):  # the border columns, left then right
                j = e if e < j0 else j1 + e - j0
                c0 = j * sw - left
                total = zero
                for r in range(r_lo, r_hi):
                    for c in range(max(c0, 0), min(c0 + kw, w)):
                        total += x_plane[r, c]
                y_row[j] = total / divisor[i, j]


def avg_pool_grad(gy, divisor, channel_major: bool, geometry: ConvGeometry, size):
    """The input gradient (N, C, H, W) in the forward input's layout: each output gradient
    over its divisor, added onto every cell of its window."""
    gys = as_layout(gy, channel_major)
    gx = np.empty(gys.shape[:2] + tuple(size), gys.dtype)  # (A, B, H, W)
    if halving(geometry, size, gys.shape[2:]):
        avg_pool_halve_backward(flat(gys), divisor, flat(gx))
    else:
        avg_pool_backward(flat(gys), divisor, flat(gx), settings(geometry))
    return view(gx, channel_major)


@jit.kernel(parallel=True)
def avg_pool_halve_backward(gy, divisor, gx):
    """:func:`avg_pool_backward` for 2x2 windows at stride 2, all inside the input: each
    share written to its four cells (3.4x the general loop's speed), the row and column a
    window never reached (odd sizes) set to 0."""
    oh, ow = gy.shape[1], gy.shape[2]
    for plane in prange(gx.shape[0]):
        for i in range(oh):
            upper, lower = gx[plane, 2 * i], gx[plane, 2 * i + 1]
            gy_row, divisor_row = gy[plane, i], divisor[i]
            for j in range(ow):
                share = gy_row[j] / divisor_row[j]  # of gy's dtype
                upper[2 * j], upper[2 * j + 1] = share, share
                lower[2 * j], lower[2 * j + 1] = share, share
            upper[2 * ow :], lower[2 * ow :] = 0, 0
        gx[plane, 2 * oh :] = 0


@jit.kernel(parallel=True)
def avg_pool_backward(gy, divisor, gx, window):
    """gx = Σ over windows holding a pixel of gy / divisor.

    Per window row, the shares of its windows are spread over the columns first, then added
    onto each of its input rows as one unit-stride vector add.
    """
    kh, kw, sh, sw, top, left, _, _ = window
    n_planes, h, w = gx.shape
    oh, ow = gy.shape[1], gy.shape[2]
    for plane in prange(n_planes):
        gx_plane, gy_plane = gx[plane], gy[plane]
        gx_plane[:] = 0
        column_shares = np.empty(w, gx.dtype)
        for i in range(oh):
            r0 = i * sh - top
            column_shares[:] = 0
            for j in range(ow):
                share = gy_plane[i, j] / divisor[i, j]  # of gy's dtype
                for c in range(max(j * sw - left, 0), min(j * sw - left + kw, w)):
                    column_shares[c] += share
            for r in range(max(r0, 0), min(r0 + kh, h)):
                gx_row = gx_plane[r]
                for c in range(w):
                    gx_row[c] += column_shares[c]


# ---- adaptive average pooling


def bins(size: int, out: int) -> np.ndarray:
    """Adaptive bins as an (out, 2) array of [start, end)."""
    return np.array(adaptive_bins(size, out), dtype=np.int64).reshape(out, 2)


def bin_sizes(rows: np.ndarray, cols: np.ndarray, dtype) -> np.ndarray:
    """(OH, OW) cell counts of the bins, in the data's dtype (the mean's divisor)."""
    return np.outer(rows[:, 1] - rows[:, 0], cols[:, 1] - cols[:, 0]).astype(dtype)


def adaptive_avg_pool(x: np.ndarray, output_size):
    """Bin means (N, C, OH, OW) in x's layout, and the layout."""
    xs, channel_major = planes(x)
    (oh, ow), (h, w) = output_size, x.shape[2:]
    y = np.empty(xs.shape[:2] + (oh, ow), xs.dtype)  # (A, B, OH, OW)
    if (oh, ow) == (1, 1):
        runs, means = xs.reshape(-1, h * w), y.reshape(-1)  # (A·B, H·W), (A·B,)
        args = (runs, means, xs.dtype.type(h * w))
        team.run(global_avg_pool_forward, args, runs.shape[0], unit=h * w)
        return view(y, channel_major), channel_major
    rows, cols = bins(h, oh), bins(w, ow)
    adaptive_avg_pool_forward(flat(xs), flat(y), rows, cols, bin_sizes(rows, cols, xs.dtype))
    return view(y, channel_major), channel_major


@jit.kernel(parallel=True, fastmath=SUMS)
def adaptive_avg_pool_forward(x, y, rows, cols, counts):
    """y[plane, i, j] = mean of x[plane, rows[i, 0]:rows[i, 1], cols[j, 0]:cols[j, 1]].

    A bin of whole rows is one contiguous run of memory, summed as one vector loop (the
    global average of a residual network's head is that case).
    """
    n_planes, h, w = x.shape
    runs = x.reshape(n_planes, h * w)  # (A·B, H·W), each plane's memory as one run
    zero = counts[0, 0] - counts[0, 0]  # of x's dtype: sums stay in it, as on the NumPy path
    for plane in prange(n_planes):
        x_plane, y_plane, x_run = x[plane], y[plane], runs[plane]
        for i in range(rows.shape[0]):
            r0, r1 = rows[i, 0], rows[i, 1]
            for j in range(cols.shape[0]):
                c0, c1 = cols[j, 0], cols[j, 1]
                total = zero
                if c0 == 0 and c1 == w:
                    for k in range(r0 * w, r1 * w):
                        total += x_run[k]
                else:
                    for r in range(r0, r1):
                        x_row = x_plane[r]
                        for c in range(c0, c1):
                            total += x_row[c]
                y_plane[i, j] = total / counts[i, j]


def adaptive_avg_pool_grad(gy, channel_major: bool, size):
    """The input gradient (N, C, H, W) in the forward input's layout."""
    gys = as_layout(gy, channel_major)
    (oh, ow), (h, w) = gys.shape[2:], size
    gx = np.empty(gys.shape[:2] + (h, w), gys.dtype)  # (A, B, H, W)
    if (oh, ow) == (1, 1):
        shares, runs = gys.reshape(-1), gx.reshape(-1, h * w)  # (A·B,), (A·B, H·W)
        args = (shares, runs, gys.dtype.type(h * w))
        team.run(global_avg_pool_backward, args, runs.shape[0], unit=h * w)
        return view(gx, channel_major)
    rows, cols = bins(h, oh), bins(w, ow)
    adaptive_avg_pool_backward(flat(gys), flat(gx), rows, cols, bin_sizes(rows, cols, gys.dtype))
    return view(gx, channel_major)


@jit.kernel(parallel=True)
def adaptive_avg_pool_backward(gy, gx, rows, cols, counts):
    """gx = Σ over bins holding a pixel of gy / (the bin's cell count)."""
    n_planes = gx.shape[0]
    for plane in prange(n_planes):
        gx_plane, gy_plane = gx[plane], gy[plane]
        gx_plane[:] = 0
        for i in range(rows.shape[0]):
            for j in range(cols.shape[0]):
                share = gy_plane[i, j] / counts[i, j]  # of gy's dtype
                for r in range(rows[i, 0], rows[i, 1]):
                    gx_row = gx_plane[r]
                    for c in range(cols[j, 0], cols[j, 1]):
                        gx_row[c] += share


# The global average's passes stream the layer once each (4 MB at 64x64x16x16), bound by
# memory: they run on the team of core/team.py (the calling thread and spinning helpers),
# where a parallel launch on numba's workers first waited for them to wake, which on a loaded
# machine took milliseconds (forward and backward of 64x64x16x16 at two threads, medians:
# 0.69 ms on the calling thread alone, 4.7 on numba's workers).


@jit.kernel(fastmath=SUMS)
def global_avg_pool_forward(runs, means, count, control):
    """means[plane] = Σ runs[plane] / count: each plane's memory as one vector sum."""
    zero = count - count  # of the data's dtype: sums stay in it, as on the NumPy path
    done = 0
    start, stop = claim(control, runs.shape[0])
    while start < stop:
        for plane in range(start, stop):
            run = runs[plane]
            total = zero
            for k in range(run.size):
                total += run[k]
            means[plane] = total / count
        done += stop - start
        start, stop = claim(control, runs.shape[0])
    return done


@jit.kernel()
def global_avg_pool_backward(gy, gx, count, control):
    """gx[plane, :] = gy[plane] / count."""
    done = 0
    start, stop = claim(control, gx.shape[0])
    while start < stop:
        for plane in range(start, stop):
            share = gy[plane] / count
            run = gx[plane]
            for k in range(run.size):
                run[k] = share
        done += stop - start
        start, stop = claim(control, gx.shape[0])
    return done
