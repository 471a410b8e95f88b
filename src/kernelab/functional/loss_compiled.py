"""Compiled twin of cross-entropy with class-index targets (``loss.py``), logits (N, C).

The NumPy reference builds a dense coefficient matrix A (N, C) and keeps it and the softmax
for the backward; here one pass over each row gives its softmax and its loss, and only the
softmax is kept: the backward rebuilds each row of A from the target. For row ``i`` with
target ``t``, smoothing ``ε`` over ``C`` classes and class weights ``w``::

    A[i, c] = −s · ((1 − ε)·w[t]·[c = t] + (ε/C)·w[c])      (0 when t is ignored)
    loss_i = Σ_c A[i, c] · log_softmax(x_i)[c]
    d loss_i / d x_i = A[i] − softmax(x_i) · Σ_c A[i, c]

where ``s`` is the reduction's scale (1, or 1 / Σ w[t] over kept rows for "mean").

Each row's exponentials are computed by :func:`exp_nonpositive`, arithmetic LLVM vectorises
(numba would call libm once per logit, 4x slower than NumPy's vectorised exp at 1000
classes), and its maximum by LLVM's ``maxnum``; past PARALLEL_SIZE logits the rows are
shared out among the threads.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ..core import jit

# The row loops the kernels call (LLVM inlines them). In the exponential products may fuse
# into multiply-adds but nothing is reassociated: its range reduction depends on the order
# it is written in. The row loops' sums may be reordered (vectorised).
exact = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
summing = njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})

# exp(v) for v ≤ 0 as 2^k · exp(r): k = round(v·log2 e), r = v − k·ln 2 with ln 2 in a high
# part (exact times k) and a low one, exp(r) by its Taylor series to r¹² (|r| ≤ 0.35: error
# below 2e-16). Below LOWEST the result is 0: exp underflows there, or gives subnormals,
# nothing beside the row's largest term, 1. Per dtype: log2 e, ln 2 high, ln 2 low, LOWEST.
EXP_CONSTANTS = {
    np.dtype(np.float32): (1.4426950408889634, 0.693359375, -2.12194440e-4, -87.0),
    np.dtype(np.float64): (1.4426950408889634, 0.6931471803691238, 1.9082149292705877e-10, -708.0),
}
TAYLOR = tuple(1 / np.prod(np.arange(1.0, j + 1)) for j in range(12, -1, -1))  # 1/12!, ..., 1
# Logits from which the rows are shared out among the threads: a parallel launch costs 25-50 us
# (bench/PROFILE.md), a forward row pass about 1 ns a logit, the backward's a third of that.
PARALLEL_SIZE = {"forward": 1 << 16, "backward": 1 << 18}


@functools.cache
def exp_constants(dtype) -> np.ndarray:
    """What :func:`exp_nonpositive` reads, in ``dtype`` (so float32 stays float32):
    EXP_CONSTANTS, 0.5, 0, then TAYLOR's 13 coefficients, 1/12! first (one array per dtype,
    shared by every call: not to be written). The kernels take it
    as an array (a tuple's type is found in Python at every call, 20-40 us here) and read
    it into a tuple (:func:`unpack`) before their loops."""
    return np.array(EXP_CONSTANTS[np.dtype(dtype)] + (0.5, 0.0) + TAYLOR, dtype)


@exact
def unpack(c):
    """The 19 constants of :func:`exp_constants` as a tuple: values a loop that stores into
    arrays does not load again (from an array it would, as gathers once vectorised)."""
    return (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]) + (
        c[10],
        c[11],
        c[12],
        c[13],
        c[14],
        c[15],
        c[16],
        c[17],
        c[18],
    )


@intrinsic
def larger(typingctx, a, b):
    """max(a, b) of two floats of one type, the other one where one is NaN: LLVM's
    ``maxnum``, whose running maximum vectorises (a compare and select does not)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        kind = args[0].type
        maxnum = builder.module.declare_intrinsic(
            "llvm.maxnum", [kind], ir.FunctionType(kind, [kind, kind])
        )
        return builder.call(maxnum, args)

    return a(a, b), codegen


@intrinsic
def power_of_two(typingctx, k):
    """2^k for a float k holding an integer of the normal exponent range: the exponent bits
    set by an integer shift, which LLVM vectorises (``ldexp`` is a library call)."""
    if not isinstance(k, types.Float):
        return None
    width = k.bitwidth
    mantissa, bias = (23, 127) if width == 32 else (52, 1023)

    def codegen(context, builder, signature, args):
        bits = builder.fptosi(args[0], ir.IntType(width))
        bits = builder.add(bits, ir.Constant(ir.IntType(width), bias))
        bits = builder.shl(bits, ir.Constant(ir.IntType(width), mantissa))
        return builder.bitcast(bits, context.get_value_type(k))

    return k(k), codegen


@exact
def exp_nonpositive(v, c):
    """exp(v) for v ≤ 0 or NaN, with ``c = unpack(exp_constants(dtype))``: plain arithmetic that
    vectorises, where numba would call libm's exp one element at a time."""
    low = v < c[3]
    w = c[3] if low else v  # NaN stays NaN
    k = np.floor(w * c[0] + c[4])
    r = (w - k * c[1]) - k * c[2]
    p = c[6] * r + c[7]
    p = p * r + c[8]
    p = p * r + c[9]
    p = p * r + c[10]
    p = p * r + c[11]
    p = p * r + c[12]
    p = p * r + c[13]
    p = p * r + c[14]
    p = p * r + c[15]
    p = p * r + c[16]
    p = p * r + c[17]
    p = p * r + c[18]
    return c[5] if low else p * power_of_two(k)


@summing
def softmax_row(x, out, constants):
    """out = softmax(x) of one row; returns its log-sum-exp, log Σ exp(x)."""
    m = x[0]
    for c in range(1, x.size):
        m = larger(m, x[c])  # a NaN is caught by the sum below
    s = constants[5]
    for c in range(x.size):
        e = exp_nonpositive(x[c] - m, constants)
        out[c] = e
        s += e
    inverse = constants[18] / s  # 1 / s in the data's dtype
    for c in range(x.size):
        out[c] *= inverse
    return m + np.log(s)


@summing
def row_forward(x, t, weight, ignore_index, smoothing, constants, softmax):
    """One row: fills its softmax; returns its unscaled loss (float64), its kept weight and
    whether its target is out of range (then, as for an ignored one, loss and weight are 0)."""
    lse = softmax_row(x, softmax, constants)
    classes = x.size
    if t == ignore_index:
        return 0.0, 0.0, False
    if t < 0 or t >= classes:
        return 0.0, 0.0, True
    total = (1 - smoothing) * weight[t] * (lse - x[t])
    if smoothing != 0:
        for c in range(classes):
            total += smoothing / classes * weight[c] * (lse - x[c])
    return total, weight[t], False


@jit.kernel()
def forward_rows(logits, target, weight, ignore_index, smoothing, constants, softmax, loss):
    """Fills ``loss`` (N,) with each row's unscaled loss (float64) and ``softmax`` (N, C) for
    the backward; returns the kept weight and the first bad row.

    The first bad row is the first target outside [0, C) that is not ``ignore_index``, or −1.
    """
    kept, bad, constants = 0.0, -1, unpack(constants)
    for i in range(logits.shape[0]):
        args = target[i], weight, ignore_index, smoothing, constants, softmax[i]
        loss[i], weight_i, out_of_range = row_forward(logits[i], *args)
        kept += weight_i
        if out_of_range and bad < 0:
            bad = i
    return kept, bad


@jit.kernel(parallel=True)
def forward_rows_parallel(
    logits, target, weight, ignore_index, smoothing, constants, softmax, loss, kept, bad
):
    """:func:`forward_rows` with the rows shared out: each row's kept weight in ``kept``
    (N,) and whether its target is out of range in ``bad`` (N,)."""
    constants = unpack(constants)
    for i in prange(logits.shape[0]):
        args = target[i], weight, ignore_index, smoothing, constants, softmax[i]
        loss[i], kept[i], bad[i] = row_forward(logits[i], *args)


@summing
def row_backward(softmax, t, weight, weight_sum, ignore_index, smoothing, scale, out):
    """``out = scale · (A[i] − softmax · Σ_c A[i, c])`` for one row, A of the docstring."""
    if t == ignore_index:  # zero even where the scale is NaN, as PyTorch
        out[:] = 0
        return
    spread = smoothing / softmax.size
    on_target = (1 - smoothing) * weight[t]
    total = -(on_target + spread * weight_sum)
    for c in range(softmax.size):
        out[c] = scale * (-spread * weight[c] - softmax[c] * total)
    out[t] = scale * (-spread * weight[t] - on_target - softmax[t] * total)


@jit.kernel()
def backward_rows(softmax, target, weight, ignore_index, smoothing, scale, out):
    """Every row's :func:`row_backward`, ``scale`` (N,) per row.

    Ignored rows get zeros, also when every row is ignored and the mean is NaN (PyTorch's
    gradient there is zero; the NumPy reference's is NaN).
    """
    weight_sum = weight.sum()
    for i in range(softmax.shape[0]):
        args = weight, weight_sum, ignore_index, smoothing, scale[i], out[i]
        row_backward(softmax[i], target[i], *args)


@jit.kernel(parallel=True)
def backward_rows_parallel(softmax, target, weight, ignore_index, smoothing, scale, out):
    """:func:`backward_rows` with the rows shared out."""
    weight_sum = weight.sum()
    for i in prange(softmax.shape[0]):
        args = weight, weight_sum, ignore_index, smoothing, scale[i], out[i]
        row_backward(softmax[i], target[i], *args)


def supports(x: np.ndarray, target: np.ndarray) -> bool:
    """Logits (N, C) of float32/float64 against integer class indices."""
    return x.ndim == 2 and x.dtype in (np.float32, np.float64) and target.dtype.kind in "iu"


def shared_out(logits: np.ndarray, step: str) -> bool:
    """Whether the rows of ``step`` ("forward" or "backward") go to the thread pool: from its
    PARALLEL_SIZE logits, on more than one thread (on one a launch only costs)."""
    return logits.size >= PARALLEL_SIZE[step] and (jit.get_threads() or 1) > 1


def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing):
    """:class:`loss.CrossEntropyIndices`'s forward: the loss, and what the backward needs."""
    dtype, classes = logits.dtype, logits.shape[1]
    logits = np.ascontiguousarray(logits)
    target = np.ascontiguousarray(target, dtype=np.int64)
    smoothing = float(label_smoothing)
    softmax, loss = np.empty_like(logits), np.empty(len(logits))
    args = logits, target, weight, ignore_index, smoothing, exp_constants(dtype), softmax, loss
    if not shared_out(logits, "forward"):
        kept, bad = forward_rows(*args)
    else:
        kept_rows, bad_rows = np.empty(len(logits)), np.empty(len(logits), np.bool_)
        forward_rows_parallel(*args, kept_rows, bad_rows)
        kept, bad = kept_rows.sum(), (int(np.argmax(bad_rows)) if bad_rows.any() else -1)
    if bad >= 0:
        raise IndexError(
            f"target {target[bad]} is out of range: expected class indices in [0, {classes})"
        )
    # PyTorch divides by the summed weight of the kept targets; NaN when none is kept
    scale = (1.0 / kept if kept else np.nan) if reduction == "mean" else 1.0
    ctx.saved = softmax, target, weight, ignore_index, smoothing, scale, reduction
    if reduction == "none":
        return loss.astype(dtype)
    return np.asarray(loss.sum() * scale, dtype=dtype)


def backward(ctx, g):
    """:class:`loss.CrossEntropyIndices`'s backward: softmax minus the target, one pass."""
    softmax, target, weight, ignore_index, smoothing, scale, reduction = ctx.saved
    if reduction == "none":
        scale = np.asarray(g, np.float64).reshape(-1)  # (N,)
    else:
        scale = np.full(len(target), float(g) * scale)
    out = np.empty_like(softmax)
    rows = backward_rows_parallel if shared_out(softmax, "backward") else backward_rows
    rows(softmax, target, weight, ignore_index, smoothing, scale, out)
    return out
