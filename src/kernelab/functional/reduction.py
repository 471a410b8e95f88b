"""Reductions that pick or spread: max and min with their indices, top-k, sort, variance;
and those without a gradient: ``argmax``, ``argmin``, ``any``, ``all``.

A reduction that picks elements (``max(dim)``, ``topk``, ``sort``) sends the gradient back to
the positions of the indices it returns. One that reduces without indices (``max()``,
``amax``) shares the gradient equally among tied maxima, as PyTorch does. Results with
indices are named tuples ``(values, indices)`` like ``torch.return_types``.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ..autograd import Function, is_tensor, unwrap, wrap
from .arithmetic import reduction_axes, require_dtypes, sqrt
from .comparison import maximum, minimum

# PyTorch's torch.return_types: named tuples, unpacked as ``values, indices = x.max(1)``
_RESULTS = {
    name: namedtuple(name, ["values", "indices"]) for name in ("max", "min", "topk", "sort")
}


class TakeAlongDim(Function):
    """The elements at ``indices`` along ``dim``; the gradient goes back to those positions.

    ``indices`` has the input's shape except along ``dim``, and never repeats there.
    """

    @staticmethod
    def forward(ctx, a, indices, dim, keepdim):
        ctx.shape, ctx.indices, ctx.dim, ctx.keepdim = a.shape, indices, dim, keepdim
        out = np.take_along_axis(a, indices, axis=dim)
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx, g):
        full = np.zeros(ctx.shape, dtype=g.dtype)
        g = g if ctx.keepdim else np.expand_dims(g, ctx.dim)
        np.put_along_axis(full, ctx.indices, g, axis=ctx.dim)
        return full


class Extreme(Function):
    """The largest (or smallest) element over ``axes``; tied elements share the gradient."""

    @staticmethod
    def forward(ctx, a, axes, keepdim, smallest):
        out = (a.min if smallest else a.max)(axis=axes, keepdims=True)
        if ctx.needs_input_grad[0]:
            hit = a == out
            if a.dtype.kind == "f":  # NaN is the result when present, and takes the gradient
                hit |= np.isnan(a) & np.isnan(out)
            ctx.share = hit / hit.sum(axis=axes, keepdims=True, dtype=a.dtype)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else out.squeeze(axes)

    @staticmethod
    def backward(ctx, g):
        g = g if ctx.keepdim else np.expand_dims(g, ctx.axes)
        return (g * ctx.share).astype(g.dtype, copy=False)


class Var(Function):
    """``Σ (a − mean)² / (N − correction)`` over ``axes``; N − correction ≤ 0 gives inf or NaN."""

    @staticmethod
    def forward(ctx, a, axes, correction, keepdim):
        ctx.diff = a - a.mean(axis=axes, keepdims=True)
        count = math.prod(a.shape[d] for d in axes)
        ctx.divisor = np.asarray(np.maximum(count - correction, 0), dtype=a.dtype)
        ctx.axes, ctx.keepdim = axes, keepdim
        with np.errstate(divide="ignore", invalid="ignore"):
            return (ctx.diff * ctx.diff).sum(axis=axes, keepdims=keepdim) / ctx.divisor

    @staticmethod
    def backward(ctx, g):
        g = g if ctx.keepdim else np.expand_dims(g, ctx.axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (2 * g / ctx.divisor) * ctx.diff


class Norm(Function):
    """The vector ``p``-norm over ``axes``, ``(Σ |a|^p)^(1/p)`` (``max |a|`` for ``p = inf``).

    Its gradient is ``sign(a)·|a|^(p−1) / norm^(p−1)``: ``a / norm`` for the 2-norm, ``sign(a)``
    for the 1-norm; zero where the norm is zero, and for ``inf`` shared among the tied maxima,
    as PyTorch does.
    """

    @staticmethod
    def forward(ctx, a, p, axes, keepdim):
        magnitude = np.abs(a)
        if p == math.inf:
            out = magnitude.max(axis=axes, keepdims=True)
        elif p == 2:
            out = np.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            out = (magnitude**p).sum(axis=axes, keepdims=True) ** (1 / p)
        out = out.astype(a.dtype, copy=False)
        ctx.a, ctx.p, ctx.out, ctx.axes, ctx.keepdim = a, p, out, axes, keepdim
        return out if keepdim else out.squeeze(axes)

    @staticmethod
    def backward(ctx, g):
        a, p, out = ctx.a, ctx.p, ctx.out
        g = g if ctx.keepdim else np.expand_dims(g, ctx.axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == math.inf:
                hit = np.abs(a) == out
                share = np.sign(a) * hit / hit.sum(axis=ctx.axes, keepdims=True, dtype=a.dtype)
            elif p == 1:
                share = np.sign(a)
            else:
                share = np.sign(a) * np.abs(a) ** (p - 1) / out ** (p - 1)
            share = np.where(out == 0, 0, share)
        return (g * share).astype(a.dtype, copy=False)


def _axis(dim: int, ndim: int) -> int:
    """``dim`` as a non-negative axis (a 0-d tensor has the one axis 0, as in PyTorch)."""
    if not -ndim - (ndim == 0) <= dim < ndim + (ndim == 0):
        raise IndexError(f"dimension {dim} is out of range for a {ndim}-D tensor")
    return dim % ndim if ndim else 0


def _correction(dim, unbiased, correction) -> tuple:
    """PyTorch's two signatures: ``var(dim, unbiased, keepdim)`` and ``var(dim, correction=)``."""
    if isinstance(dim, bool):  # var(False): the first positional is ``unbiased``
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased else 0
    return dim, correction


