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
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..core.rng import as_generator
from ..core.tensor import Tensor
from ..kernels import constraints

CLASSIC = "conv5x5x32-same,relu,maxpool2,conv5x5x64-same,relu,maxpool2,flatten,linear10"

_CONV = re.compile(r"conv(\d+)(?:x(\d+))?x(\d+)((?:-[a-z]+\d*)*)$")
_POOL = re.compile(r"(max|avg)pool(\d+)((?:-[a-z]+\d*)*)$")
_OPTION = re.compile(r"-([a-z]+)(\d*)")


class SpecError(ValueError):
    """A spec that cannot be turned into layers; the message points at the bad part."""


def _options(text: str, allowed: set[str], token: str) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for name, number in _OPTION.findall(text):
        if name not in allowed:
            raise SpecError(f"'{token}': unknown option -{name} (allowed: {sorted(allowed)})")
        found[name] = int(number) if number else None
    return found


def _conv(match: re.Match, channels: int, token: str, generator) -> nn.Conv2d:
    kh, kw, c_out = int(match[1]), int(match[2] or match[1]), int(match[3])
    symmetry, rest = _symmetry(match[4], token)
    opts = _options(rest, {"same", "valid", "p", "s", "d", "g", "dw", "nobias"}, token)
    padding = "same" if "same" in opts else opts.get("p") or 0
    groups = channels if "dw" in opts else opts.get("g") or 1
    if "dw" in opts:
        c_out = channels * (opts["dw"] or max(1, c_out // channels))
    return nn.Conv2d(
        channels,
        c_out,
        (kh, kw),
        stride=opts.get("s") or 1,
        padding=padding,
        dilation=opts.get("d") or 1,
        groups=groups,
        bias="nobias" not in opts,
        generator=generator,
        symmetry=symmetry,
    )


def _symmetry(text: str, token: str) -> tuple[str | None, str]:
    """The ``-sym{type}`` option of a conv token (type as in Conv2d), and the other options."""
    found = [(m, m[1] + m[2]) for m in _OPTION.finditer(text) if m[1].startswith("sym")]
    if len(found) > 1:
        raise SpecError(f"'{token}': more than one -sym option")
    if not found:
        return None, text
    match, name = found[0]
    symmetry = name[3:]  # "-symrot90" matches as "symrot" + "90": glued back to "rot90"
    if symmetry not in constraints.SYMMETRIES:
        valid = ", ".join(f"-sym{s}" for s in constraints.SYMMETRIES)
        raise SpecError(f"'{token}': unknown symmetry -{name} (valid: {valid})")
    return symmetry, text[: match.start()] + text[match.end() :]


def _layer(token: str, shape: tuple[int, ...], generator) -> nn.Module:
    """One layer for ``token``, given the shape (without batch axis) that reaches it."""
    if match := _CONV.match(token):
        if len(shape) != 3:
            raise SpecError(f"'{token}' needs an image input (C, H, W), got shape {shape}")
        return _conv(match, shape[0], token, generator)
    if match := _POOL.match(token):
        opts = _options(match[3], {"s", "p"}, token)
        pool = nn.MaxPool2d if match[1] == "max" else nn.AvgPool2d
        return pool(int(match[2]), stride=opts.get("s"), padding=opts.get("p") or 0)
    if token.startswith("linear") and token[6:].isdigit():
        if len(shape) != 1:
            raise SpecError(f"'{token}' needs a flat input: put 'flatten' before it")
        return nn.Linear(shape[0], int(token[6:]), generator=generator)
    if token.startswith("dropout"):
        return nn.Dropout(float(token[7:] or 0.5))
    if token.startswith("leakyrelu"):
        return nn.LeakyReLU(float(token.partition(":")[2] or 0.01))
    if token == "bn":
        return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])
    simple: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "flatten": nn.Flatten,
        "gap": lambda: nn.AdaptiveAvgPool2d(1),
    }
    if token in simple:
        return simple[token]()
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
    for position, token in enumerate(tokens, 1):
        try:  # a layer may refuse its arguments (Conv2d's groups) or the shape it gets
            layer = _layer(token, tuple(x.shape[1:]), generator)
            layer.eval()
            with no_grad():
                x = layer(x)
        except SpecError:
            raise
        except ValueError as error:
            raise SpecError(f"layer {position} '{token}': {error}") from None
        layers.append(layer)
    return nn.Sequential(*layers).train()
