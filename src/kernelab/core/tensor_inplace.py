"""The Tensor's in-place updates (``add_``, ``zero_``, ``x[mask] = 0``, ``p -= lr * g``), with
PyTorch's rules:

- under ``no_grad``, or when no gradient is involved, they write into the tensor's array;
- on a leaf that requires grad while gradients are recorded they raise PyTorch's error;
- on a tensor inside the autograd graph the operator forms (``x += y``) compute out of place
  and rebind the name (same values and gradients as PyTorch), while the named methods
  (``x.add_(y)``) raise NotImplementedError: kernelab records no in-place operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import is_grad_enabled, is_tensor, unwrap
from ..functional import arithmetic
from ..functional.comparison import clamp
from ..functional.shape import unwrap_index
from .dtypes import get_default_dtype
from .errors import DTypeError
from .rng import as_generator


class InPlaceMethods:
    """``add_``, ``+=``, ``__setitem__``, ``zero_``, ``fill_``, ``copy_``, ``normal_`` ..."""

    array: np.ndarray
    requires_grad: bool
    is_leaf: bool

    def _in_graph(self, name: str, *others: Any) -> bool:
        """Whether this update needs the graph; a leaf requiring grad refuses it, as PyTorch."""
        if not is_grad_enabled():
            return False
        if self.requires_grad and self.is_leaf:
            raise RuntimeError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place "
                f"operation (update it inside kernelab.no_grad(), as in PyTorch)"
            )
        return self.requires_grad or any(getattr(o, "requires_grad", False) for o in others)

    def _write(self, name: str, ufunc, other, alpha=1):
        """``self ← ufunc(self, alpha·other)`` computed in PyTorch's result dtype and written
        back in this tensor's dtype."""
        if self._in_graph(name, other):
            raise NotImplementedError(
                f"Tensor.{name}: in-place on a tensor in the autograd graph is not supported by "
                f"kernelab; write the out-of-place form (x = x + y)"
            )
        value, dtype = unwrap(other), self.array.dtype
        same = isinstance(value, np.ndarray) and value.dtype == dtype and dtype.kind == "f"
        if not same:  # (the optimisers' case is the same float dtype: nothing to promote)
            if ufunc is np.subtract:
                arithmetic.require_dtypes(name, self, other, kinds="uifc")
            dtype = self._result_dtype(name, other, floating=ufunc is np.true_divide)
            value = arithmetic.cast_to(value, dtype)
        value = value if alpha == 1 else unwrap(arithmetic.scaled(value, alpha))
        ufunc(self.array, value, out=self.array, dtype=dtype, casting="unsafe")
        return self

    def _result_dtype(self, name: str, other, floating: bool = False) -> np.dtype:
        """The dtype PyTorch computes ``self op other`` in; it refuses one it cannot write
        back into this tensor (``int_tensor += 0.5``, ``int_tensor /= 2``)."""
        dtype = arithmetic.result_type(self, other)
        if floating and dtype.kind not in "fc":
            dtype = get_default_dtype()
        self._check_cast(name, dtype)
        return dtype

    def _check_cast(self, name: str, dtype: np.dtype) -> None:
        if not arithmetic.can_cast(dtype, self.array.dtype):
            raise DTypeError(
                f"Tensor.{name}: result type {dtype} can't be cast to the tensor's dtype "
                f"{self.array.dtype}"
            )

    def _update(self, name: str, ufunc, out_of_place, other):
        """``x op= y``: in place where PyTorch would be, else out of place (rebinding x), in
        x's dtype either way."""
        if not self._in_graph(name, other):
            return self._write(name, ufunc, other)
        self._result_dtype(name, other, floating=ufunc is np.true_divide)
        return arithmetic.cast_to(out_of_place(self, other), self.array.dtype)

    def add_(self, other, alpha=1):
        return self._write("add_", np.add, other, alpha)

    def sub_(self, other, alpha=1):
        return self._write("sub_", np.subtract, other, alpha)

    def mul_(self, other):
        return self._write("mul_", np.multiply, other)

    def div_(self, other):
        return self._write("div_", np.true_divide, other)

    def __iadd__(self, other):
        return self._update("+=", np.add, arithmetic.add, other)

    def __isub__(self, other):
        return self._update("-=", np.subtract, arithmetic.sub, other)

    def __imul__(self, other):
        return self._update("*=", np.multiply, arithmetic.mul, other)

    def __itruediv__(self, other):
        return self._update("/=", np.true_divide, arithmetic.div, other)

    def _assign(self, name: str, index, value) -> None:
        if self._in_graph(name, value):
            raise NotImplementedError(
                f"Tensor.{name}: in-place on a tensor in the autograd graph is not supported by "
                f"kernelab; compute a new tensor instead (kernelab.where, masked_fill, clone)"
            )
        self.array[index] = unwrap(value)

    def __setitem__(self, index, value) -> None:
        """``x[index] = value``; as PyTorch, an index with a mask or an index tensor takes a
        tensor value of x's dtype only (but a 0-d value behind one mask, a masked fill)."""
        index = unwrap_index(index)
        parts = index if isinstance(index, tuple) else (index,)
        advanced = [p for p in parts if isinstance(p, np.ndarray)]
        fill = (
            len(parts) == 1
            and advanced
            and advanced[0].dtype == bool
            and np.ndim(unwrap(value)) == 0
        )
        if advanced and is_tensor(value) and value.dtype != self.array.dtype and not fill:
            raise DTypeError(
                f"Tensor.__setitem__: an indexed write needs a value of the tensor's dtype "
                f"{self.array.dtype}, got {value.dtype}"
            )
        self._assign("__setitem__", index, value)

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
        value = unwrap(clamp(self.array, unwrap(min), unwrap(max)))
        self._check_cast("clamp_", value.dtype)  # int_tensor.clamp_(min=0.5) raises
        self._assign("clamp_", Ellipsis, value)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator=None):
        values = as_generator(generator).normal(mean, std, self.array.shape)
        self._assign("normal_", Ellipsis, values)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator=None):
        values = as_generator(generator).uniform(a, b, self.array.shape)
        self._assign("uniform_", Ellipsis, values)
        return self
