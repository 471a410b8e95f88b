"""What the explain page shows, computed with the engine: feature maps and their arithmetic.

:func:`trace` runs one image through a model and keeps every leaf layer's input and output.
:func:`forward_view` turns a trace into the compact JSON the page draws (each feature map
quantised to uint8 with its own min and max). :func:`arithmetic` recomputes one output value
of one layer from its inputs with the numbers laid out: the window of a convolution, the
kernel, the element-wise products and their sum, the bias; the winner of a max pooling; the
largest terms w_i·x_i of a dense layer. Nothing here knows about HTTP.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..functional.pool import _pool_geometry  # the pooling's own window layout, ceil_mode too
from ..tensor import Tensor

class ExplainError(ValueError):
    """A request the explainer refuses; ``status`` is the HTTP status the web layer sends."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)
TOP_TERMS = 12  # terms w_i·x_i of a dense layer listed one by one


@dataclass
class Step:
    """One call of a leaf layer: its input and output for one image (batch axis dropped).

    ``source`` is the index of the step whose output was this step's input, -1 for the
    model's input, None when it cannot be told (a layer fed by an operation in between).
    """

    index: int
    name: str
    module: nn.Module
    x: np.ndarray
    y: np.ndarray
    source: int | None

    @property
    def label(self) -> str:
        """The module's name in the model, or its type for a model that is one layer."""
        return self.name or type(self.module).__name__


def trace(model: nn.Module, x: np.ndarray) -> tuple[list[Step], np.ndarray]:
    """Every leaf layer's input and output, in call order, and the model's output.

    Each leaf's ``forward`` is wrapped for one evaluation-mode pass, so any model works, not
    only a Sequential. Shape: x (1, C, H, W) → output (classes,).
    """
    steps: list[Step] = []
    produced: dict[int, int] = {}  # id(output tensor) → step index
    alive: list[Tensor] = []  # keeps the ids above from being reused during the pass
    inputs = Tensor(x)
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]

    def recording(name: str, module: nn.Module):
        forward = module.forward

        def wrapper(*args, **kwargs):
            tensor = args[0]
            out = forward(*args, **kwargs)
            source = produced.get(id(tensor), -1 if tensor is inputs else None)
            produced[id(out)] = len(steps)
            alive.append(out)
            steps.append(Step(len(steps), name, module, tensor.data[0], out.data[0], source))
            return out

        return wrapper

    try:
        for name, module in leaves:
            module.forward = recording(name, module)
        with no_grad():
            out = model(inputs).data[0]
    finally:
        for _, module in leaves:
            del module.forward
    return steps, out


def kind(module: nn.Module) -> str:
    """The page's name for what a layer does."""
    kinds = (
        (nn.Conv2d, "conv"),
        (nn.MaxPool2d, "maxpool"),
        (nn.AvgPool2d, "avgpool"),
        (nn.AdaptiveAvgPool2d, "adaptivepool"),
        (nn.Linear, "linear"),
        (ACTIVATIONS, "activation"),
        (nn.Flatten, "flatten"),
        ((nn.BatchNorm1d, nn.BatchNorm2d), "batchnorm"),
        ((nn.Dropout, nn.Identity), "identity"),
    )
    return next((name for types, name in kinds if isinstance(module, types)), "other")


def encode(maps: np.ndarray) -> dict:
    """Feature maps as uint8 in base64, each rescaled by its own min and max.

    Shape: (C, H, W), (C, L) or (F,) (one map). The page reads a value back as
    ``lo[c] + q·(hi[c] − lo[c]) / 255``, exact to within (hi − lo) / 510.
    """
    shape = maps.shape
    flat = maps.reshape(1 if maps.ndim == 1 else shape[0], -1).astype(np.float32, copy=False)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = hi - lo
    scale = np.divide(255, span, out=np.zeros_like(span), where=span > 0)
    q = np.rint((flat - lo[:, None]) * scale[:, None]).astype(np.uint8)  # (C, H·W)
    return {
        "shape": list(shape),
        "lo": lo.tolist(),
        "hi": hi.tolist(),
        "data": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False) if p is not None)


def structure(steps: list[Step]) -> list[dict]:
    """Every layer: name, type, what it does, input and output shapes, parameter count."""
    layers = []
    for step in steps:
        module = step.module
        layers.append({
            "index": step.index,
            "name": step.label,
            "type": type(module).__name__,
            "kind": kind(module),
            "text": f"{type(module).__name__}({module.extra_repr()})",
            "input_shape": list(step.x.shape),
            "shape": list(step.y.shape),
            "params": parameter_count(module),
            "source": step.source,
            "symmetry": getattr(module, "symmetry", None),
        })
    return layers


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def forward_view(x: np.ndarray, steps: list[Step], logits: np.ndarray) -> dict:
    """The model input, every layer's feature maps (encoded), the logits and probabilities."""
    probabilities = softmax(logits)
    return {
        "input": encode(x[0]),
        "layers": [encode(step.y) for step in steps],
        "logits": logits.astype(np.float64).tolist(),
        "probabilities": probabilities.tolist(),
        "prediction": int(probabilities.argmax()),
    }


