"""The Tensor's conversions: to other dtypes and devices (``float()``, ``to(...)``), to NumPy
and Python numbers, and copies (``clone``, ``contiguous``).

Between floating dtypes a conversion is differentiable (the op ``cast``); to any other dtype it
makes a new tensor outside the graph, as PyTorch does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import is_tensor, wrap
from ..functional import arithmetic
from .devices import CPU, check_device

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


class ConversionMethods:
    """``to``, ``float()``, ``type()``, ``numpy()``, ``item()``, ``clone()``, ``device`` ..."""

    array: np.ndarray

    # ---- devices: the CPU only
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

    # ---- dtypes
    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def to(self, *args: Any, **kwargs: Any):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``: self if the same."""
        dtype, where = kwargs.pop("dtype", None), kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"Tensor.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if is_tensor(arg):
                dtype = arg.array.dtype
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
        if dtype == self.array.dtype:
            return self
        if dtype.kind in "fc" and self.array.dtype.kind in "fc":
            return arithmetic.cast(self, dtype)
        return wrap(self.array.astype(dtype))

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
            return f"torch.{_TYPE_NAMES.get(self.array.dtype.name, self.array.dtype.name)}"
        return self._as_dtype(dtype)

    def type_as(self, other):
        return self._as_dtype(other.dtype)

    def astype(self, dtype):
        """A copy in another dtype; the gradient flows back in the original dtype."""
        return arithmetic.cast(self, np.dtype(dtype))

    # ---- copies
    def clone(self, memory_format=None):
        """A copy that the gradient flows through."""
        return arithmetic.clone(self)

    def is_contiguous(self) -> bool:
        return self.array.flags.c_contiguous

    def contiguous(self, memory_format=None):
        return self if self.array.flags.c_contiguous else arithmetic.clone(self)

    # ---- NumPy and Python
    def numpy(self) -> np.ndarray:
        return self.array

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(tensor)``: the array itself (a copy if asked, or in another dtype)."""
        if dtype is not None and np.dtype(dtype) != self.array.dtype:
            return self.array.astype(dtype)
        return self.array.copy() if copy else self.array

    def item(self):
        return self.array.item()

    def tolist(self):
        return self.array.tolist()

    def __bool__(self) -> bool:
        return bool(self.array)

    def __float__(self) -> float:
        return float(self.array)

    def __int__(self) -> int:
        return int(self.array)

    def __index__(self) -> int:
        return self.array.__index__()

    def __format__(self, spec: str) -> str:
        if self.array.ndim == 0:
            return format(self.array.item(), spec)
        return object.__format__(self, spec)
