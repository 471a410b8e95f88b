"""``kernelab.Size``: the tuple of ints that ``Tensor.shape`` and ``Tensor.size()`` return.

It is PyTorch's ``torch.Size``: a plain tuple (it equals and hashes as one), printed as
``kernelab.Size([6, 1, 5, 5])``, with ``numel()``; slicing it, adding a tuple to it or repeating
it gives a Size again. ``Size(sizes)`` checks that every item is an int; ``Tensor.shape``, read
often, skips the check with ``tuple.__new__(Size, array.shape)`` (NumPy's sizes are ints).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable


class Size(tuple):
    """The sizes of a tensor's dimensions, as a tuple of ints."""

    __slots__ = ()

    def __new__(cls, sizes: Iterable = ()) -> Size:
        checked = []
        for i, item in enumerate(sizes):
            try:
                checked.append(operator.index(item))
            except TypeError:
                raise TypeError(
                    f"kernelab.Size() takes an iterable of 'int' "
                    f"(item {i} is '{type(item).__name__}')"
                ) from None
        return tuple.__new__(cls, checked)

    def numel(self) -> int:
        """The number of elements a tensor of this size holds (1 for ``Size([])``)."""
        return math.prod(self)

    def __repr__(self) -> str:
        return f"kernelab.Size({list(self)})"

    __str__ = __repr__

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return tuple.__new__(Size, item) if isinstance(index, slice) else item

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return tuple.__new__(Size, tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return tuple.__new__(Size, tuple.__add__(other, self))

    def __mul__(self, times):
        repeated = tuple.__mul__(self, times)
        return repeated if repeated is NotImplemented else tuple.__new__(Size, repeated)

    __rmul__ = __mul__

    def __getnewargs__(self):
        return (tuple(self),)
