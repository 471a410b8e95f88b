"""Losses: cross-entropy (with class weights, ignored labels, label smoothing), NLL and MSE.

Cross-entropy is one fused operation on the logits: its gradient, softmax minus the
(smoothed, weighted) target, is exact and never divides by a probability.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, is_tensor, unwrap
from ..core import jit
from ..core.errors import DTypeError, ShapeError
from .activation import log_softmax_and_softmax
from .arithmetic import promote, result_type

REDUCTIONS = ("mean", "sum", "none")


def _classes_last(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) → (N·d1·..., C): every position is one classification."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]) if x.ndim > 2 else x


def _per_position_shape(x_shape) -> tuple[int, ...]:
    return (x_shape[0],) + tuple(x_shape[2:])


class NLLCoefficients(Function):
    """``loss = Σ_ic A[i, c] · logp[i, c]`` for a fixed coefficient matrix ``A`` per position.

    Both NLL and cross-entropy reduce to this form; the reduction is folded into ``A``.
    """

    @staticmethod
    def forward(ctx, logp, coefficients, reduction, shape):
        ctx.coefficients, ctx.reduction, ctx.shape = coefficients, reduction, shape
        per_position = (coefficients * _classes_last(logp)).sum(axis=1)
        if reduction == "none":
            return per_position.reshape(shape)
        return np.asarray(per_position.sum(), dtype=per_position.dtype)

    @staticmethod
    def backward(ctx, g):
        g = g.reshape(-1, 1) if ctx.reduction == "none" else g
        grad = ctx.coefficients * g  # (positions, C)
        n, c = ctx.shape[0], grad.shape[1]
        if len(ctx.shape) > 1:
            grad = np.moveaxis(grad.reshape((n,) + ctx.shape[1:] + (c,)), -1, 1)
        return grad


class CrossEntropy(Function):
    """Softmax and NLL in one: ``d loss / d logits = A − softmax · Σ_c A``."""

    @staticmethod
    def forward(ctx, logits, coefficients, reduction, shape):
        logp, ctx.softmax = log_softmax_and_softmax(logits, axis=1)
        return NLLCoefficients.forward(ctx, logp, coefficients, reduction, shape)

    @staticmethod
    def backward(ctx, g):
        a = NLLCoefficients.backward(ctx, g)  # gradient with respect to log-probabilities
        grad = a - ctx.softmax * a.sum(axis=1, keepdims=True)
        return grad.astype(ctx.softmax.dtype, copy=False)  # the logits' dtype


class CrossEntropyIndices(Function):
    """:class:`CrossEntropy` against class indices (N,) for logits (N, C), by the compiled
    twin in ``loss_compiled.py``, which keeps the softmax but not A."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing):
        ctx.fast = jit.twin(".loss_compiled", __package__)
        args = target, weight, ignore_index, reduction, label_smoothing
        return ctx.fast.forward(ctx, logits, *args)

    @staticmethod
    def backward(ctx, g):
        return ctx.fast.backward(ctx, g)


