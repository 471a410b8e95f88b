"""Batch normalisation layers: learned scale and shift, running statistics as buffers."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..core.dtypes import get_default_dtype
from ..core.errors import ShapeError
from .module import Module, Parameter, check_device


class BatchNorm(Module):
    """Normalise axis 1 of an input of a rank in ``expected_ndim``: BatchNorm1d/2d's base."""

    expected_ndim: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if device is not None:
            check_device(device)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = np.dtype(dtype or get_default_dtype())
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ShapeError(
                f"expected a {' or '.join(map(str, self.expected_ndim))}-D input with "
                f"{self.num_features} channels in axis 1, got shape {tuple(x.shape)}"
            )
        return F.batch_norm(x, *self.step_arguments())

    def step_arguments(self) -> tuple:
        """The functional batch norm's arguments after x for this call, counting the batch:
        ``(running_mean, running_var, weight, bias, training, momentum, eps)``. Fused callers
        (``Sequential``'s batch norm + ReLU) take them from here, so they move the running
        statistics exactly as :meth:`forward` does."""
        momentum, training, running_mean = self.momentum, self.training, self.running_mean
        if training and self.track_running_stats:
            count = self.num_batches_tracked.array  # 0-D: set as a Python int, not a ufunc
            count[()] = count.item() + 1
            if momentum is None:  # a cumulative average over all batches so far
                momentum = 1.0 / float(count)
        return (
            running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training or running_mean is None,  # untracked: batch statistics always
            momentum or 0.0,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm2d(BatchNorm):
    """Normalise each channel of (N, C, H, W) over N, H and W."""

    expected_ndim = (4,)


class BatchNorm1d(BatchNorm):
    """Normalise each feature of (N, C) or (N, C, L)."""

    expected_ndim = (2, 3)
