"""The Tensor's maths: operators, element-wise functions, matrix products, activations,
reductions, comparisons and logic.

Each method calls the op of its name in ``kernelab.functional``; comparisons, logic and the
arg-reductions give results without a gradient, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from ..functional import activation, arithmetic, comparison, reduction


class MathsMethods:
    """``x + y``, ``exp``, ``clamp``, ``matmul``, ``softmax``, ``sum``, ``max(dim)``, ``x < y``."""

    array: np.ndarray

    # ---- operators
    def __add__(self, other):
        return arithmetic.add(self, other)

    def __radd__(self, other):
        return arithmetic.add(other, self)

    def __sub__(self, other):
        return arithmetic.sub(self, other)

    def __rsub__(self, other):
        return arithmetic.sub(other, self)

    def __mul__(self, other):
        return arithmetic.mul(self, other)

    def __rmul__(self, other):
        return arithmetic.mul(other, self)

    def __truediv__(self, other):
        return arithmetic.div(self, other)

    def __rtruediv__(self, other):
        return arithmetic.div(other, self)

    def __floordiv__(self, other):
        return arithmetic.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return arithmetic.floor_divide(other, self)

    def __mod__(self, other):
        return arithmetic.remainder(self, other)

    def __rmod__(self, other):
        return arithmetic.remainder(other, self)

    def __neg__(self):
        return arithmetic.neg(self)

    def __abs__(self):
        return arithmetic.abs(self)

    def __pow__(self, other):
        return arithmetic.pow(self, other)

    def __rpow__(self, other):
        return arithmetic.pow(other, self)

    def __matmul__(self, other):
        return arithmetic.matmul(self, other)

    def __rmatmul__(self, other):
        return arithmetic.matmul(other, self)

    # ---- element-wise
    def add(self, other, alpha=1):
        return arithmetic.add(self, other, alpha)

    def sub(self, other, alpha=1):
        return arithmetic.sub(self, other, alpha)

    def mul(self, other):
        return arithmetic.mul(self, other)

    def div(self, other, rounding_mode=None):
        if rounding_mode is not None:
            raise NotImplementedError(f"div: rounding_mode={rounding_mode!r} is not supported")
        return arithmetic.div(self, other)

    def pow(self, exponent):
        return arithmetic.pow(self, exponent)

    def neg(self):
        return arithmetic.neg(self)

    def exp(self):
        return arithmetic.exp(self)

    def log(self):
        return arithmetic.log(self)

    def sqrt(self):
        return arithmetic.sqrt(self)

    def abs(self):
        return arithmetic.abs(self)

    def clamp(self, min=None, max=None):  # noqa: A002
        return comparison.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return comparison.maximum(self, other)

    def minimum(self, other):
        return comparison.minimum(self, other)

    def where(self, condition, other):
        return comparison.where(condition, self, other)

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is true; the gradient reaches the other positions."""
        return comparison.masked_fill(self, mask, value)

    def matmul(self, other):
        return arithmetic.matmul(self, other)

    def mm(self, other):
        return arithmetic.mm(self, other)

    def bmm(self, other):
        return arithmetic.bmm(self, other)

    # ---- activations
    def relu(self):
        return activation.relu(self)

    def sigmoid(self):
        return activation.sigmoid(self)

    def tanh(self):
        return activation.tanh(self)

    def softmax(self, dim: int, dtype=None):
        return activation.softmax(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim: int, dtype=None):
        return activation.log_softmax(self if dtype is None else self.to(dtype), dim)

    # ---- reductions
    def sum(self, dim=None, keepdim: bool = False, *, dtype=None):
        return arithmetic.sum(self if dtype is None else self.to(dtype), dim, keepdim)

    def prod(self, dim=None, keepdim: bool = False, *, dtype=None):
        return arithmetic.prod(self if dtype is None else self.to(dtype), dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None):
        return arithmetic.mean(self if dtype is None else self.to(dtype), dim, keepdim)

    def max(self, dim=None, keepdim: bool = False):
        return reduction.max(self, dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        return reduction.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim: bool = False):
        return reduction.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim: bool = False):
        return reduction.amin(self, dim, keepdim)

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        return reduction.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        return reduction.std(self, dim, unbiased, keepdim, correction=correction)

    def norm(self, p="fro", dim=None, keepdim: bool = False):
        return reduction.norm(self, p, dim, keepdim)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
        return reduction.topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return reduction.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return reduction.argsort(self, dim, descending, stable)

    def argmax(self, dim: int | None = None, keepdim: bool = False):
        return reduction.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False):
        return reduction.argmin(self, dim, keepdim)

    def any(self, dim=None, keepdim: bool = False):
        return reduction.any(self, dim, keepdim)

    def all(self, dim=None, keepdim: bool = False):
        return reduction.all(self, dim, keepdim)

    # ---- comparisons and logic
    def __eq__(self, other):  # type: ignore[override]
        return comparison.eq(self, other)

    def __ne__(self, other):  # type: ignore[override]
        return comparison.ne(self, other)

    def __lt__(self, other):
        return comparison.lt(self, other)

    def __le__(self, other):
        return comparison.le(self, other)

    def __gt__(self, other):
        return comparison.gt(self, other)

    def __ge__(self, other):
        return comparison.ge(self, other)

    __hash__ = object.__hash__  # defining __eq__ would otherwise make tensors unhashable

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __and__(self, other):
        return comparison.bitwise_and(self, other)

    def __rand__(self, other):
        return comparison.bitwise_and(other, self)

    def __or__(self, other):
        return comparison.bitwise_or(self, other)

    def __ror__(self, other):
        return comparison.bitwise_or(other, self)

    def __xor__(self, other):
        return comparison.bitwise_xor(self, other)

    def __rxor__(self, other):
        return comparison.bitwise_xor(other, self)

    def __invert__(self):
        return comparison.bitwise_not(self)

    def logical_not(self):
        return comparison.logical_not(self)
