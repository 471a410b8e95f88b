"""Compiled twins of the element-wise activations in ``activation.py``, one pass each.

An element-wise op does not care about axes, so each kernel runs over the array's memory as
one flat vector, whatever its layout (channel-major after a convolution included): outputs and
gradients come back in the input's layout without a transposing copy. What a backward needs is
kept as small as it can be: a byte per element for ReLU and LeakyReLU, the output (which
exists anyway) for Sigmoid and Tanh.

Each pass streams its arrays once, bound by memory: it runs on the calling thread and the
helpers of ``core/team.py``, chunk by chunk (:func:`team.claim`), not as a parallel launch on
numba's workers, which sleep between launches. Each kernel returns the elements it did.
ReLU's forward in a training step writes its output past the caches (:data:`STREAM_FROM`).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

from ..core import jit, team
from ..core.team import LINE, claim, first_line, load_line, store_fence, stream_line

# Outputs kept for a backward (a training step's) from this size on are written past the
# caches (team.stream_line): they land in memory not touched for long, which an ordinary
# store first reads. ResNet-8's six ReLUs in a training step (1-4 MB each): 4.2-5.8 ms so,
# 3.7-4.2 streamed (one thread). An inference step's outputs land in memory just freed, still
# in the caches, and the next operation reads them there: 2.4-2.9 ms, 3.2-3.5 streamed.
STREAM_FROM = 1 << 20


class Flat:
    """The memory order of an array's layout, to read same-shaped arrays as flat vectors.

    ``order`` lists the axes from the largest stride to the smallest: transposed by it, a dense
    array of any layout is C-contiguous, so :meth:`of` is a view; an array that is not dense
    (a slice, a broadcast) is read in C order instead, through one copy.
    """

    def __init__(self, x: np.ndarray):
        # Python's sort, stable as NumPy's argsort, takes under a third of its time on 4 axes
        order = tuple(sorted(range(x.ndim), key=lambda a: -abs(x.strides[a])))
        if not x.transpose(order).flags.c_contiguous:
            order = tuple(range(x.ndim))
        self.order = order
        self.inverse = tuple(sorted(range(x.ndim), key=order.__getitem__))
        self.shape = tuple(x.shape[a] for a in order)

    def of(self, a: np.ndarray) -> np.ndarray:
        """An array of the original shape as a vector in this memory order (copied if need be)."""
        return np.ascontiguousarray(a.transpose(self.order)).reshape(-1)

    def of_is_view(self, a: np.ndarray) -> bool:
        """Whether :meth:`of` reads ``a`` where it lies (no copy)."""
        return a.transpose(self.order).flags.c_contiguous

    def back(self, vector: np.ndarray) -> np.ndarray:
        """A vector in this memory order as an array of the original shape (a view)."""
        return vector.reshape(self.shape).transpose(self.inverse)

    def rows(self, a: np.ndarray) -> tuple[np.ndarray, int, int] | None:
        """An array of the original shape, not dense, where it lies: the span of memory from
        its first element to its last as a vector, and the steps (in elements) between its
        planes and between its rows (the last two axes in this memory order), when its rows
        are contiguous and its rows and planes evenly spaced, as in the inside of a padded
        array (a convolution's input gradient); else None."""
        t = a.transpose(self.order)
        if t.ndim < 3 or t.strides[-1] != t.itemsize or min(t.strides) < 0:
            return None
        shape, steps = t.shape, [s // t.itemsize for s in t.strides]
        if any(steps[i] != steps[i + 1] * shape[i + 1] for i in range(t.ndim - 3)):
            return None  # the leading axes do not merge into one of planes
        span = sum((n - 1) * step for n, step in zip(shape, steps, strict=True)) + 1
        return np.lib.stride_tricks.as_strided(t, (span,), (t.itemsize,)), steps[-3], steps[-2]


def elementwise(kernel, x: np.ndarray, *extra):
    """Run ``kernel(x, out, *extra)`` over x's memory; the result has x's shape and layout."""
    flat = Flat(x)
    vector = flat.of(x)
    out = np.empty_like(vector)
    team.run(kernel, (vector, out, *extra), vector.size)
    return flat.back(out), flat


# ---- ReLU


def relu(x: np.ndarray, keep_mask: bool):
    """max(x, 0) (NaN stays NaN); with ``keep_mask`` also the mask ``not x ≤ 0`` and the Flat
    that reads gradients in its order, else None for both."""
    zero = x.dtype.type(0)  # of x's dtype, so the kernels never widen to float64
    stream = keep_mask and x.nbytes >= STREAM_FROM
    flat = Flat(x)
    vector = flat.of(x)
    y = np.empty_like(vector)
    mask = np.empty(vector.shape, np.bool_) if keep_mask else None
    team.run(relu_forward, (vector, y, mask, zero, stream), vector.size)
    return flat.back(y), mask, (flat if keep_mask else None)


@intrinsic
def relu_line(typingctx, x, y, mask, index):
    """relu_forward of the cache line of y from ``index`` (which starts one), streamed
    (``team.stream_line``); the mask, unless None, stored as usual. The select and its
    comparison are the scalar loop's, so both round alike."""
    signature = types.void(x, y, mask, types.intp)

    def codegen(context, builder, sig, args):
        value = load_line(context, builder, sig.args[0], args[0], args[3])
        zero = ir.Constant(value.type, None)
        clamped = builder.fcmp_ordered("<=", value, zero)
        stream_line(
            context, builder, sig.args[1], args[1], args[3], builder.select(clamped, zero, value)
        )
        if not isinstance(sig.args[2], types.NoneType):
            passes = builder.zext(
                builder.not_(clamped), ir.VectorType(ir.IntType(8), value.type.count)
            )
            view = context.make_array(sig.args[2])(context, builder, args[2])
            pointer = cgutils.get_item_pointer(context, builder, sig.args[2], view, [args[3]])
            builder.store(passes, builder.bitcast(pointer, passes.type.as_pointer()), align=1)
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def relu_elements(x, y, mask, zero, start, stop):
    """relu_forward of the elements [start, stop), one by one (vectorised), and their mask
    unless None."""
    xs, ys = x[start:stop], y[start:stop]  # indexed from 0, the loop vectorises
    if mask is None:
        for i in range(xs.size):
            ys[i] = zero if xs[i] <= 0 else xs[i]
    else:
        masks = mask[start:stop]
        for i in range(xs.size):
            v = xs[i]
            passes = not v <= 0
            masks[i] = passes
            ys[i] = v if passes else zero


@jit.kernel()
def relu_forward(x, y, mask, zero, stream, control):
    """y = x where x is not ≤ 0 (so NaN passes), else 0; and, unless None, the mask of
    elements whose gradient passes (x > 0 or NaN). With ``stream``, whole cache lines of y
    are written past the caches."""
    done = 0
    step = LINE // y.itemsize
    start, stop = claim(control, x.size)
    while start < stop:
        first = first_line(y, start, stop) if stream else stop
        last = first + (stop - first) // step * step
        relu_elements(x, y, mask, zero, start, first)
        for i in range(first, last, step):
            relu_line(x, y, mask, i)
        relu_elements(x, y, mask, zero, last, stop)
        done += stop - start
        start, stop = claim(control, x.size)
    if stream:
        store_fence()
    return done


def relu_grad(g: np.ndarray, mask: np.ndarray, flat: Flat) -> np.ndarray:
    """g where the mask holds, 0 elsewhere (PyTorch's threshold_backward).

    A g that is the inside of a padded array is read where it lies, plane by plane: copying
    it first took twice the pass's time (ResNet-8's ReLUs before a 3x3 convolution)."""
    gx, zero = np.empty(mask.shape, g.dtype), g.dtype.type(0)
    rows = None if flat.of_is_view(g) else flat.rows(g)
    if rows is None:
        gv = flat.of(g)
        team.run(select_backward, (gv, mask, gx, zero), gv.size)
    else:
        shape = (-1,) + flat.shape[-2:]  # (planes, rows, row length), mask and gx alike
        masks, gxs = mask.reshape(shape), gx.reshape(shape)
        unit = masks.shape[1] * masks.shape[2]
        team.run(select_backward_rows, (*rows, masks, gxs, zero), masks.shape[0], unit=unit)
    return flat.back(gx)


@jit.kernel()
def select_backward(g, mask, gx, zero, control):
    """gx = g where mask, else 0. g is read whatever the mask, so the loop vectorises to
    plain loads and a blend; read under the mask, each load became a masked one
    (``vmaskmovps``): 2-3x slower (6.4 MB, one thread, Zen 3: 1.3-1.6 ms against 0.4-0.8)."""
    done = 0
    start, stop = claim(control, g.size)
    while start < stop:
        gs, masks, gxs = g[start:stop], mask[start:stop], gx[start:stop]
        for i in range(gs.size):
            g_i = gs[i]
            gxs[i] = g_i if masks[i] else zero
        done += stop - start
        start, stop = claim(control, g.size)
    return done


@jit.kernel()
def select_backward_rows(g, plane_step, row_step, mask, gx, zero, control):
    """select_backward over (planes, rows, row length) arrays mask and gx, row r of plane p
    of g starting at p·plane_step + r·row_step of the vector g."""
    planes, rows, length = mask.shape
    done = 0
    start, stop = claim(control, planes)
    while start < stop:
        for plane in range(start, stop):
            for r in range(rows):
                at = plane * plane_step + r * row_step
                gs, masks, gxs = g[at : at + length], mask[plane, r], gx[plane, r]
                for i in range(length):
                    g_i = gs[i]  # read whatever the mask (see select_backward)
                    gxs[i] = g_i if masks[i] else zero
        done += stop - start
        start, stop = claim(control, planes)
    return done


# ---- LeakyReLU


def leaky_relu(x: np.ndarray, negative_slope: float):
    """x where x > 0, else negative_slope·x; the mask x > 0 and the Flat of x's memory."""
    flat = Flat(x)
    vector = flat.of(x)
    y, mask = np.empty_like(vector), np.empty(vector.shape, np.bool_)
    team.run(leaky_relu_forward, (vector, y, mask, x.dtype.type(negative_slope)), vector.size)
    return flat.back(y), mask, flat


@jit.kernel()
def leaky_relu_forward(x, y, mask, slope, control):
    """y = x where x > 0, else slope·x (NaN stays NaN)."""
    done = 0
    start, stop = claim(control, x.size)
    while start < stop:
        xs, ys, masks = x[start:stop], y[start:stop], mask[start:stop]
        for i in range(xs.size):
            v = xs[i]
            positive = v > 0
            masks[i] = positive
            ys[i] = v if positive else v * slope
        done += stop - start
        start, stop = claim(control, x.size)
    return done


def leaky_relu_grad(g, mask, flat: Flat, negative_slope):
    """g where x > 0, else negative_slope·g."""
    gv = flat.of(g)
    gx = np.empty_like(gv)
    team.run(leaky_relu_backward, (gv, mask, gx, gv.dtype.type(negative_slope)), gv.size)
    return flat.back(gx)


@jit.kernel()
def leaky_relu_backward(g, mask, gx, slope, control):
    """gx = g where mask, else slope·g."""
    done = 0
    start, stop = claim(control, g.size)
    while start < stop:
        gs, masks, gxs = g[start:stop], mask[start:stop], gx[start:stop]
        for i in range(gs.size):
            gxs[i] = gs[i] if masks[i] else gs[i] * slope
        done += stop - start
        start, stop = claim(control, g.size)
    return done


# ---- Sigmoid and Tanh
#
# exp and tanh come from NumPy's ufuncs, which evaluate them in SIMD registers: numba calls
# the C library once per element (tanh on 64x32x28x28 float32: 28 ms, NumPy's 0.73 ms,
# PyTorch's 0.80, one thread).


def sigmoid(x: np.ndarray):
    """1 / (1 + exp(−x)), and the Flat of x's memory: exp(−|x|) by NumPy, written into the
    output and finished there, so large |x| neither overflows nor loses digits."""
    y, flat = elementwise(negative_magnitude, x)
    vector, out = flat.of(x), flat.of(y)  # views of the memory both already have
    np.exp(out, out=out)
    team.run(sigmoid_from_exp, (vector, out), vector.size)
    return y, flat


@jit.kernel()
def negative_magnitude(x, y, control):
    """y = −|x|."""
    done = 0
    start, stop = claim(control, x.size)
    while start < stop:
        xs, ys = x[start:stop], y[start:stop]
        for i in range(xs.size):
            ys[i] = -abs(xs[i])
        done += stop - start
        start, stop = claim(control, x.size)
    return done


@jit.kernel()
def sigmoid_from_exp(x, e, control):
    """e = exp(−|x|) in, sigmoid(x) out: 1 / (1 + e) where x ≥ 0, else e / (1 + e)."""
    one = e.dtype.type(1)  # sums stay in e's dtype, as on the NumPy path
    done = 0
    start, stop = claim(control, x.size)
    while start < stop:
        xs, es = x[start:stop], e[start:stop]
        for i in range(xs.size):
            es[i] = (one if xs[i] >= 0 else es[i]) / (one + es[i])
        done += stop - start
        start, stop = claim(control, x.size)
    return done


def tanh(x: np.ndarray):
    """tanh(x), and the Flat of x's memory."""
    flat = Flat(x)
    vector = flat.of(x)
    return flat.back(np.tanh(vector)), flat


def output_grad(kernel, g: np.ndarray, out: np.ndarray, flat: Flat) -> np.ndarray:
    """The gradient of Sigmoid or Tanh from the output ``out``: ``kernel(g, out, gx)``."""
    gv = flat.of(g)
    gx = np.empty_like(gv)
    team.run(kernel, (gv, flat.of(out), gx), gv.size)
    return flat.back(gx)


@jit.kernel()
def sigmoid_backward(g, y, gx, control):
    """gx = g·y·(1 − y)."""
    done = 0
    start, stop = claim(control, g.size)
    while start < stop:
        gs, ys, gxs = g[start:stop], y[start:stop], gx[start:stop]
        for i in range(gs.size):
            gxs[i] = gs[i] * ys[i] * (1 - ys[i])
        done += stop - start
        start, stop = claim(control, g.size)
    return done


@jit.kernel()
def tanh_backward(g, y, gx, control):
    """gx = g·(1 − y²)."""
    done = 0
    start, stop = claim(control, g.size)
    while start < stop:
        gs, ys, gxs = g[start:stop], y[start:stop], gx[start:stop]
        for i in range(gs.size):
            gxs[i] = gs[i] * (1 - ys[i] * ys[i])
        done += stop - start
        start, stop = claim(control, g.size)
    return done
