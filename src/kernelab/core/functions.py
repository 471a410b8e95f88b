"""PyTorch's top-level tensor functions: ``torch.cat``, ``torch.max``, ``torch.where`` ...

Each is the :class:`~kernelab.Tensor` method of its first argument (which may also be a
NumPy array), so function and method
share one meaning; the joins (``cat``, ``stack``) and ``where`` take several tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional import arithmetic, comparison, shape
from .tensor import Tensor, as_tensor

__all__ = [
    "abs",
    "add",
    "all",
    "allclose",
    "amax",
    "amin",
    "any",
    "argmax",
    "argmin",
    "argsort",
    "bmm",
    "cat",
    "clamp",
    "clip",
    "clone",
    "div",
    "eq",
    "equal",
    "exp",
    "flatten",
    "ge",
    "gt",
    "is_floating_point",
    "is_tensor",
    "le",
    "log",
    "log_softmax",
    "lt",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mm",
    "mul",
    "ne",
    "neg",
    "numel",
    "permute",
    "pow",
    "prod",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sort",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "t",
    "tanh",
    "topk",
    "transpose",
    "unsqueeze",
    "var",
    "where",
]


# ---- joining and choosing
def cat(tensors, dim: int = 0) -> Tensor:
    return shape.cat(tensors, dim)


concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    return shape.stack(tensors, dim)


def where(condition, input=None, other=None):
    """``where(c, x, y)``: x where c holds, else y. ``where(c)``: the indices where c holds."""
    if input is None and other is None:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(as_tensor(condition).array))
    return comparison.where(condition, input, other)


# ---- questions
def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return as_tensor(input).is_floating_point()


def numel(input) -> int:
    return as_tensor(input).numel()


def equal(input, other) -> bool:
    """True if both have the same shape and the same elements."""
    a, b = as_tensor(input).array, as_tensor(other).array
    return a.shape == b.shape and bool(np.array_equal(a, b))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """``|input − other| ≤ atol + rtol·|other|`` everywhere; both of one dtype, as PyTorch."""
    a, b = as_tensor(input).array, as_tensor(other).array
    arithmetic.require_dtypes("allclose", a, b, same=True)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# ---- the methods, as functions
def flatten(input, start_dim: int = 0, end_dim: int = -1):
    return as_tensor(input).flatten(start_dim, end_dim)


def reshape(input, shape):
    return as_tensor(input).reshape(shape)


def squeeze(input, dim=None):
    return as_tensor(input).squeeze(dim)


def unsqueeze(input, dim: int):
    return as_tensor(input).unsqueeze(dim)


def permute(input, dims):
    return as_tensor(input).permute(dims)


def transpose(input, dim0: int, dim1: int):
    return as_tensor(input).transpose(dim0, dim1)


def t(input):
    return as_tensor(input).t()


def clone(input, memory_format=None):
    return as_tensor(input).clone()


def max(input, *args, **kwargs):  # noqa: A001
    """``max(x)``, ``max(x, dim, keepdim=False)`` → (values, indices), ``max(x, y)``."""
    return as_tensor(input).max(*args, **kwargs)


def min(input, *args, **kwargs):  # noqa: A001
    return as_tensor(input).min(*args, **kwargs)


def amax(input, dim=(), keepdim: bool = False):
    return as_tensor(input).amax(dim, keepdim)


def amin(input, dim=(), keepdim: bool = False):
    return as_tensor(input).amin(dim, keepdim)


def argmax(input, dim=None, keepdim: bool = False):
    return as_tensor(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False):
    return as_tensor(input).argmin(dim, keepdim)


def sum(input, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A001
    return as_tensor(input).sum(dim, keepdim, dtype=dtype)


def prod(input, dim=None, keepdim: bool = False, *, dtype=None):
    return as_tensor(input).prod(dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim: bool = False, *, dtype=None):
    return as_tensor(input).mean(dim, keepdim, dtype=dtype)


def var(input, *args, **kwargs):
    return as_tensor(input).var(*args, **kwargs)


def std(input, *args, **kwargs):
    return as_tensor(input).std(*args, **kwargs)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    return as_tensor(input).topk(k, dim, largest, sorted)


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    return as_tensor(input).sort(dim, descending, stable)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    return as_tensor(input).argsort(dim, descending, stable)


def any(input, dim=None, keepdim: bool = False):  # noqa: A001
    return as_tensor(input).any(dim, keepdim)


def all(input, dim=None, keepdim: bool = False):  # noqa: A001
    return as_tensor(input).all(dim, keepdim)


def abs(input):  # noqa: A001
    return as_tensor(input).abs()


def exp(input):
    return as_tensor(input).exp()


def log(input):
    return as_tensor(input).log()


def sqrt(input):
    return as_tensor(input).sqrt()


def neg(input):
    return as_tensor(input).neg()


def pow(input, exponent):  # noqa: A001
    if not isinstance(input, (Tensor, np.ndarray)):  # torch.pow(2, x)
        return arithmetic.pow(input, exponent)
    return as_tensor(input).pow(exponent)


def clamp(input, min=None, max=None):  # noqa: A002
    return as_tensor(input).clamp(min, max)


clip = clamp


def add(input, other, alpha=1):
    return arithmetic.add(input, other, alpha)  # a Python number stays a scalar operand


def sub(input, other, alpha=1):
    return arithmetic.sub(input, other, alpha)


def mul(input, other):
    return arithmetic.mul(input, other)


def div(input, other, rounding_mode=None):
    if rounding_mode is None:
        return arithmetic.div(input, other)  # a Python number stays a scalar operand
    return as_tensor(input).div(other, rounding_mode=rounding_mode)


def maximum(input, other):
    return as_tensor(input).maximum(other)


def minimum(input, other):
    return as_tensor(input).minimum(other)


def matmul(input, other):
    return as_tensor(input).matmul(other)


def mm(input, mat2):
    return as_tensor(input).mm(mat2)


def bmm(input, mat2):
    return as_tensor(input).bmm(mat2)


def eq(input, other):
    return as_tensor(input).eq(other)


def ne(input, other):
    return as_tensor(input).ne(other)


def lt(input, other):
    return as_tensor(input).lt(other)


def le(input, other):
    return as_tensor(input).le(other)


def gt(input, other):
    return as_tensor(input).gt(other)


def ge(input, other):
    return as_tensor(input).ge(other)


def relu(input):
    return as_tensor(input).relu()


def sigmoid(input):
    return as_tensor(input).sigmoid()


def tanh(input):
    return as_tensor(input).tanh()


def softmax(input, dim: int, dtype=None):
    return as_tensor(input).softmax(dim, dtype)


def log_softmax(input, dim: int, dtype=None):
    return as_tensor(input).log_softmax(dim, dtype)
