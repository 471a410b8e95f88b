"""The arithmetic behind one output value of a layer, with every number laid out.

For a convolution: the window of the input (all input channels of the kernel's group) that
output (channel, y, x) reads, the kernel, the element-wise products, their sum and the bias.
For a max pooling: the window and which input won; average pooling: the window, its sum and
the divisor; a dense layer: the largest terms w_i·x_i, the rest, the bias. Activations,
batch norm and flatten: the one input value and the formula. The products are formed in
float64 from the float32 values the engine used, so ``value`` equals the engine's output
(``engine``) up to float32 rounding of the engine's own sum.
"""

from __future__ import annotations

import math

import numpy as np

from ... import nn
from ...functional.geometry import adaptive_bins, pool_geometry, window_coordinates, window_counts
from .compute import ExplainError, Step, kind

TOP_TERMS = 12  # terms w_i·x_i of a dense layer listed one by one


def as_maps(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A layer's output shape seen as (channels, height, width): (F,) → (F, 1, 1)."""
    if len(shape) == 3:
        return shape
    return (shape[0], 1, shape[1]) if len(shape) == 2 else (int(np.prod(shape)), 1, 1)


def check_position(step: Step, channel: int, y: int, x: int) -> None:
    """A clear error when (channel, y, x) is not a value of this layer's output."""
    maps = as_maps(step.y.shape)
    if not all(
        isinstance(v, int) and 0 <= v < n for v, n in zip((channel, y, x), maps, strict=True)
    ):
        raise ExplainError(
            f"layer {step.index} ({step.label}) outputs {maps[0]} channels of "
            f"{maps[1]}x{maps[2]}: (channel {channel}, y {y}, x {x}) is out of range"
        )


def value_at(array: np.ndarray, channel: int, y: int, x: int) -> float:
    return float(array.reshape(as_maps(array.shape))[channel, y, x])


def arithmetic(steps: list[Step], layer: int, channel: int, y: int = 0, x: int = 0) -> dict:
    """How layer ``layer`` computed output (channel, y, x), with every number involved."""
    if not isinstance(layer, int) or not 0 <= layer < len(steps):
        raise ExplainError(
            f"layer {layer!r} is out of range: the model has layers 0 to {len(steps) - 1}"
        )
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


def _window(x: np.ndarray, channels, geometry, y: int, x_: int, fill: float):
    """The (C, kH, kW) window of input ``x`` (C, H, W) read by output (y, x); ``fill`` outside.

    Returns the window, the mask of taps inside the input, and the taps' rows and columns.
    """
    rows, cols = window_coordinates(geometry, y, x_)
    row_in, col_in = (rows >= 0) & (rows < x.shape[1]), (cols >= 0) & (cols < x.shape[2])
    inside = row_in[:, None] & col_in[None, :]
    window = np.full((len(channels), len(rows), len(cols)), fill, dtype=np.float64)
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
    bias = 0.0 if conv.bias is None else float(conv.bias.array[channel])
    total = float(sums.sum())
    terms = [
        {
            "in_channel": c,
            "window": window[i].tolist(),
            "kernel": kernel[i].tolist(),
            "products": products[i].tolist(),
            "sum": float(sums[i]),
        }
        for i, c in enumerate(channels)
    ]
    return {
        "rows": rows.tolist(),
        "cols": cols.tolist(),
        "inside": inside.tolist(),
        "terms": terms,
        "sum": total,
        "bias": bias,
        "value": total + bias,
        "symmetry": conv.symmetry,
    }


def _max_pool(step: Step, channel: int, y: int, x: int) -> dict:
    pool = step.module
    geometry = pool_geometry(
        (1, *step.x.shape),
        pool.kernel_size,
        pool.stride,
        pool.padding,
        pool.dilation,
        pool.ceil_mode,
        "max_pool2d",
    )
    window, inside, rows, cols = _window(step.x, [channel], geometry, y, x, -math.inf)
    flat = window[0].ravel()
    winner = int(flat.argmax())  # the first maximum in raster order, as the engine picks
    kw = window.shape[2]
    return {
        "rows": rows.tolist(),
        "cols": cols.tolist(),
        "inside": inside.tolist(),
        "window": [[v if math.isfinite(v) else None for v in row] for row in window[0].tolist()],
        "winner": [winner // kw, winner % kw],
        "value": float(flat[winner]),
    }


def _avg_pool(step: Step, channel: int, y: int, x: int) -> dict:
    pool = step.module
    geometry = pool_geometry(
        (1, *step.x.shape),
        pool.kernel_size,
        pool.stride,
        pool.padding,
        1,
        pool.ceil_mode,
        "avg_pool2d",
    )
    window, inside, rows, cols = _window(step.x, [channel], geometry, y, x, 0.0)
    if pool.divisor_override is not None:
        divisor = float(pool.divisor_override)
    else:  # the engine's divisor: with count_include_pad the padding counts, ceil_mode's not
        counts = window_counts(geometry, step.x.shape[1:], pool.count_include_pad)
        divisor = float(counts[y, x])
    total = float(window.sum())
    return {
        "rows": rows.tolist(),
        "cols": cols.tolist(),
        "inside": inside.tolist(),
        "window": window[0].tolist(),
        "sum": total,
        "divisor": divisor,
        "value": total / divisor,
    }


def _adaptive_pool(step: Step, channel: int, y: int, x: int) -> dict:
    (h, w), (oh, ow) = step.x.shape[1:], step.y.shape[1:]
    (r0, r1), (c0, c1) = adaptive_bins(h, oh)[y], adaptive_bins(w, ow)[x]
    window = step.x[channel, r0:r1, c0:c1].astype(np.float64)
    return {
        "rows": list(range(r0, r1)),
        "cols": list(range(c0, c1)),
        "inside": np.ones(window.shape, bool).tolist(),
        "window": window.tolist(),
        "sum": float(window.sum()),
        "divisor": float(window.size),
        "value": float(window.mean()),
    }


def _linear(step: Step, channel: int, y: int, x: int) -> dict:
    """logit = Σ_i w_i·x_i + b: the largest terms one by one, the rest as one number."""
    layer = step.module
    inputs = step.x.reshape(-1).astype(np.float64)
    weights = layer.weight.array[channel].astype(np.float64)
    products = weights * inputs
    order = np.argsort(-np.abs(products), kind="stable")[:TOP_TERMS]
    total = float(products.sum())
    bias = 0.0 if layer.bias is None else float(layer.bias.array[channel])
    return {
        "count": int(products.size),
        "top": [
            {
                "index": int(i),
                "x": float(inputs[i]),
                "w": float(weights[i]),
                "product": float(products[i]),
            }
            for i in order
        ],
        "rest": float(total - products[order].sum()),
        "positive": float(products[products > 0].sum()),
        "negative": float(products[products < 0].sum()),
        "sum": total,
        "bias": bias,
        "value": total + bias,
    }


def _elementwise(step: Step, channel: int, y: int, x: int) -> dict:
    """Activations, batch norm, flatten, dropout: one input value in, one value out."""
    module = step.module
    if step.y.ndim == 1 and step.x.ndim == 3:  # flatten: where the value came from
        source = np.unravel_index(channel, step.x.shape)
        return {
            "from": [int(i) for i in source],
            "formula": "x",
            "input": float(step.x[source]),
            "value": float(step.y[channel]),
        }
    value = value_at(step.x, channel, y, x)
    result = {"input": value, "type": type(module).__name__}
    if isinstance(module, nn.ReLU):
        result.update(formula="max(0, x)", value=max(0.0, value))
    elif isinstance(module, nn.LeakyReLU):
        slope = module.negative_slope
        result.update(
            formula=f"x if x > 0 else {slope}·x", value=value if value > 0 else slope * value
        )
    elif isinstance(module, nn.Sigmoid):
        result.update(formula="1 / (1 + exp(−x))", value=1 / (1 + math.exp(-value)))
    elif isinstance(module, nn.Tanh):
        result.update(formula="tanh(x)", value=math.tanh(value))
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.running_mean is not None:
        mean = float(module.running_mean.array[channel])
        var = float(module.running_var.array[channel])
        gamma = 1.0 if module.weight is None else float(module.weight.array[channel])
        beta = 0.0 if module.bias is None else float(module.bias.array[channel])
        result.update(
            formula="(x − mean) / √(var + eps) · γ + β",
            mean=mean,
            var=var,
            eps=module.eps,
            gamma=gamma,
            beta=beta,
            value=(value - mean) / math.sqrt(var + module.eps) * gamma + beta,
        )
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
