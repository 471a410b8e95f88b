"""Dropout layers: active in training mode only."""

from __future__ import annotations

from .. import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` while training; identity in ``eval()``."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zero whole feature maps with probability ``p`` while training."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, generator=self.generator)
