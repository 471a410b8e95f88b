"""Operations that move elements without changing them: reshape, flatten, permute, indexing."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ShapeError


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


def getitem(a, index):
    from ..tensor import unwrap  # shape.py loads while tensor.py is still being defined

    index = tuple(unwrap(i) for i in index) if isinstance(index, tuple) else unwrap(index)
    return GetItem.apply(a, index=index)
