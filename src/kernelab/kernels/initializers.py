"""Initialisers by name: the one registry that turns a command-line name into an initialiser.

``get_initializer("he_normal")`` or ``get_initializer("gaussian:1.5")`` returns
``f(weight, generator=None)``; the names are PyTorch's (``kaiming_uniform``), Keras's
(``glorot_normal``) and kernelab's hand-designed banks (``sobel``, ``gabor``, ``edges``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import ShapeError
from ..core.tensor import Tensor
from . import designed as K
from .init import (
    Generator,
    constant_,
    dirac_,
    eye_,
    fan_in_and_fan_out,
    kaiming_normal_,
    kaiming_uniform_,
    kernel_,
    lecun_normal_,
    lecun_uniform_,
    normal_,
    ones_,
    orthogonal_,
    trunc_normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)


def _torch_default(weight: Tensor, generator: Generator = None) -> Tensor:
    """PyTorch's default conv/linear init: U(-1/√fan_in, 1/√fan_in).

    PyTorch writes it kaiming_uniform_(a=√5): gain √(2/(1+5)) times √(3/fan_in) is 1/√fan_in.
    """
    bound = 1.0 / math.sqrt(fan_in_and_fan_out(weight)[0])
    return uniform_(weight, -bound, bound, generator)


def _gabor_bank(size: tuple[int, int], out_channels: int) -> list[np.ndarray]:
    """Even Gabor kernels at min(C_out, 8) orientations evenly spread over [0, π)."""
    n = min(out_channels, 8)
    return [K.gabor(size, math.pi * i / n) for i in range(n)]


def _edge_bank(size: tuple[int, int]) -> list[np.ndarray]:
    """Sobel, Scharr (3x3 only), Prewitt x/y and the Laplacian, at the weight's size."""
    scharr = [K.scharr_x(), K.scharr_y()] if size == (3, 3) else []
    sobel = [K.sobel_x(size), K.sobel_y(size)]
    return sobel + scharr + [K.prewitt_x(size), K.prewitt_y(size), K.laplacian(4, size)]


def _designed_bank(weight: Tensor, make: Callable[[tuple[int, int]], Any]) -> Tensor:
    """``kernel_`` with the kernels ``make`` builds at the weight's (kH, kW)."""
    if weight.ndim != 4:
        raise ShapeError(
            f"hand-designed kernels need a conv weight (C_out, C_in/groups, kH, kW), "
            f"received shape {weight.shape}"
        )
    return kernel_(weight, make(tuple(weight.shape[-2:])))


# name -> f(weight, generator, *parameters); the parameters are read from "name:p1:p2".
_BY_NAME: dict[str, Callable[..., Tensor]] = {
    "default": _torch_default,
    "zeros": lambda weight, generator: zeros_(weight),
    "ones": lambda weight, generator: ones_(weight),
    "constant": lambda weight, generator, val: constant_(weight, val),
    "normal": lambda weight, generator, std=1.0, mean=0.0: normal_(weight, mean, std, generator),
    "uniform": lambda weight, generator, a=0.0, b=1.0: uniform_(weight, a, b, generator),
    "trunc_normal": lambda weight, generator, std=1.0, a=-2.0, b=2.0: trunc_normal_(
        weight, 0.0, std, a, b, generator
    ),
    "xavier_uniform": lambda weight, generator, gain=1.0: xavier_uniform_(weight, gain, generator),
    "xavier_normal": lambda weight, generator, gain=1.0: xavier_normal_(weight, gain, generator),
    "kaiming_uniform": lambda weight, generator, a=0.0: kaiming_uniform_(
        weight, a, generator=generator
    ),
    "kaiming_normal": lambda weight, generator, a=0.0: kaiming_normal_(
        weight, a, generator=generator
    ),
    "lecun_normal": lecun_normal_,
    "lecun_uniform": lecun_uniform_,
    "orthogonal": lambda weight, generator, gain=1.0: orthogonal_(weight, gain, generator),
    "dirac": lambda weight, generator, groups=1: dirac_(weight, groups),
    "eye": lambda weight, generator: eye_(weight),
    "sobel": lambda weight, generator: _designed_bank(
        weight, lambda size: [K.sobel_x(size), K.sobel_y(size)]
    ),
    "gabor": lambda weight, generator: _designed_bank(
        weight, lambda size: _gabor_bank(size, weight.shape[0])
    ),
    "gaussian": lambda weight, generator, sigma=None: _designed_bank(
        weight, lambda size: K.gaussian(size, sigma)
    ),
    "laplacian": lambda weight, generator, neighbours=4: _designed_bank(
        weight, lambda size: K.laplacian(neighbours, size)
    ),
    "edges": lambda weight, generator: _designed_bank(weight, _edge_bank),
}
_BY_NAME |= {  # Keras's names for the same draws
    "glorot_uniform": _BY_NAME["xavier_uniform"],
    "glorot_normal": _BY_NAME["xavier_normal"],
    "he_uniform": _BY_NAME["kaiming_uniform"],
    "he_normal": _BY_NAME["kaiming_normal"],
}
INITIALIZERS: list[str] = list(_BY_NAME)
HAND_DESIGNED: frozenset[str] = frozenset({"sobel", "gabor", "gaussian", "laplacian", "edges"})


def get_initializer(name: str) -> Callable[..., Tensor]:
    """The initialiser a command-line name selects, as ``f(weight, generator=None)``.

    ``name[:p1[:p2]]``, parameters in order: ``constant:val``, ``normal[:std[:mean]]``,
    ``uniform[:a[:b]]``, ``trunc_normal[:std[:a[:b]]]``, ``xavier_*[:gain]``,
    ``kaiming_*[:a]``, ``orthogonal[:gain]``, ``dirac[:groups]``, ``gaussian[:sigma]``,
    ``laplacian[:neighbours]``. ``default`` is PyTorch's conv default; ``sobel``,
    ``gabor``, ``gaussian``, ``laplacian`` and ``edges`` are hand-designed kernels sized to
    the weight (see :func:`kernel_`). Names: :data:`INITIALIZERS`; ``-`` may replace ``_``.
    Unknown names and malformed parameters raise ``ValueError``.
    """
    fn, params = K.parse_spec(name, _BY_NAME, "initializer", skip=2)

    def initialize(weight: Tensor, generator: Generator = None) -> Tensor:
        try:
            return fn(weight, generator, *params)
        except ValueError as error:  # the parameters do not suit each other or this weight
            kind = ShapeError if isinstance(error, ShapeError) else ValueError
            raise kind(f"initializer {name[:60]!r}: {error}") from None

    initialize.__name__ = f"initialize[{name}]"
    return initialize