# ---- the arithmetic of one output value


def as_maps(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A layer's output shape seen as (channels, height, width): (F,) → (F, 1, 1)."""
    if len(shape) == 3:
        return shape
    return (shape[0], 1, shape[1]) if len(shape) == 2 else (int(np.prod(shape)), 1, 1)


def check_position(step: Step, channel: int, y: int, x: int) -> None:
    """A clear error when (channel, y, x) is not a value of this layer's output."""
    maps = as_maps(step.y.shape)
    if not all(isinstance(v, int) and 0 <= v < n for v, n in zip((channel, y, x), maps,
                                                                   strict=True)):
        raise ExplainError(
            f"layer {step.index} ({step.label}) outputs {maps[0]} channels of "
            f"{maps[1]}x{maps[2]}: (channel {channel}, y {y}, x {x}) is out of range"
        )


def value_at(array: np.ndarray, channel: int, y: int, x: int) -> float:
    return float(array.reshape(as_maps(array.shape))[channel, y, x])


def arithmetic(steps: list[Step], layer: int, channel: int, y: int = 0, x: int = 0) -> dict:
    """How layer ``layer`` computed output (channel, y, x), with every number involved."""
    if not isinstance(layer, int) or not 0 <= layer < len(steps):
        raise ExplainError(f"layer {layer!r} is out of range: the model has layers "
                           f"0 to {len(steps) - 1}")
    step = steps[layer]
    check_position(step, channel, y, x)
    explain = _EXPLAINERS.get(kind(step.module))
    if explain is None:
        raise ExplainError(f"layer {layer} ({type(step.module).__name__}) has no arithmetic view")
    result = {
        "layer": layer,
        "name": step.label,
        "kind": kind(step.module),
        "channel": channel,
        "y": y,
        "x": x,
        "source": step.source,
        "engine": value_at(step.y, channel, y, x),
    }
    result.update(explain(step, channel, y, x))
    nxt = steps[layer + 1] if layer + 1 < len(steps) else None
    if nxt is not None and kind(nxt.module) == "activation" and nxt.source == layer:
        result["activation"] = {
            "layer": nxt.index,
            "name": nxt.label,
            "type": type(nxt.module).__name__,
            "value": value_at(nxt.y, channel, y, x),
        }
    return result


def _taps(start: int, count: int, step: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates of a window's taps along one axis, and which fall inside the input."""
    coords = start + np.arange(count) * step
    return coords, (coords >= 0) & (coords < size)


def _window(x: np.ndarray, channels, geometry, y: int, x_: int, fill: float):
    """The (C, kH, kW) window of input ``x`` (C, H, W) read by output (y, x); ``fill`` outside.

    Returns the window, the mask of taps inside the input, and the taps' rows and columns.
    """
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    (top, _), (left, _) = geometry.padding
    kh, kw = geometry.kernel_size
    rows, row_in = _taps(y * sh - top, kh, dh, x.shape[1])
    cols, col_in = _taps(x_ * sw - left, kw, dw, x.shape[2])
    inside = row_in[:, None] & col_in[None, :]
    window = np.full((len(channels), kh, kw), fill, dtype=np.float64)
    r, c = np.nonzero(inside)
    window[:, r, c] = x[np.asarray(channels)[:, None], rows[r], cols[c]]
    return window, inside, rows, cols


def _conv(step: Step, channel: int, y: int, x: int) -> dict:
    """out = Σ_c Σ_pq window[c, p, q] · kernel[c, p, q] + bias, over the kernel's group."""
    conv = step.module
    weight = conv.materialize()  # (C_out, C_in/groups, kH, kW)
    depth = weight.shape[1]
    group = channel // (conv.out_channels // conv.groups)
    channels = list(range(group * depth, (group + 1) * depth))
    window, inside, rows, cols = _window(step.x, channels, conv.geometry, y, x, 0.0)
    kernel = weight[channel].astype(np.float64)
    products = window * kernel  # float64 products of the float32 values the engine uses
    sums = products.sum(axis=(1, 2))
    bias = 0.0 if conv.bias is None else float(conv.bias.data[channel])
    total = float(sums.sum())
    terms = [
        {"in_channel": c, "window": window[i].tolist(), "kernel": kernel[i].tolist(),
         "products": products[i].tolist(), "sum": float(sums[i])}
        for i, c in enumerate(channels)
    ]
    return {
        "rows": rows.tolist(), "cols": cols.tolist(), "inside": inside.tolist(),
        "terms": terms, "sum": total, "bias": bias, "value": total + bias,
        "symmetry": conv.symmetry,
    }


def _max_pool(step: Step, channel: int, y: int, x: int) -> dict:
    pool = step.module
    geometry = _pool_geometry(
        (1, *step.x.shape), pool.kernel_size, pool.stride, pool.padding, pool.dilation,
        pool.ceil_mode, "max_pool2d",
    )
    window, inside, rows, cols = _window(step.x, [channel], geometry, y, x, -math.inf)
    flat = window[0].ravel()
    winner = int(flat.argmax())  # the first maximum in raster order, as the engine picks
    kw = window.shape[2]
    return {
        "rows": rows.tolist(), "cols": cols.tolist(), "inside": inside.tolist(),
        "window": [[v if math.isfinite(v) else None for v in row] for row in window[0].tolist()],
        "winner": [winner // kw, winner % kw], "value": float(flat[winner]),
    }


def _avg_pool(step: Step, channel: int, y: int, x: int) -> dict:
    pool = step.module
    geometry = _pool_geometry(
        (1, *step.x.shape), pool.kernel_size, pool.stride, pool.padding, 1, pool.ceil_mode,
        "avg_pool2d",
    )
    window, inside, rows, cols = _window(step.x, [channel], geometry, y, x, 0.0)
    if pool.divisor_override is not None:
        divisor = float(pool.divisor_override)
    elif pool.count_include_pad:  # the padding counts, the extra cells of ceil_mode do not
        (top, _), (left, _) = geometry.padding
        h, w = step.x.shape[1:]
        rows_ok = (rows >= -top) & (rows < h + top)
        cols_ok = (cols >= -left) & (cols < w + left)
        divisor = float((rows_ok[:, None] & cols_ok[None, :]).sum())
    else:
        divisor = float(inside.sum())
    total = float(window.sum())
    return {
        "rows": rows.tolist(), "cols": cols.tolist(), "inside": inside.tolist(),
        "window": window[0].tolist(), "sum": total, "divisor": divisor, "value": total / divisor,
    }


def _adaptive_pool(step: Step, channel: int, y: int, x: int) -> dict:
    (h, w), (oh, ow) = step.x.shape[1:], step.y.shape[1:]
    # PyTorch's bins: [floor(i·size/out), ceil((i+1)·size/out))
    r0, r1 = y * h // oh, -(-(y + 1) * h // oh)
    c0, c1 = x * w // ow, -(-(x + 1) * w // ow)
    window = step.x[channel, r0:r1, c0:c1].astype(np.float64)
    return {
        "rows": list(range(r0, r1)), "cols": list(range(c0, c1)),
        "inside": np.ones(window.shape, bool).tolist(), "window": window.tolist(),
        "sum": float(window.sum()), "divisor": float(window.size), "value": float(window.mean()),
    }


def _linear(step: Step, channel: int, y: int, x: int) -> dict:
    """logit = Σ_i w_i·x_i + b: the largest terms one by one, the rest as one number."""
    layer = step.module
    inputs = step.x.reshape(-1).astype(np.float64)
    weights = layer.weight.data[channel].astype(np.float64)
    products = weights * inputs
    order = np.argsort(-np.abs(products), kind="stable")[:TOP_TERMS]
    total = float(products.sum())
    bias = 0.0 if layer.bias is None else float(layer.bias.data[channel])
    return {
        "count": int(products.size),
        "top": [{"index": int(i), "x": float(inputs[i]), "w": float(weights[i]),
                 "product": float(products[i])} for i in order],
        "rest": float(total - products[order].sum()),
        "positive": float(products[products > 0].sum()),
        "negative": float(products[products < 0].sum()),
        "sum": total, "bias": bias, "value": total + bias,
    }


def _elementwise(step: Step, channel: int, y: int, x: int) -> dict:
    """Activations, batch norm, flatten, dropout: one input value in, one value out."""
    module = step.module
    if step.y.ndim == 1 and step.x.ndim == 3:  # flatten: where the value came from
        source = np.unravel_index(channel, step.x.shape)
        return {"from": [int(i) for i in source], "formula": "x",
                "input": float(step.x[source]), "value": float(step.y[channel])}
    value = value_at(step.x, channel, y, x)
    result = {"input": value, "type": type(module).__name__}
    if isinstance(module, nn.ReLU):
        result.update(formula="max(0, x)", value=max(0.0, value))
    elif isinstance(module, nn.LeakyReLU):
        slope = module.negative_slope
        result.update(formula=f"x if x > 0 else {slope}·x", value=value if value > 0 else
                      slope * value)
    elif isinstance(module, nn.Sigmoid):
        result.update(formula="1 / (1 + exp(−x))", value=1 / (1 + math.exp(-value)))
    elif isinstance(module, nn.Tanh):
        result.update(formula="tanh(x)", value=math.tanh(value))
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.running_mean is not None:
        mean, var = float(module.running_mean.data[channel]), float(module.running_var.data[channel])
        gamma = 1.0 if module.weight is None else float(module.weight.data[channel])
        beta = 0.0 if module.bias is None else float(module.bias.data[channel])
        result.update(formula="(x − mean) / √(var + eps) · γ + β", mean=mean, var=var,
                      eps=module.eps, gamma=gamma, beta=beta,
                      value=(value - mean) / math.sqrt(var + module.eps) * gamma + beta)
    else:
        result.update(formula="x", value=value)
    return result


_EXPLAINERS = {
    "conv": _conv,
    "maxpool": _max_pool,
    "avgpool": _avg_pool,
    "adaptivepool": _adaptive_pool,
    "linear": _linear,
    "activation": _elementwise,
    "batchnorm": _elementwise,
    "flatten": _elementwise,
    "identity": _elementwise,
}
