"""The convolution layer: it owns the kernels and the bias, and calls ``F.conv2d``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad, unwrap
from ..core.tensor import Tensor
from ..functional.geometry import conv_geometry
from ..kernels import constraints
from .module import Module, Parameter, check_device, new_parameter


class Conv2d(Module):
    """2-D convolution layer with PyTorch's arguments.

    The kernel (``weight``) has shape (out_channels, in_channels/groups, kH, kW): each of the
    ``out_channels`` kernels is as deep as the input channels of its group. Default
    initialisation is PyTorch's: U(−1/√fan_in, 1/√fan_in) with fan_in = in_channels/groups·kH·kW
    (PyTorch writes it as kaiming_uniform_(a=√5), which is the same distribution).
    ``generator`` (a seed or ``np.random.Generator``) makes that draw reproducible.

    ``symmetry`` (``"x"``, ``"y"``, ``"xy"``, ``"point"``, ``"antipoint"``, ``"rot90"``; see
    :mod:`kernelab.kernels.constraints`) makes every kernel symmetric by construction: the layer
    learns only the free parameters ``weight_free`` (out_channels, in_channels/groups, n_free)
    and ``weight`` is the kernel built from them in each forward pass (read-only; assigning a
    full kernel to ``weight`` stores its symmetric part). The initial kernel is the symmetric
    part of the default draw.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
        generator=None,
        symmetry: str | None = None,
    ):
        super().__init__()
        name = f"Conv2d({in_channels}, {out_channels}, kernel_size={kernel_size})"
        self.symmetry = None  # set for real once the kernel exists
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not supported")
        if device is not None:
            check_device(device)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: channel counts must be positive")
        if groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels and out_channels must be divisible by groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        try:
            geometry = conv_geometry(kernel_size, stride, padding, dilation, groups)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        self.kernel_size, self.stride = geometry.kernel_size, geometry.stride
        self.dilation, self.geometry = geometry.dilation, geometry
        self.padding = padding if isinstance(padding, str) else geometry.padding
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1 / math.sqrt(fan_in)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        kernel = new_parameter(shape, bound, dtype, generator)
        if symmetry is None:
            self.weight = kernel
        else:
            try:
                self._orbits = constraints.orbits(symmetry, self.kernel_size)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
            self.weight_free = Parameter(constraints.project(kernel, self._orbits))
            self.symmetry = symmetry
        self.bias = new_parameter((out_channels,), bound, dtype, generator) if bias else None

    @property
    def weight(self) -> Tensor | None:
        """The kernel (out_channels, in_channels/groups, kH, kW); built from θ when symmetric."""
        if self.symmetry is None:
            return self._parameters["weight"]
        return constraints.expand(self.weight_free, self._orbits)

    @weight.setter
    def weight(self, value: Any) -> None:
        # Only non-Parameter values get here (Module.__setattr__ registers Parameters).
        if value is not None:
            raise TypeError(
                f"cannot assign {type(value).__name__} as parameter 'weight' "
                f"(a Parameter or None expected)"
            )
        self._parameters["weight"] = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "weight" and self.__dict__.get("symmetry") is not None:
            self._set_symmetric_kernel(value)
        else:
            super().__setattr__(name, value)

    def _set_symmetric_kernel(self, value: Any) -> None:
        """Store the θ of the symmetric part of a full kernel, in place (optimisers keep it)."""
        kernel = np.asarray(unwrap(value))
        expected = self.weight_free.array.shape[:2] + self.kernel_size
        if kernel.shape != expected:
            raise ValueError(
                f"{self._short_repr()}: expected a kernel of shape {expected}, got {kernel.shape}"
            )
        np.copyto(self.weight_free.array, constraints.project(kernel, self._orbits))

    def materialize(self) -> np.ndarray:
        """A copy of the full kernel (out_channels, in_channels/groups, kH, kW), no graph."""
        with no_grad():
            return np.array(self.weight.array, copy=True)

    def forward(self, x):
        g = self.geometry
        return F.conv2d(x, self.weight, self.bias, g.stride, g.padding, g.dilation, g.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += f", stride={self.stride}"
        if self.padding != ((0, 0), (0, 0)):
            padding = self.padding
            if (
                not isinstance(padding, str)
                and padding[0][0] == padding[0][1]
                and (padding[1][0] == padding[1][1])
            ):
                padding = (padding[0][0], padding[1][0])
            text += f", padding={padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.symmetry is not None:
            text += f", symmetry={self.symmetry!r}"
        return text
