"""The Tensor's shape methods: views, reshapes, transposes, expansion and indexing.

Each calls the op of its name in ``kernelab.functional.shape``; sizes are given as
``x.reshape(2, 3)`` or ``x.reshape((2, 3))``.
"""

from __future__ import annotations

import numpy as np

from ..functional import shape as F
from ..functional.shape import shape_arg


class ShapeMethods:
    """``reshape``, ``view``, ``flatten``, ``permute``, ``squeeze``, ``expand``, ``x[i]`` ..."""

    array: np.ndarray

    def reshape(self, *shape):
        return F.reshape(self, shape_arg(shape))

    view = reshape

    def view_as(self, other):
        return F.reshape(self, other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return F.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return F.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return F.permute(self, shape_arg(dims))

    def t(self):
        return F.t(self)

    @property
    def T(self):
        return F.permute(self, tuple(reversed(range(self.array.ndim))))

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def unsqueeze(self, dim: int):
        return F.unsqueeze(self, dim)

    def expand(self, *sizes):
        return F.expand(self, shape_arg(sizes))

    def expand_as(self, other):
        return F.expand(self, other.shape)

    def repeat(self, *sizes):
        return F.repeat(self, shape_arg(sizes))

    def __getitem__(self, index):
        return F.getitem(self, index)
