"""Compiled twin of cross-entropy with class-index targets (``loss.py``), logits (N, C).

The NumPy reference builds a dense coefficient matrix A (N, C) and keeps it and the softmax
for the backward; here one pass over each row gives its softmax and its loss, and only the
softmax is kept: the backward rebuilds each row of A from the target. For row ``i`` with
target ``t``, smoothing ``ε`` over ``C`` classes and class weights ``w``::

    A[i, c] = −s · ((1 − ε)·w[t]·[c = t] + (ε/C)·w[c])      (0 when t is ignored)
    loss_i = Σ_c A[i, c] · log_softmax(x_i)[c]
    d loss_i / d x_i = A[i] − softmax(x_i) · Σ_c A[i, c]

where ``s`` is the reduction's scale (1, or 1 / Σ w[t] over kept rows for "mean").
"""

from __future__ import annotations

import numpy as np

from ..core import jit


@jit.kernel()
def forward_rows(logits, target, weight, ignore_index, smoothing, softmax):
    """Per-row unscaled loss (float64), the kept weight and the first bad row; fills
    ``softmax`` (N, C) for the backward.

    The first bad row is the first target outside [0, C) that is not ``ignore_index``, or −1.
    """
    n, classes = logits.shape
    loss = np.zeros(n)
    kept, bad = 0.0, -1
    for i in range(n):
        m = logits[i, 0]
        for c in range(1, classes):
            m = max(m, logits[i, c])  # a NaN is caught by the sum below
        s = 0.0
        for c in range(classes):
            e = np.exp(logits[i, c] - m)  # in the data's dtype: float32 exp is the faster
            softmax[i, c] = e
            s += e
        for c in range(classes):
            softmax[i, c] /= s
        lse = m + np.log(s)
        t = target[i]
        if t == ignore_index:
            continue
        if (t < 0 or t >= classes) and bad < 0:
            bad = i
        if t < 0 or t >= classes:
            continue
        kept += weight[t]
        total = (1 - smoothing) * weight[t] * (lse - logits[i, t])
        if smoothing != 0:
            for c in range(classes):
                total += smoothing / classes * weight[c] * (lse - logits[i, c])
        loss[i] = total
    return loss, kept, bad


@jit.kernel()
def backward_rows(softmax, target, weight, ignore_index, smoothing, scale, out):
    """``out[i] = scale[i] · (A[i] − softmax(x_i) · Σ_c A[i, c])`` with A of the docstring.

    Ignored rows get zeros, also when every row is ignored and the mean is NaN (PyTorch's
    gradient there is zero; the NumPy reference's is NaN).
    """
    n, classes = softmax.shape
    weight_sum = weight.sum()
    spread = smoothing / classes
    for i in range(n):
        t = target[i]
        if t == ignore_index:  # zero even where the scale is NaN, as PyTorch
            out[i] = 0
            continue
        on_target = (1 - smoothing) * weight[t]
        total = -(on_target + spread * weight_sum)
        for c in range(classes):
            a = -spread * weight[c] - (on_target if c == t else 0.0)
            out[i, c] = scale[i] * (a - softmax[i, c] * total)


MAX_CLASSES = 16  # past this, NumPy's vectorised exp beats one scalar exp per logit here


def supports(x: np.ndarray, target: np.ndarray) -> bool:
    """Logits (N, C ≤ MAX_CLASSES) of float32/float64 against integer class indices."""
    if x.ndim != 2 or x.shape[1] > MAX_CLASSES:
        return False
    return x.dtype in (np.float32, np.float64) and target.dtype.kind in "iu"


def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing):
    """:class:`loss.CrossEntropyIndices`'s forward: the loss, and what the backward needs."""
    dtype, classes = logits.dtype, logits.shape[1]
    logits = np.ascontiguousarray(logits)
    target = np.ascontiguousarray(target, dtype=np.int64)
    smoothing = float(label_smoothing)
    softmax = np.empty_like(logits)
    loss, kept, bad = forward_rows(logits, target, weight, ignore_index, smoothing, softmax)
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
    backward_rows(softmax, target, weight, ignore_index, smoothing, scale, out)
    return out