def var(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
    """Variance over ``dim`` (all axes if None), with Bessel's correction by default."""
    require_dtypes("var", input, kinds="fc")
    dim, correction = _correction(dim, unbiased, correction)
    axes = reduction_axes(dim, input.ndim)
    return Var.apply(input, axes=axes, correction=correction, keepdim=keepdim)


def std(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
    """Standard deviation: the square root of :func:`var`."""
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def norm(input, p="fro", dim=None, keepdim: bool = False):
    """The vector ``p``-norm over ``dim`` (all axes if None); ``"fro"`` is the 2-norm."""
    p = 2 if p == "fro" else float(p)
    if not (p >= 1 or p == math.inf):
        raise NotImplementedError(f"norm: p={p} is not supported (p >= 1, inf and 'fro' are)")
    axes = reduction_axes(dim, input.ndim)
    return Norm.apply(input, p=p, axes=axes, keepdim=keepdim)


def amax(input, dim=(), keepdim: bool = False):
    """The largest values over ``dim`` (all axes for ``()``); ties share the gradient."""
    axes = reduction_axes(None if dim == () else dim, input.ndim)
    return Extreme.apply(input, axes=axes, keepdim=keepdim, smallest=False)


def amin(input, dim=(), keepdim: bool = False):
    axes = reduction_axes(None if dim == () else dim, input.ndim)
    return Extreme.apply(input, axes=axes, keepdim=keepdim, smallest=True)


def _pick(name: str, input, indices: np.ndarray, dim: int, keepdim: bool):
    values = TakeAlongDim.apply(input, indices=indices, dim=dim, keepdim=keepdim)
    indices = indices if keepdim else indices.squeeze(dim)
    return _RESULTS[name](values, wrap(indices.astype(np.int64, copy=False)))


def _extreme(name: str, input, dim, keepdim: bool, other):
    if other is not None or is_tensor(dim) or isinstance(dim, np.ndarray):  # torch.max(a, b)
        return (minimum if name == "min" else maximum)(input, dim if other is None else other)
    if dim is None:
        return Extreme.apply(
            input, axes=reduction_axes(None, input.ndim), keepdim=False, smallest=name == "min"
        )
    dim = _axis(dim, input.ndim)
    data = input.array
    find = np.argmin if name == "min" else np.argmax
    return _pick(name, input, np.expand_dims(find(data, axis=dim), dim), dim, keepdim)


def max(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """``max(x)``: the largest element, a 0-d tensor. ``max(x, dim)``: ``(values, indices)``
    along ``dim``, the first index of the maximum. ``max(x, y)``: the element-wise maximum."""
    return _extreme("max", input, dim, keepdim, other)


def min(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """As :func:`max`, for the smallest."""
    return _extreme("min", input, dim, keepdim, other)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """The indices that sort ``input`` along ``dim``; equal elements keep their order."""
    key = input.array
    if descending:
        key = -(key.astype(np.int64) if key.dtype.kind in "bu" else key)
    return wrap(np.argsort(key, axis=dim, kind="stable").astype(np.int64, copy=False))


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` of ``input`` sorted along ``dim``."""
    dim = _axis(dim, input.ndim)
    order = argsort(input, dim, descending).array
    return _pick("sort", input, order, dim, keepdim=True)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest (or smallest) elements along ``dim``."""
    dim = _axis(dim, input.ndim)
    if not 0 <= k <= input.shape[dim]:
        raise IndexError(f"topk: k={k} is out of range for dimension {dim} of {input.shape}")
    order = argsort(input, dim, descending=largest).array
    first = np.take(order, np.arange(k), axis=dim)
    return _pick("topk", input, first, dim, keepdim=True)


# ---- results without a gradient
def _arg_extreme(find, input, dim: int | None, keepdim: bool):
    require_dtypes(find.__name__, input, kinds="uif")
    data = input.array
    if dim is None:
        out = np.asarray(find(data), dtype=np.int64)
        return wrap(out.reshape((1,) * data.ndim) if keepdim else out)
    return wrap(find(data, axis=dim, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(input, dim: int | None = None, keepdim: bool = False):
    """The index of the largest element (of the flattened tensor if ``dim`` is None)."""
    return _arg_extreme(np.argmax, input, dim, keepdim)


def argmin(input, dim: int | None = None, keepdim: bool = False):
    return _arg_extreme(np.argmin, input, dim, keepdim)


def _logical(fn, input, dim, keepdim: bool):
    """``fn`` (any or all) over ``dim``: bool, but uint8 for uint8 input, as PyTorch."""
    out = fn(unwrap(input), axis=dim, keepdims=keepdim)
    return wrap(out.astype(np.uint8) if input.dtype == np.uint8 else out)


def any(input, dim=None, keepdim: bool = False):  # noqa: A001
    return _logical(np.any, input, dim, keepdim)


def all(input, dim=None, keepdim: bool = False):  # noqa: A001
    return _logical(np.all, input, dim, keepdim)
