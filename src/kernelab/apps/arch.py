"""Models from a compact text spec, so any layer stack can be tried without writing Python.

A spec is a comma-separated list of layers; input channels and features are inferred::

    conv5x5x32-same,relu,maxpool2,conv5x5x64-same,relu,maxpool2,flatten,linear10

==========================  ======================================================
``conv{k}x{C}``             k×k convolution with C kernels (``conv5x32``)
``conv{kh}x{kw}x{C}``       non-square kernel; options: ``-same``, ``-valid``, ``-p{n}``
                            (padding), ``-s{n}`` (stride), ``-d{n}`` (dilation),
                            ``-g{n}`` (groups), ``-dw`` (depthwise: C = in·multiplier),
                            ``-nobias``, ``-sym{type}`` (symmetric kernels: ``-symx``,
                            ``-symy``, ``-symxy``, ``-sympoint``, ``-symantipoint``,
                            ``-symrot90``; see ``kernelab.kernels.constraints``)
``maxpool{k}``/``avgpool{k}``  pooling, options ``-s{n}``, ``-p{n}``
``gap``                     global average pooling (AdaptiveAvgPool2d(1))
``relu``, ``leakyrelu``, ``sigmoid``, ``tanh``  activations (``leakyrelu:0.2``)
``bn``                      batch normalisation (2-D after convolutions, 1-D after flatten)
``dropout{p}``              dropout, e.g. ``dropout0.25``
``flatten``, ``linear{n}``  flatten, dense layer with n outputs
==========================  ======================================================

Each token is matched and built by its layer's entry in :mod:`kernelab.nn.layers`. Before a
layer is built its token is checked against the limits below (layers, token length, numbers,
weights, values per image); a spec past one is a :class:`SpecError` naming the layer.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..core.rng import as_generator
from ..core.tensor import Tensor
from ..nn.layers import LAYERS, SpecError

CLASSIC = "conv5x5x32-same,relu,maxpool2,conv5x5x64-same,relu,maxpool2,flatten,linear10"
# Limits of a spec, checked before each layer is built, so a typo cannot allocate gigabytes:
MAX_LAYERS = 256  # layers in one spec
MAX_TOKEN = 64  # characters in one layer's token
MAX_SPEC_NUMBER = 4096  # any number in a token: sizes, channels, features, options
MAX_LAYER_VALUES = 50_000_000  # weights of one layer, or values of its (padded) input or output


def _layer(token: str, shape: tuple[int, ...], generator) -> nn.Module:
    """One layer for ``token``, given the shape (without batch axis) that reaches it.

    Each layer's entry in :data:`kernelab.nn.layers.LAYERS` has the pattern its tokens match
    and builds the layer; an entry may decline a shape (``bn`` is 2-D only after images).
    """
    for layer in LAYERS.values():
        match = re.fullmatch(layer.spec, token) if layer.spec else None
        if match and (module := layer.from_spec(match, shape, generator)) is not None:
            return module
    raise SpecError(f"unknown layer '{token}' (see `kernelab train --help` for the spec syntax)")


def build(spec: str, input_shape: tuple[int, ...] = (1, 28, 28), generator=None) -> nn.Sequential:
    """A Sequential model from ``spec`` for inputs of ``input_shape`` (C, H, W).

    Each layer is tried on a zero input as it is added, so a layer that does not fit the
    shape before it is reported with its position in the spec. ``generator`` (a seed, a
    Generator, or None for the default one) is one stream that all layers draw from in turn.
    """
    generator = as_generator(generator)  # a seed passed on per layer would restart each draw
    layers: list[nn.Module] = []
    x = Tensor(np.zeros((1,) + tuple(input_shape), dtype=np.float32))
    tokens = [t.strip().lower() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise SpecError("empty architecture spec")
    if len(tokens) > MAX_LAYERS:
        raise SpecError(f"the spec has {len(tokens)} layers; at most {MAX_LAYERS} are built")
    for position, token in enumerate(tokens, 1):
        _check_token(position, token, tuple(x.shape[1:]))
        try:  # a layer may refuse its arguments (Conv2d's groups) or the shape it gets
            layer = _layer(token, tuple(x.shape[1:]), generator)
            _check_sizes(position, token, layer, tuple(x.shape[1:]))
            layer.eval()
            with no_grad():
                x = layer(x)
        except SpecError:
            raise
        except ValueError as error:
            raise SpecError(f"layer {position} '{token}': {error}") from None
        layers.append(layer)
    return nn.Sequential(*layers).train()


def _check_token(position: int, token: str, shape: tuple[int, ...]) -> None:
    """Refuse a token before its layer is built: printable, short, numbers within limits, and
    weights at most (input channels or features) x (the product of its numbers)."""
    if len(token) > MAX_TOKEN or not token.isprintable():
        raise SpecError(
            f"layer {position} {token[:MAX_TOKEN]!r}: expected a printable token of at most "
            f"{MAX_TOKEN} characters"
        )
    numbers = [int(n) for n in re.findall(r"\d+", token)]
    if any(n > MAX_SPEC_NUMBER for n in numbers):
        raise SpecError(
            f"layer {position} '{token}': {max(numbers)} is past {MAX_SPEC_NUMBER}, the largest "
            "number a spec takes"
        )
    if shape[0] * math.prod(n for n in numbers if n) > MAX_LAYER_VALUES:
        raise SpecError(
            f"layer {position} '{token}': with {shape[0]} inputs it could hold more than "
            f"{MAX_LAYER_VALUES:,} weights"
        )


def _check_sizes(position: int, token: str, layer: nn.Module, shape: tuple[int, ...]) -> None:
    """Refuse a layer whose padded input or output would pass MAX_LAYER_VALUES per image."""
    if len(shape) != 3 or not hasattr(layer, "padding"):
        return
    padding = layer.geometry.padding if hasattr(layer, "geometry") else layer.padding
    padding = padding if isinstance(padding, tuple) else (padding, padding)
    pads = [p if isinstance(p, tuple) else (p, p) for p in padding]  # ((top, bottom), ...)
    height, width = shape[1] + sum(pads[0]), shape[2] + sum(pads[1])
    channels = max(shape[0], getattr(layer, "out_channels", 0))
    if channels * height * width > MAX_LAYER_VALUES:
        raise SpecError(
            f"layer {position} '{token}': {channels} channels of {height}x{width} are more than "
            f"{MAX_LAYER_VALUES:,} values"
        )
