"""Dense layers and the layers that only reshape: Linear, Flatten, Identity."""

from __future__ import annotations

import math

from .. import functional as F
from .module import Module, check_device, new_parameter


class Linear(Module):
    """``y = x Wᵀ + b`` with W of shape (out_features, in_features).

    Default initialisation is PyTorch's: U(−1/√in_features, 1/√in_features) for W and b.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        generator=None,
    ):
        super().__init__()
        if device is not None:
            check_device(device)
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0  # PyTorch: zero bias
        self.weight = new_parameter((out_features, in_features), bound, dtype, generator)
        self.bias = new_parameter((out_features,), bound, dtype, generator) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input: a placeholder where a layer is optional."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