def _class_weight(x, weight, reduction, dtype):
    """The class weight (C,) in ``dtype``, once the reduction and the input's rank are valid."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if x.ndim < 2:
        raise ShapeError(f"expected input of shape (N, C, ...), got {x.shape}")
    n_classes = x.shape[1]
    if is_tensor(weight) and weight.dtype != x.dtype:  # as PyTorch; a list or array is cast
        raise DTypeError(
            f"expected a class weight of the input's dtype {x.dtype}, got {weight.dtype}"
        )
    weight = unwrap(weight)
    w = np.ones(n_classes, dtype=dtype) if weight is None else np.asarray(weight, dtype)
    if w.shape != (n_classes,):
        raise ShapeError(f"expected a class weight of shape ({n_classes},), got {w.shape}")
    return w


def _check_indices(x, target):
    if target.dtype not in (np.int64, np.uint8):
        raise DTypeError(
            f"expected class-index targets of dtype int64 or uint8, got {target.dtype}"
        )
    if target.shape != _per_position_shape(x.shape):
        raise ShapeError(
            f"expected class-index targets of shape {_per_position_shape(x.shape)} for input "
            f"{x.shape}, got {target.shape}"
        )


def _coefficients(x, target, weight, ignore_index, reduction, label_smoothing):
    """The matrix A of :class:`NLLCoefficients` for class-index or probability targets."""
    w = _class_weight(x, weight, reduction, x.dtype)
    n_classes = x.shape[1]
    if target.dtype.kind == "f":  # class probabilities, same shape as the input
        if target.shape != x.shape:
            raise ShapeError(f"expected probability targets of shape {x.shape}, got {target.shape}")
        # (smoothed by the caller) the loss is in input and target's result dtype, as PyTorch's
        t = _classes_last(target.astype(result_type(x, target), copy=False))
        a = -t * w
        return a / len(a) if reduction == "mean" else a
    _check_indices(x, target)
    t = target.reshape(-1).astype(np.int64, copy=False)
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(
            f"target {t[bad][0]} is out of range: expected class indices in [0, {n_classes})"
        )
    rows = np.flatnonzero(keep)
    w_target = w[t[rows]]
    a = np.zeros((len(t), n_classes), dtype=x.dtype)
    a[rows, t[rows]] = -(1 - label_smoothing) * w_target
    if label_smoothing:
        a[rows] -= (label_smoothing / n_classes) * w
    if reduction == "mean":
        # PyTorch divides by the summed weight of the kept targets (their count if unweighted)
        a /= w_target.sum() if len(rows) else np.asarray(np.nan, dtype=x.dtype)
    return a


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Softmax cross-entropy of logits (N, C, ...) against class indices (N, ...) or
    probabilities (N, C, ...), with PyTorch's weighting and label smoothing."""
    x, t = unwrap(input), unwrap(target)
    if t.dtype.kind == "f" and label_smoothing:  # probabilities, smoothed in their own dtype
        t, label_smoothing = t * (1 - label_smoothing) + label_smoothing / x.shape[1], 0.0
    fast = jit.twin(".loss_compiled", __package__)
    if fast is not None and fast.supports(x, t):
        w = _class_weight(x, weight, reduction, np.float64)
        _check_indices(x, t)
        return CrossEntropyIndices.apply(
            input,
            target=t,
            weight=w,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    a = _coefficients(x, t, weight, ignore_index, reduction, label_smoothing)
    return CrossEntropy.apply(
        input, coefficients=a, reduction=reduction, shape=_per_position_shape(input.shape)
    )


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities (N, C, ...) at class indices (N, ...)."""
    _check_indices(unwrap(input), unwrap(target))
    a = _coefficients(unwrap(input), unwrap(target), weight, ignore_index, reduction, 0.0)
    return NLLCoefficients.apply(
        input, coefficients=a, reduction=reduction, shape=_per_position_shape(input.shape)
    )


class MSE(Function):
    @staticmethod
    def forward(ctx, x, t, reduction):
        ctx.diff, ctx.reduction = x - t, reduction
        sq = ctx.diff * ctx.diff
        if reduction == "none":
            return sq
        return np.asarray(sq.sum() if reduction == "sum" else sq.mean(), dtype=sq.dtype)

    @staticmethod
    def backward(ctx, g):
        scale = 2 / ctx.diff.size if ctx.reduction == "mean" else 2
        gx = (scale * g) * ctx.diff
        return gx, (-gx if ctx.needs_input_grad[1] else None)


def mse_loss(input, target, reduction: str = "mean"):
    """Mean (or summed) squared difference; shapes must match exactly."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if tuple(input.shape) != tuple(np.shape(unwrap(target))):
        raise ShapeError(
            f"expected a target of the input's shape {tuple(input.shape)}, "
            f"got {np.shape(unwrap(target))}"
        )
    return MSE.apply(*promote(input, target), reduction=reduction)
