"""The Tensor: a NumPy array that remembers how it was computed, so gradients can flow back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import autograd
from .devices import check_device
from .tensor_methods import TensorMethods

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype() -> np.dtype:
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """The floating dtype of tensors made from Python numbers and of new layers' parameters."""
    global _default_dtype
    _default_dtype = np.dtype(dtype)


class Tensor(TensorMethods):
    """An n-dimensional array with an optional gradient.

    ``data`` is the NumPy array, ``grad`` the gradient (a NumPy array of the same shape) that
    :meth:`backward` fills for leaf tensors created with ``requires_grad=True``. The rest of
    PyTorch's tensor methods are in :mod:`kernelab.tensor_methods`.
    """

    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._node = None  # (Function, Context, inputs) of the operation that made this tensor
        self._grad_hooks: list[Callable[[Tensor], None]] = []

    # ---- what it is
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> str | None:
        return None if self._node is None else self._node[0].__name__

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        return self.data

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (_default_dtype, int64, bool_):
            extra += f", dtype={self.data.dtype}"
        if self._node is not None:
            extra += f", grad_fn={self.grad_fn}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- gradients
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires one."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a single-element tensor, "
                    f"got shape {self.shape}"
                )
            grad = np.ones_like(self.data)
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            grad = np.broadcast_to(grad, self.shape)
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate(self, grad: np.ndarray) -> None:
        """Add into this leaf's ``grad``, an array it owns (copied on first use)."""
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad = self.grad + grad
        for hook in self._grad_hooks:
            hook(self)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> None:
        """Call ``hook(tensor)`` each time backward adds into this leaf's gradient."""
        self._grad_hooks.append(hook)

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    # ---- arithmetic (differentiable; see functional/arithmetic.py)
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __getitem__(self, index):
        return _shape.getitem(self, index)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None):
        return _ops.sum(self if dtype is None else self.to(dtype), dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None):
        return _ops.mean(self if dtype is None else self.to(dtype), dim, keepdim)

    def reshape(self, *shape):
        return _shape.reshape(self, _shape_arg(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return _shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _shape.permute(self, _shape_arg(dims))

    @property
    def T(self):
        return _shape.permute(self, tuple(reversed(range(self.ndim))))

    # ---- comparisons and arg-reductions: results carry no gradient
    def __eq__(self, other):  # type: ignore[override]
        return Tensor(self.data == unwrap(other))

    def __ne__(self, other):  # type: ignore[override]
        return Tensor(self.data != unwrap(other))

    def __lt__(self, other):
        return Tensor(self.data < unwrap(other))

    def __le__(self, other):
        return Tensor(self.data <= unwrap(other))

    def __gt__(self, other):
        return Tensor(self.data > unwrap(other))

    def __ge__(self, other):
        return Tensor(self.data >= unwrap(other))

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __index__(self) -> int:
        return self.data.__index__()

    def argmax(self, dim: int | None = None, keepdim: bool = False):
        return Tensor(_arg_reduce(np.argmax, self.data, dim, keepdim))

    def argmin(self, dim: int | None = None, keepdim: bool = False):
        return Tensor(_arg_reduce(np.argmin, self.data, dim, keepdim))

    def astype(self, dtype) -> Tensor:
        """A copy in another dtype; the gradient flows back in the original dtype."""
        return _ops.cast(self, np.dtype(dtype))


def unwrap(x: Any) -> Any:
    """The array behind a tensor; anything else unchanged."""
    return x.data if isinstance(x, Tensor) else x


def _shape_arg(shape: Sequence) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _arg_reduce(fn, data: np.ndarray, dim: int | None, keepdim: bool) -> np.ndarray:
    if dim is None:
        out = np.asarray(fn(data), dtype=np.int64)
        return out.reshape((1,) * data.ndim) if keepdim else out
    return fn(data, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)


def tensor(
    data: Any, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False
) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats become the default dtype (float32); NumPy arrays keep theirs.
    """
    if device is not None:
        check_device(device)
    source = data.data if isinstance(data, Tensor) else data
    array = np.array(source, dtype=dtype, copy=True)
    if dtype is None and not isinstance(source, np.ndarray) and array.dtype == np.float64:
        array = array.astype(_default_dtype)
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


from ..functional import arithmetic as _ops  # noqa: E402  (the ops need Tensor defined)
from ..functional import shape as _shape  # noqa: E402
