"""Operations that move elements without changing them: reshape, flatten, permute, indexing,
joining (cat, stack) and copying (expand, repeat)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd import Function, unwrap
from ..core.errors import ShapeError
from .arithmetic import promote, unbroadcast


def shape_arg(shape: Sequence) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def unwrap_index(index):
    """An index with the arrays behind its tensors (``x[mask]``, ``x[0, idx]``)."""
    return tuple(unwrap(i) for i in index) if isinstance(index, tuple) else unwrap(index)


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot view shape {a.shape} as {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


def _is_basic(index) -> bool:
    """True for ints, slices, None and Ellipsis: indexing that picks each element at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx, g):
        full = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic(ctx.index):
            full[ctx.index] = g
        else:
            np.add.at(full, ctx.index, g)  # repeated indices add up
        return full


class Cat(Function):
    """Join arrays along ``dim``; the gradient is cut back into the pieces."""

    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim, ctx.dtypes = dim, [a.dtype for a in arrays]
        ctx.ends = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        pieces = np.split(g, ctx.ends, axis=ctx.dim)
        return tuple(p.astype(d, copy=False) for p, d in zip(pieces, ctx.dtypes, strict=True))


class Stack(Function):
    """Join same-shaped arrays along a new axis ``dim``."""

    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.dim, ctx.dtypes = dim, [a.dtype for a in arrays]
        return np.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        return tuple(
            np.take(g, i, axis=ctx.dim).astype(d, copy=False) for i, d in enumerate(ctx.dtypes)
        )


class Expand(Function):
    """A broadcast view of ``a`` (no copy, read-only); the gradient sums over the copies."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


class Repeat(Function):
    """``a`` tiled ``repeats[i]`` times along axis i (PyTorch's ``repeat``, NumPy's ``tile``)."""

    @staticmethod
    def forward(ctx, a, repeats):
        ctx.shape, ctx.repeats = a.shape, repeats
        return np.tile(a, repeats)

    @staticmethod
    def backward(ctx, g):
        shape = (1,) * (len(ctx.repeats) - len(ctx.shape)) + ctx.shape
        split = [n for pair in zip(ctx.repeats, shape, strict=True) for n in pair]
        summed = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))  # (r0, s0, r1, s1, ...)
        return summed.reshape(ctx.shape)


def reshape(a, shape):
    return Reshape.apply(a, shape=tuple(shape))


def flatten(a, start_dim: int = 0, end_dim: int = -1):
    """Merge the axes ``start_dim..end_dim`` into one (PyTorch's ``torch.flatten``)."""
    if a.ndim == 0:
        return reshape(a, (1,))
    start, end = start_dim % a.ndim, end_dim % a.ndim
    shape = a.shape[:start] + (int(np.prod(a.shape[start : end + 1])),) + a.shape[end + 1 :]
    return reshape(a, shape)


def permute(a, dims):
    dims = tuple(d % a.ndim for d in dims)
    if sorted(dims) != list(range(a.ndim)):
        raise ShapeError(f"permute: {dims} is not an ordering of the {a.ndim} axes of {a.shape}")
    return Permute.apply(a, dims=dims)


def transpose(a, dim0: int, dim1: int):
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(a, dims=tuple(dims))


def t(a):
    """A matrix transposed; a 0-D or 1-D tensor unchanged (PyTorch's ``Tensor.t``)."""
    if a.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {a.ndim}")
    return Permute.apply(a, dims=tuple(reversed(range(a.ndim))))


def getitem(a, index):
    return GetItem.apply(a, index=unwrap_index(index))


def _dim(dim: int, ndim: int, name: str) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"{name}: dimension {dim} is out of range for {ndim} dimensions")
    return dim % ndim


def squeeze(a, dim=None):
    """Drop axes of length 1: all of them, or those in ``dim`` (others are left as they are)."""
    ndim = max(a.ndim, 1)
    if dim is None:
        dims = range(a.ndim)
    else:
        dims = {_dim(d, ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if not (i in dims and n == 1)))


def unsqueeze(a, dim: int):
    """Insert an axis of length 1 at ``dim`` (negative counts from the end of the result)."""
    dim = _dim(dim, a.ndim + 1, "unsqueeze")
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def cat(tensors, dim: int = 0):
    """Join tensors of the same shape but along ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ndim = np.ndim(unwrap(tensors[0]))
    return Cat.apply(*promote(*tensors), dim=_dim(dim, max(ndim, 1), "cat"))


def stack(tensors, dim: int = 0):
    """Join tensors of one shape along a new axis ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(np.shape(unwrap(t))) for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(f"stack: expected tensors of one shape, got shapes {sorted(shapes)}")
    ndim = len(shapes.pop())
    return Stack.apply(*promote(*tensors), dim=_dim(dim, ndim + 1, "stack"))


def expand(a, shape):
    """``a`` broadcast to ``shape`` without copying; -1 keeps an axis's length."""
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ShapeError(f"expand: cannot expand shape {a.shape} to fewer dimensions {shape}")
    full = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
    try:
        return Expand.apply(a, shape=full)
    except ValueError:
        raise ShapeError(f"expand: cannot expand shape {a.shape} to {tuple(shape)}") from None


def repeat(a, repeats):
    """``a`` tiled ``repeats[i]`` times along axis i; ``repeats`` may add leading axes."""
    repeats = tuple(repeats)
    if len(repeats) < a.ndim:
        raise ShapeError(
            f"repeat: expected at least {a.ndim} repeat counts for shape {a.shape}, got {repeats}"
        )
    return Repeat.apply(a, repeats=repeats)
