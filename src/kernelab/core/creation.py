"""Making tensors as PyTorch does: ``zeros``, ``rand``, ``arange``, ``linspace``, ``*_like`` ...

Every function takes PyTorch's keywords: ``dtype`` (the default floating dtype, float32, when
None and the values are not integers), ``device`` (the CPU only), ``requires_grad``, and for
the random ones ``generator`` (a :class:`kernelab.Generator`, NumPy generator, seed, or None
for the default generator that :func:`kernelab.manual_seed` resets). Sizes are given as
``zeros(2, 3)`` or ``zeros((2, 3))``. Random numbers follow NumPy's streams, so they differ
from PyTorch's for the same seed.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional.shape import shape_arg
from .devices import check_device
from .dtypes import get_default_dtype
from .rng import as_generator
from .tensor import Tensor, as_tensor, from_numpy, tensor

__all__ = [
    "arange",
    "as_tensor",
    "empty",
    "empty_like",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "randperm",
    "tensor",
    "zeros",
    "zeros_like",
]


def _make(array: np.ndarray, device, requires_grad: bool) -> Tensor:
    if device is not None:
        check_device(device)
    return Tensor(array, requires_grad=requires_grad)


def _floating(dtype) -> np.dtype:
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(shape_arg(size), _floating(dtype)), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(shape_arg(size), _floating(dtype)), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised values, as PyTorch's: write them before reading them."""
    return _make(np.empty(shape_arg(size), _floating(dtype)), device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows it (bool, int64 or the default float)."""
    if dtype is None:
        value = np.asarray(getattr(fill_value, "array", fill_value))
        kind = value.dtype.kind
        dtype = value.dtype if kind == "b" else np.int64 if kind in "iu" else get_default_dtype()
    return _make(np.full(shape_arg((size,)), fill_value, dtype), device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False):
    return _make(np.eye(n, m, dtype=_floating(dtype)), device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    values = as_generator(generator).random(shape_arg(size), dtype=np.float64)
    return _make(values.astype(_floating(dtype)), device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    values = as_generator(generator).standard_normal(shape_arg(size))
    return _make(values.astype(_floating(dtype)), device, requires_grad)


def randint(*args, generator=None, dtype=None, device=None, requires_grad: bool = False, **kw):
    """``randint(high, size)`` or ``randint(low, high, size)``: integers in [low, high)."""
    args = args + tuple(kw.pop(k) for k in ("low", "high", "size") if k in kw)
    if kw:
        raise TypeError(f"randint: unexpected arguments {sorted(kw)}")
    if len(args) == 2:
        args = (0,) + args
    if len(args) != 3:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high, size = args
    values = as_generator(generator).integers(low, high, size=tuple(size))
    return _make(values.astype(dtype or np.int64), device, requires_grad)


def randperm(n: int, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """A random ordering of ``0 .. n-1``."""
    values = as_generator(generator).permutation(n)
    return _make(values.astype(dtype or np.int64), device, requires_grad)


def arange(*args, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    """``arange(end)``, ``arange(start, end)``, ``arange(start, end, step)``.

    int64 when every argument is an integer, else the default float; element i is
    ``start + i·step``, computed in float64 and then cast (PyTorch's rule).
    """
    start, end, step = {1: (0,) + args + (1,), 2: args + (1,), 3: args}.get(len(args), (None,) * 3)
    start, end, step = kw.pop("start", start), kw.pop("end", end), kw.pop("step", step)
    if kw or end is None:
        raise TypeError(
            f"arange: expected arange(end), (start, end) or (start, end, step), "
            f"got {args} {sorted(kw)}"
        )
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    if dtype is None:
        dtype = np.int64 if integral else get_default_dtype()
    count = max(math.ceil((end - start) / step), 0)
    values = start + np.arange(count, dtype=np.int64 if integral else np.float64) * step
    return _make(values.astype(dtype), device, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive.

    As PyTorch: the first half counts up from ``start``, the second half down from ``end``,
    in the output dtype, so both ends are exact.
    """
    dtype = _floating(dtype)
    work = dtype if dtype.kind == "f" else np.dtype(np.float64)
    if steps == 1:
        return _make(np.full(1, start, dtype), device, requires_grad)
    step = (work.type(end) - work.type(start)) / work.type(steps - 1)
    i = np.arange(steps)
    values = np.where(
        i < steps // 2,
        work.type(start) + step * i.astype(work),
        work.type(end) - step * (steps - 1 - i).astype(work),
    )
    return _make(values.astype(dtype), device, requires_grad)


# ---- *_like: the shape (and by default the dtype) of another tensor
def _like(input, dtype):
    array = np.asarray(getattr(input, "array", input))
    return array.shape, array.dtype if dtype is None else np.dtype(dtype)


def zeros_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    shape, dtype = _like(input, dtype)
    return _make(np.zeros(shape, dtype), device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    shape, dtype = _like(input, dtype)
    return _make(np.ones(shape, dtype), device, requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    shape, dtype = _like(input, dtype)
    return _make(np.empty(shape, dtype), device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False, memory_format=None):
    shape, dtype = _like(input, dtype)
    return _make(np.full(shape, fill_value, dtype), device, requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad: bool = False, generator=None):
    shape, dtype = _like(input, dtype)
    return rand(shape, generator=generator, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad: bool = False, generator=None):
    shape, dtype = _like(input, dtype)
    return randn(
        shape, generator=generator, dtype=dtype, device=device, requires_grad=requires_grad
    )


def randint_like(input, low=0, high=None, dtype=None, device=None, generator=None) -> Tensor:
    shape, dtype = _like(input, dtype)
    low, high = (0, low) if high is None else (low, high)
    return randint(low, high, shape, generator=generator, dtype=dtype, device=device)
