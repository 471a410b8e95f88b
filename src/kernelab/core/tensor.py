"""The Tensor: a NumPy array that remembers how it was computed, so gradients can flow back.

This file holds its state; its methods come in groups, one file each: ``tensor_grad.py``
(gradients, ``.data``), ``tensor_shape.py``, ``tensor_maths.py`` (arithmetic, reductions,
comparisons), ``tensor_inplace.py`` and ``tensor_conversions.py`` (dtypes, devices, Python
numbers). Every method that is an op calls the op of that name in ``kernelab.functional``. The
ops sit below this file and build on ``kernelab.autograd``, which is handed this class right
after it.

A method PyTorch has and kernelab does not raises AttributeError naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import autograd
from ..autograd import Node, unwrap
from ..functional.shape import shape_arg
from .devices import check_device
from .dtypes import get_default_dtype
from .printing import tensor_repr
from .size import Size
from .tensor_conversions import ConversionMethods
from .tensor_grad import GradMethods
from .tensor_inplace import InPlaceMethods
from .tensor_maths import MathsMethods
from .tensor_shape import ShapeMethods


class Tensor(GradMethods, ShapeMethods, MathsMethods, InPlaceMethods, ConversionMethods):
    """An n-dimensional array with an optional gradient.

    ``array`` is the NumPy array (kernelab's own code reads it directly); ``data`` and ``grad``
    are Tensors with PyTorch's semantics (``tensor_grad.py``). ``node`` is the
    :class:`~kernelab.autograd.Node` of the operation that made it (``grad_fn``; None for a
    leaf).
    """

    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False):
        self.array = data if isinstance(data, np.ndarray) else np.asarray(data)
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError(
                "Only Tensors of floating point and complex dtype can require gradients"
            )
        self.requires_grad = requires_grad
        self.node: Node | None = None

    # ---- what it is
    @property
    def shape(self) -> Size:
        return tuple.__new__(Size, self.array.shape)  # unchecked: NumPy's sizes are ints

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.array.shape[dim]

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return self.array.size

    nelement = numel

    def element_size(self) -> int:
        return self.array.itemsize

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.array)))

    def __repr__(self) -> str:
        return tensor_repr(self.array, _autograd_suffix(self))

    def __getattr__(self, name: str):
        kind = type(self).__name__
        if name.startswith("_"):
            raise AttributeError(f"'{kind}' object has no attribute '{name}'")
        raise AttributeError(
            f"'{kind}' has no attribute '{name}': kernelab does not provide torch.Tensor.{name}"
        )

    # ---- new tensors like this one (its dtype unless given)
    def new_tensor(self, data: Any, dtype=None, requires_grad: bool = False) -> Tensor:
        dtype = self.array.dtype if dtype is None else dtype
        return tensor(data, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
        array = np.full(shape_arg((size,)), fill_value, dtype or self.array.dtype)
        return Tensor(array, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        return self.new_full(shape_arg(size), 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        return self.new_full(shape_arg(size), 1, dtype, requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad: bool = False) -> Tensor:
        array = np.empty(shape_arg(size), dtype or self.array.dtype)
        return Tensor(array, requires_grad=requires_grad)


def _autograd_suffix(t: Tensor) -> str | None:
    """What a tensor's repr ends with to say how it takes part in autograd."""
    if t.grad_fn is not None:
        return f"grad_fn=<{t.grad_fn.name()}>"
    return "requires_grad=True" if t.requires_grad else None


# The ops make their outputs of this class, but sit below it (its methods call them), so
# autograd is handed the class here instead of importing it.
autograd.set_tensor_class(Tensor)


def tensor(
    data: Any, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False
) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats become the default dtype (float32); NumPy arrays keep theirs.
    """
    if device is not None:
        check_device(device)
    source = unwrap(data)
    array = np.array(source, dtype=dtype, copy=True)
    if (
        dtype is None
        and not isinstance(source, np.ndarray | np.generic)
        and array.dtype == np.float64
    ):
        array = array.astype(get_default_dtype())
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data: Any, dtype=None, device=None) -> Tensor:
    """A tensor sharing ``data``'s memory where it can (no copy for a matching array)."""
    if device is not None:
        check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.ndarray):
        return Tensor(data if dtype is None else data.astype(dtype, copy=False))
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    return Tensor(array)
