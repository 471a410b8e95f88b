"""The rest of ``torch.Tensor``'s methods, so a PyTorch script's tensor code runs unchanged.

:class:`~kernelab.tensor.Tensor` inherits these: conversions (``float()``, ``to(...)``),
shape helpers (``squeeze``, ``expand``, ``repeat``), reductions with indices (``max(dim)``,
``topk``), element-wise maths (``clamp``, ``pow``), comparisons as methods, and the in-place
updates (``add_``, ``zero_``, ``x[mask] = 0``, ``p -= lr * g``) with PyTorch's rules:

- under ``no_grad``, or when no gradient is involved, they write into the tensor's array;
- on a leaf that requires grad while gradients are recorded they raise PyTorch's error;
- on a tensor inside the autograd graph the operator forms (``x += y``) compute out of place
  and rebind the name (same values and gradients as PyTorch), while the named methods
  (``x.add_(y)``) raise NotImplementedError: kernelab records no in-place operations.

A method PyTorch has and kernelab does not raises AttributeError naming it.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .. import autograd
from .devices import CPU, check_device


class _Modules:
    """``F.reduction``: a kernelab module imported on first use (they import tensor.py)."""

    def __init__(self, package: str):
        self._package = package

    def __getattr__(self, name: str):
        module = importlib.import_module(f"{self._package}.{name}")
        setattr(self, name, module)
        return module


F = _Modules("kernelab.functional")
_kl = _Modules("kernelab.core")

# torch.Tensor.type() names, by NumPy dtype
_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "float16": "HalfTensor",
    "int64": "LongTensor",
    "int32": "IntTensor",
    "int16": "ShortTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
}


def _is_dtype(x: Any) -> bool:
    return isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic))


def _unwrap_index(index):
    unwrap = _kl.tensor.unwrap
    return tuple(unwrap(i) for i in index) if isinstance(index, tuple) else unwrap(index)


class TensorMethods:
    """Methods of ``torch.Tensor`` beyond the core that ``tensor.py`` defines."""

    data: np.ndarray
    requires_grad: bool

    # ---- what it is, where it is
    @property
    def device(self):
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def cpu(self):
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False):
        check_device("cuda" if device is None else f"cuda:{device}")

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return self.data.flags.c_contiguous

    def nelement(self) -> int:
        return self.data.size

    def element_size(self) -> int:
        return self.data.itemsize

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(tensor)``: the array itself (a copy if asked, or in another dtype)."""
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __format__(self, spec: str) -> str:
        if self.data.ndim == 0:
            return format(self.data.item(), spec)
        return object.__format__(self, spec)

    def __getattr__(self, name: str):
        kind = type(self).__name__
        if name.startswith("_"):
            raise AttributeError(f"'{kind}' object has no attribute '{name}'")
        raise AttributeError(
            f"'{kind}' has no attribute '{name}': kernelab does not provide torch.Tensor.{name}"
        )

    # ---- dtype and device conversions
    def to(self, *args: Any, **kwargs: Any):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``: self if the same."""
        dtype, where = kwargs.pop("dtype", None), kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"Tensor.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, TensorMethods):
                dtype = arg.data.dtype
            elif _is_dtype(arg):
                dtype = arg
            elif arg is not None:
                where = arg
        if where is not None:
            check_device(where)
        out = self if dtype is None else self._as_dtype(dtype)
        return out.clone() if copy and out is self else out

    def _as_dtype(self, dtype):
        """This tensor in ``dtype``: itself if already so; differentiable between floats."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind in "fc" and self.data.dtype.kind in "fc":
            return F.arithmetic.cast(self, dtype)
        return _kl.tensor.Tensor(self.data.astype(dtype))

    def float(self):
        return self._as_dtype(np.float32)

    def double(self):
        return self._as_dtype(np.float64)

    def half(self):
        return self._as_dtype(np.float16)

    def long(self):
        return self._as_dtype(np.int64)

    def int(self):
        return self._as_dtype(np.int32)

    def bool(self):
        return self._as_dtype(np.bool_)

    def byte(self):
        return self._as_dtype(np.uint8)

    def type(self, dtype=None, non_blocking: bool = False):
        """The PyTorch type name (``"torch.FloatTensor"``) or, given a dtype, a conversion."""
        if dtype is None:
            return f"torch.{_TYPE_NAMES.get(self.data.dtype.name, self.data.dtype.name)}"
        return self._as_dtype(dtype)

    def type_as(self, other):
        return self._as_dtype(other.dtype)

    def clone(self, memory_format=None):
        """A copy that the gradient flows through."""
        return F.arithmetic.clone(self)

    def contiguous(self, memory_format=None):
        return self if self.data.flags.c_contiguous else F.arithmetic.clone(self)

    def new_tensor(self, data: Any, dtype=None, requires_grad: bool = False):
        dtype = self.data.dtype if dtype is None else dtype
        return _kl.tensor.tensor(data, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad: bool = False):
        return _kl.creation.full(
            size, fill_value, dtype=dtype or self.data.dtype, requires_grad=requires_grad
        )

    def new_zeros(self, *size, dtype=None, requires_grad: bool = False):
        return _kl.creation.zeros(
            *size, dtype=dtype or self.data.dtype, requires_grad=requires_grad
        )

    def new_ones(self, *size, dtype=None, requires_grad: bool = False):
        return _kl.creation.ones(*size, dtype=dtype or self.data.dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad: bool = False):
        return _kl.creation.empty(
            *size, dtype=dtype or self.data.dtype, requires_grad=requires_grad
        )

    # ---- shape
    def view_as(self, other):
        return F.shape.reshape(self, other.shape)

    reshape_as = view_as

    def squeeze(self, dim=None):
        return F.shape.squeeze(self, dim)

    def unsqueeze(self, dim: int):
        return F.shape.unsqueeze(self, dim)

    def expand(self, *sizes):
        return F.shape.expand(self, _kl.tensor._shape_arg(sizes))

    def expand_as(self, other):
        return F.shape.expand(self, other.shape)

    def repeat(self, *sizes):
        return F.shape.repeat(self, _kl.tensor._shape_arg(sizes))

    def t(self):
        if self.data.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.data.ndim}")
        return F.shape.permute(self, tuple(reversed(range(self.data.ndim))))

    # ---- reductions
    def max(self, dim=None, keepdim: bool = False):
        return F.reduction.max(self, dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        return F.reduction.min(self, dim, keepdim)

    def amax(self, dim=(), keepdim: bool = False):
        return F.reduction.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim: bool = False):
        return F.reduction.amin(self, dim, keepdim)

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        return F.reduction.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        return F.reduction.std(self, dim, unbiased, keepdim, correction=correction)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
        return F.reduction.topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return F.reduction.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return F.reduction.argsort(self, dim, descending, stable)

    def any(self, dim=None, keepdim: bool = False):
        return _kl.tensor.Tensor(np.any(self.data, axis=dim, keepdims=keepdim))

    def all(self, dim=None, keepdim: bool = False):
        return _kl.tensor.Tensor(np.all(self.data, axis=dim, keepdims=keepdim))

    # ---- element-wise
    def add(self, other, alpha=1):
        return F.arithmetic.add(self, other if alpha == 1 else F.arithmetic.mul(other, alpha))

    def sub(self, other, alpha=1):
        return F.arithmetic.sub(self, other if alpha == 1 else F.arithmetic.mul(other, alpha))

    def mul(self, other):
        return F.arithmetic.mul(self, other)

    def div(self, other, rounding_mode=None):
        if rounding_mode is not None:
            raise NotImplementedError(f"div: rounding_mode={rounding_mode!r} is not supported")
        return F.arithmetic.div(self, other)

    def pow(self, exponent):
        return F.arithmetic.pow(self, exponent)

    def neg(self):
        return F.arithmetic.neg(self)

    def __abs__(self):
        return F.arithmetic.abs(self)

    def clamp(self, min=None, max=None):  # noqa: A002
        return F.arithmetic.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return F.arithmetic.maximum(self, other)

    def minimum(self, other):
        return F.arithmetic.minimum(self, other)

    def where(self, condition, other):
        return F.arithmetic.where(condition, self, other)

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is true; the gradient reaches the other positions."""
        return F.arithmetic.where(mask, value, self)

    def matmul(self, other):
        return F.arithmetic.matmul(self, other)

    def mm(self, other):
        _check_ndim("mm", 2, self, other)
        return F.arithmetic.matmul(self, other)

    def bmm(self, other):
        _check_ndim("bmm", 3, self, other)
        return F.arithmetic.matmul(self, other)

    def relu(self):
        return F.activation.relu(self)

    def sigmoid(self):
        return F.activation.sigmoid(self)

    def tanh(self):
        return F.activation.tanh(self)

    def softmax(self, dim: int, dtype=None):
        return F.activation.softmax(self._as_dtype(dtype or self.data.dtype), dim)

    def log_softmax(self, dim: int, dtype=None):
        return F.activation.log_softmax(self._as_dtype(dtype or self.data.dtype), dim)

    # ---- comparisons and logic: no gradient
    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def _logic(self, fn, other=None):
        unwrap = _kl.tensor.unwrap
        args = (self.data,) if other is None else (self.data, unwrap(other))
        return _kl.tensor.Tensor(fn(*args))

    def __and__(self, other):
        return self._logic(np.bitwise_and, other)

    def __or__(self, other):
        return self._logic(np.bitwise_or, other)

    def __xor__(self, other):
        return self._logic(np.bitwise_xor, other)

    def __invert__(self):
        return self._logic(np.invert)

    def logical_not(self):
        return self._logic(np.logical_not)

    def __floordiv__(self, other):
        return self._logic(np.floor_divide, other)

    def __mod__(self, other):
        return self._logic(np.remainder, other)

    # ---- in place, with PyTorch's rules (see the module's docstring)
    def _in_graph(self, name: str, *others: Any) -> bool:
        """Whether this update needs the graph; a leaf requiring grad refuses it, as PyTorch."""
        if not autograd.is_grad_enabled():
            return False
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place "
                f"operation (update it inside kernelab.no_grad(), as in PyTorch)"
            )
        return self.requires_grad or any(getattr(o, "requires_grad", False) for o in others)

    def _write(self, name: str, ufunc, other, alpha=1):
        if self._in_graph(name, other):
            raise NotImplementedError(
                f"Tensor.{name}: in-place on a tensor in the autograd graph is not supported by "
                f"kernelab; write the out-of-place form (x = x + y)"
            )
        value = _kl.tensor.unwrap(other)
        ufunc(self.data, value if alpha == 1 else alpha * value, out=self.data, casting="same_kind")
        return self

    def _update(self, name: str, ufunc, out_of_place, other):
        """``x op= y``: in place where PyTorch would be, else out of place (rebinding x)."""
        if self._in_graph(name, other):
            return out_of_place(self, other)
        return self._write(name, ufunc, other)

    def add_(self, other, alpha=1):
        return self._write("add_", np.add, other, alpha)

    def sub_(self, other, alpha=1):
        return self._write("sub_", np.subtract, other, alpha)

    def mul_(self, other):
        return self._write("mul_", np.multiply, other)

    def div_(self, other):
        return self._write("div_", np.true_divide, other)

    def __iadd__(self, other):
        return self._update("+=", np.add, F.arithmetic.add, other)

    def __isub__(self, other):
        return self._update("-=", np.subtract, F.arithmetic.sub, other)

    def __imul__(self, other):
        return self._update("*=", np.multiply, F.arithmetic.mul, other)

    def __itruediv__(self, other):
        return self._update("/=", np.true_divide, F.arithmetic.div, other)

    def _assign(self, name: str, index, value) -> None:
        if self._in_graph(name, value):
            raise NotImplementedError(
                f"Tensor.{name}: in-place on a tensor in the autograd graph is not supported by "
                f"kernelab; compute a new tensor instead (kernelab.where, masked_fill, clone)"
            )
        self.data[index] = _kl.tensor.unwrap(value)

    def __setitem__(self, index, value) -> None:
        self._assign("__setitem__", _unwrap_index(index), value)

    def zero_(self):
        self._assign("zero_", Ellipsis, 0)
        return self

    def fill_(self, value):
        self._assign("fill_", Ellipsis, value)
        return self

    def copy_(self, src, non_blocking: bool = False):
        self._assign("copy_", Ellipsis, src)  # broadcast, and cast to this tensor's dtype
        return self

    def clamp_(self, min=None, max=None):  # noqa: A002
        self._assign("clamp_", Ellipsis, np.clip(self.data, min, max))
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator=None):
        rng = _kl.rng.as_generator(generator)
        self._assign("normal_", Ellipsis, rng.normal(mean, std, self.data.shape))
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator=None):
        rng = _kl.rng.as_generator(generator)
        self._assign("uniform_", Ellipsis, rng.uniform(a, b, self.data.shape))
        return self


def _check_ndim(name: str, ndim: int, *tensors) -> None:
    shapes = [tuple(t.shape) for t in tensors]
    if any(len(s) != ndim for s in shapes):
        raise ValueError(f"{name}: expected {ndim}-D tensors, got shapes {shapes}")
