"""Comparisons and choices: ``eq`` ... ``ge`` and the logical operators (no gradient), and
``where``, ``clamp``, ``maximum`` and ``minimum`` (the gradient goes to the chosen elements).

Operands are brought to PyTorch's result dtype first, as in ``arithmetic.py``.
"""

from __future__ import annotations

import operator

import numpy as np

from ..autograd import Function, unwrap, wrap
from .arithmetic import (
    array_of,
    cast_to,
    dtype_of,
    promote,
    require_dtypes,
    result_type,
    unbroadcast,
)


class Clamp(Function):
    """``min(max(a, lo), hi)``; the gradient passes where ``lo <= a <= hi`` (ends included)."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        if ctx.needs_input_grad[0]:  # the mask only serves the backward
            inside = np.ones(a.shape, dtype=bool)
            if lo is not None:
                inside &= a >= lo
            if hi is not None:
                inside &= a <= hi
            ctx.inside = inside
        return np.clip(a, lo, hi).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.inside


class Where(Function):
    """``a`` where ``condition`` holds, else ``b``; each gets the gradient of its positions."""

    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition, ctx.shapes = condition, (np.shape(a), np.shape(b))
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        zero = np.zeros((), g.dtype)
        sa, sb = ctx.shapes
        ga = unbroadcast(np.where(ctx.condition, g, zero), sa) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(np.where(ctx.condition, zero, g), sb) if ctx.needs_input_grad[1] else None
        return ga, gb


class Maximum(Function):
    """Element-wise larger of ``a`` and ``b``; a tie gives each half the gradient (PyTorch)."""

    @staticmethod
    def forward(ctx, a, b, smaller=False):
        ctx.a, ctx.b, ctx.smaller = a, b, smaller
        return np.minimum(a, b) if smaller else np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        share_a = np.where(a == b, 0.5, (a < b) if ctx.smaller else (a > b)).astype(g.dtype)
        ga = unbroadcast(g * share_a, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * (1 - share_a), np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


def clamp(a, min=None, max=None):  # noqa: A002
    """Limit ``a`` to ``[min, max]`` (either may be None); the bounds are constants."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if getattr(min, "requires_grad", False) or getattr(max, "requires_grad", False):
        raise NotImplementedError("clamp: a min or max that requires grad is not supported")
    bounds = unwrap(min), unwrap(max)
    given = [bound for bound in bounds if bound is not None]
    dtype = result_type(a, *given)
    if len(given) == 2 or array_of(given[0]) is None:  # bools clamp against one tensor only
        require_dtypes("clamp", dtype, kinds="uifc")
    return Clamp.apply(cast_to(a, dtype), *bounds)


def where(condition, a, b):
    """``a`` where ``condition`` (bool, or uint8 as PyTorch still takes) is true, else ``b``;
    ``a`` and ``b`` may be scalars."""
    require_dtypes("where (condition)", condition, kinds="bu")
    condition = np.asarray(unwrap(condition), dtype=bool)
    if array_of(a) is None and array_of(b) is None:  # two scalars: a tensor of their type
        dtype = result_type(a, b)
        a, b = dtype.type(a), dtype.type(b)
    return Where.apply(*promote(a, b), condition=condition)


def masked_fill(a, mask, value):
    """``a`` with ``value`` (a number or a 0-d tensor, cast to ``a``'s dtype, as PyTorch)
    where ``mask`` holds; the gradient reaches ``a`` elsewhere and ``value`` there."""
    if np.ndim(unwrap(value)) != 0:
        raise RuntimeError(
            f"masked_fill: expected a number or a 0-d value tensor, got shape "
            f"{np.shape(unwrap(value))}"
        )
    require_dtypes("masked_fill (mask)", mask, kinds="b")
    return where(mask, cast_to(value, dtype_of(a)), a)


def maximum(a, b):
    return Maximum.apply(*promote(a, b))


def minimum(a, b):
    return Maximum.apply(*promote(a, b), smaller=True)


# ---- comparisons and logic: boolean (or integer) results, with no gradient
def _elementwise(fn, *operands):
    return wrap(fn(*(unwrap(x) for x in operands)))


def eq(a, b):
    return _elementwise(operator.eq, a, b)


def ne(a, b):
    return _elementwise(operator.ne, a, b)


def lt(a, b):
    return _elementwise(operator.lt, a, b)


def le(a, b):
    return _elementwise(operator.le, a, b)


def gt(a, b):
    return _elementwise(operator.gt, a, b)


def ge(a, b):
    return _elementwise(operator.ge, a, b)


def _bitwise(name: str, fn, *operands):
    """``fn`` on the operands in their result dtype; PyTorch refuses floats."""
    operands = promote(*operands)
    require_dtypes(name, *operands, kinds="biu")
    return _elementwise(fn, *operands)


def bitwise_and(a, b):
    return _bitwise("bitwise_and", np.bitwise_and, a, b)


def bitwise_or(a, b):
    return _bitwise("bitwise_or", np.bitwise_or, a, b)


def bitwise_xor(a, b):
    return _bitwise("bitwise_xor", np.bitwise_xor, a, b)


def bitwise_not(a):
    return _bitwise("bitwise_not", np.invert, a)


def logical_not(a):
    return _elementwise(np.logical_not, a)
