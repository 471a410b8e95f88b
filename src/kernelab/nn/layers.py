"""One entry per layer class: what the rest of the library needs to know about it.

:data:`LAYERS` maps each layer class to a :class:`Layer`: its token in an architecture spec
(``apps/arch.py``), its PyTorch twin (``interop.from_torch``), its window and cost
(``kernels/summary.py``) and what the explain page calls it (``apps/explain``). Those
modules read the entry instead of asking which class a module is, so a new layer is its
functional op, its module and one entry here, plus its ONNX mapping if it has one
(``onnx/export_ops.py`` for the traced op, ``onnx/load_layers.py`` for the ONNX node).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..functional.geometry import pair
from ..kernels import constraints
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .linear import Flatten, Identity, Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

Shape = tuple[int, ...]
# (module, input shape, output shape), both with the batch axis
Window = Callable[[Module, Shape, Shape], Any]
Macs = Callable[[Module, Shape, Shape], int]
# (the match of the whole token, the input shape without batch axis, a Generator)
FromSpec = Callable[[re.Match, Shape, Any], Module | None]


def keeps_layout(module: Module, x_shape: Shape, y_shape: Shape) -> str | None:
    """The string "same" when the spatial size is kept (activations, batch norm), else None."""
    return "same" if y_shape[2:] == x_shape[2:] else None


def no_macs(module: Module, x_shape: Shape, y_shape: Shape) -> int:
    return 0


@dataclass(frozen=True)
class Layer:
    """What the library outside ``nn`` knows about one layer class.

    - ``kind``: the explain page's name for what it does ("conv", "activation", ...);
    - ``spec``: the regular expression its architecture-spec tokens match in full, and
      ``from_spec(match, shape, generator)`` the layer for one, given the shape (without
      batch axis) that reaches it; None when the token is not for that shape;
    - ``from_torch(m)``: the layer equal to ``m``, the PyTorch module of the same class name;
    - ``window(module, x_shape, y_shape)``: ((k, s, d, p_before) for h, for w) for the
      receptive-field recurrences, "same" when the layout is kept, None when not described;
    - ``macs(module, x_shape, y_shape)``: multiply-accumulates per image.
    """

    kind: str = "other"
    spec: str | None = None
    from_spec: FromSpec | None = None
    from_torch: Callable[[Any], Module] | None = None
    window: Window = keeps_layout
    macs: Macs = no_macs


OTHER = Layer()  # a module without an entry: drawn as a plain box, no window, no MACs


class SpecError(ValueError):
    """A spec that cannot be turned into layers; the message points at the bad part."""


# ---- architecture-spec tokens
_OPTIONS = r"((?:-[a-z]+\d*)*)"
_OPTION = re.compile(r"-([a-z]+)(\d*)")


def _options(text: str, allowed: set[str], token: str) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for name, number in _OPTION.findall(text):
        if name not in allowed:
            allowed_text = ", ".join(f"-{a}" for a in sorted(allowed))
            raise SpecError(f"'{token}': unknown option -{name} (allowed: {allowed_text})")
        found[name] = int(number) if number else None
    return found


def _number(opts: dict[str, int | None], name: str, default: int) -> int:
    """An option's number; ``default`` when it is absent or written without one (``-s0`` is
    0, which the layer refuses, never the default)."""
    value = opts.get(name)
    return default if value is None else value


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


def _conv_spec(match: re.Match, shape: Shape, generator) -> Conv2d:
    token = match[0]
    if len(shape) != 3:
        raise SpecError(f"'{token}' needs an image input (C, H, W), got shape {shape}")
    channels = shape[0]
    kh, kw, c_out = int(match[1]), int(match[2] or match[1]), int(match[3])
    symmetry, rest = _symmetry(match[4], token)
    opts = _options(rest, {"same", "valid", "p", "s", "d", "g", "dw", "nobias"}, token)
    padding = "same" if "same" in opts else _number(opts, "p", 0)
    groups = channels if "dw" in opts else _number(opts, "g", 1)
    if "dw" in opts:
        c_out = channels * (opts["dw"] or max(1, c_out // channels))
    return Conv2d(
        channels, c_out, (kh, kw), stride=_number(opts, "s", 1), padding=padding,
        dilation=_number(opts, "d", 1), groups=groups, bias="nobias" not in opts,
        generator=generator, symmetry=symmetry,
    )  # fmt: skip


def _pool_spec(kind: type) -> FromSpec:
    def build(match: re.Match, shape: Shape, generator) -> Module:
        opts = _options(match[2], {"s", "p"}, match[0])
        return kind(int(match[1]), stride=opts.get("s"), padding=_number(opts, "p", 0))

    return build


def _linear_spec(match: re.Match, shape: Shape, generator) -> Linear:
    if len(shape) != 1:
        raise SpecError(f"'{match[0]}' needs a flat input: put 'flatten' before it")
    return Linear(shape[0], int(match[1]), generator=generator)


def _batch_norm_spec(kind: type, image: bool) -> FromSpec:
    """2-D after convolutions (an image input), 1-D after flatten."""
    return lambda match, shape, generator: kind(shape[0]) if (len(shape) == 3) == image else None


def _plain(make: Callable[[], Module]) -> FromSpec:
    return lambda match, shape, generator: make()


# ---- PyTorch twins: the same arguments, read from the torch module
def _dtype(tensor: Any) -> np.dtype | None:
    return None if tensor is None else tensor.detach().cpu().numpy().dtype


def _conv_torch(m: Any) -> Conv2d:
    if m.padding_mode != "zeros":
        raise NotImplementedError(
            f"from_torch: {m}: padding_mode={m.padding_mode!r} is not supported (only 'zeros')"
        )
    return Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
        m.groups, bias=m.bias is not None, dtype=_dtype(m.weight),
    )  # fmt: skip


def _max_pool_torch(m: Any) -> MaxPool2d:
    if m.return_indices:
        raise NotImplementedError(f"from_torch: {m}: return_indices=True is not supported")
    return MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)


def _avg_pool_torch(m: Any) -> AvgPool2d:
    return AvgPool2d(
        m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override
    )


def _batch_norm_torch(kind: type) -> Callable[[Any], Module]:
    def convert(m: Any) -> Module:
        dtype = _dtype(m.weight if m.affine else m.running_mean)
        return kind(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dtype)

    return convert


def _linear_torch(m: Any) -> Linear:
    return Linear(m.in_features, m.out_features, m.bias is not None, dtype=_dtype(m.weight))


# ---- windows and costs (kernels/summary.py)
def _conv_window(module: Conv2d, x_shape: Shape, y_shape: Shape):
    g = module.geometry
    return tuple((g.kernel_size[a], g.stride[a], g.dilation[a], g.padding[a][0]) for a in (0, 1))


def _pool_window(module: Module, x_shape: Shape, y_shape: Shape):
    k = pair(module.kernel_size, "kernel_size")
    s = pair(module.stride, "stride")
    p = pair(module.padding, "padding")
    d = pair(getattr(module, "dilation", 1), "dilation")  # average pooling has none
    return tuple((k[a], s[a], d[a], p[a]) for a in (0, 1))


def _adaptive_window(module: AdaptiveAvgPool2d, x_shape: Shape, y_shape: Shape):
    sizes, outs = x_shape[2:], y_shape[2:]
    if any(i % o for i, o in zip(sizes, outs, strict=True)):
        return None  # windows of unequal sizes: no single (k, s) describes them
    return tuple((i // o, i // o, 1, 0) for i, o in zip(sizes, outs, strict=True))


def _conv_macs(module: Conv2d, x_shape: Shape, y_shape: Shape) -> int:
    """Every output value weighs depth·kH·kW inputs."""
    c_out, depth, kh, kw = module.weight.shape
    return y_shape[2] * y_shape[3] * c_out * depth * kh * kw


def _linear_macs(module: Linear, x_shape: Shape, y_shape: Shape) -> int:
    positions = math.prod(y_shape[1:-1])  # extra axes between batch and features
    return positions * module.in_features * module.out_features


LAYERS: dict[type[Module], Layer] = {
    Conv2d: Layer(
        "conv",
        spec=r"conv(\d+)(?:x(\d+))?x(\d+)" + _OPTIONS,
        from_spec=_conv_spec,
        from_torch=_conv_torch,
        window=_conv_window,
        macs=_conv_macs,
    ),
    MaxPool2d: Layer(
        "maxpool",
        spec=r"maxpool(\d+)" + _OPTIONS,
        from_spec=_pool_spec(MaxPool2d),
        from_torch=_max_pool_torch,
        window=_pool_window,
    ),
    AvgPool2d: Layer(
        "avgpool",
        spec=r"avgpool(\d+)" + _OPTIONS,
        from_spec=_pool_spec(AvgPool2d),
        from_torch=_avg_pool_torch,
        window=_pool_window,
    ),
    AdaptiveAvgPool2d: Layer(
        "adaptivepool",
        spec="gap",
        from_spec=_plain(lambda: AdaptiveAvgPool2d(1)),
        from_torch=lambda m: AdaptiveAvgPool2d(m.output_size),
        window=_adaptive_window,
    ),
    Linear: Layer(
        "linear",
        spec=r"linear(\d+)",
        from_spec=_linear_spec,
        from_torch=_linear_torch,
        macs=_linear_macs,
    ),
    ReLU: Layer("activation", spec="relu", from_spec=_plain(ReLU), from_torch=lambda m: ReLU()),
    LeakyReLU: Layer(
        "activation",
        spec="leakyrelu.*",  # leakyrelu:0.2
        from_spec=lambda match, shape, g: LeakyReLU(float(match[0].partition(":")[2] or 0.01)),
        from_torch=lambda m: LeakyReLU(m.negative_slope),
    ),
    Sigmoid: Layer(
        "activation", spec="sigmoid", from_spec=_plain(Sigmoid), from_torch=lambda m: Sigmoid()
    ),
    Tanh: Layer("activation", spec="tanh", from_spec=_plain(Tanh), from_torch=lambda m: Tanh()),
    Softmax: Layer(from_torch=lambda m: Softmax(m.dim)),
    LogSoftmax: Layer(from_torch=lambda m: LogSoftmax(m.dim)),
    Flatten: Layer(
        "flatten",
        spec="flatten",
        from_spec=_plain(Flatten),
        from_torch=lambda m: Flatten(m.start_dim, m.end_dim),
    ),
    BatchNorm2d: Layer(
        "batchnorm",
        spec="bn",
        from_spec=_batch_norm_spec(BatchNorm2d, image=True),
        from_torch=_batch_norm_torch(BatchNorm2d),
    ),
    BatchNorm1d: Layer(
        "batchnorm",
        spec="bn",
        from_spec=_batch_norm_spec(BatchNorm1d, image=False),
        from_torch=_batch_norm_torch(BatchNorm1d),
    ),
    Dropout: Layer(
        "identity",
        spec="dropout(.*)",  # dropout0.25
        from_spec=lambda match, shape, g: Dropout(float(match[1] or 0.5)),
        from_torch=lambda m: Dropout(m.p),
    ),
    Dropout2d: Layer("identity", from_torch=lambda m: Dropout2d(m.p)),
    Identity: Layer("identity", from_torch=lambda m: Identity()),
}


def entry(module: Module) -> Layer:
    """The entry of the module's class, or of its nearest registered base class, else OTHER."""
    return next((LAYERS[c] for c in type(module).__mro__ if c in LAYERS), OTHER)
