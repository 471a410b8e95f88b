"""How each traced operation becomes ONNX nodes: one handler per kernelab ``Function``.

A handler reads the record (inputs, settings, traced output) and emits standard ONNX nodes
through the :class:`~kernelab.onnx.graph.GraphBuilder`; the last node it emits carries the
record's output. Sizes other than the batch axis are fixed, so settings that depend on the
input size (padding added by ``ceil_mode``, average-pool divisors) are written out exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..functional import activation, arithmetic, conv, norm, pool, shape
from ..functional.linear import Linear
from .common import ONNXError, cells_inside
from .graph import GraphBuilder, Record


def _pads(geometry: conv.ConvGeometry) -> list[int]:
    """ONNX order: all the "before" pads, then all the "after" ones: [top, left, bottom, right]."""
    (top, bottom), (left, right) = geometry.padding
    return [top, left, bottom, right]


def _window_attrs(geometry: conv.ConvGeometry) -> dict:
    return {
        "kernel_shape": list(geometry.kernel_size),
        "strides": list(geometry.stride),
        "pads": _pads(geometry),
    }


def _conv(g: GraphBuilder, r: Record) -> None:
    x, w, b = r.inputs
    geometry = r.params["geometry"]
    inputs = [g.value(x, "x"), g.value(w, r.key("weight")), g.value(b, r.key("bias"))]
    attrs = _window_attrs(geometry)
    g.emit(r, "Conv", inputs, dilations=list(geometry.dilation), group=geometry.groups, **attrs)


def _max_pool(g: GraphBuilder, r: Record) -> None:
    # ceil_mode is already in the geometry, as extra bottom/right padding that never wins a max
    geometry = r.params["geometry"]
    attrs = _window_attrs(geometry)
    g.emit(r, "MaxPool", [g.value(r.inputs[0], "x")], dilations=list(geometry.dilation), **attrs)


def _avg_pool(g: GraphBuilder, r: Record) -> None:
    """AveragePool, plus a Mul where PyTorch's divisor is neither ONNX choice.

    ONNX divides by the kernel area (count_include_pad=1, pads being explicit here) or by the
    cells inside the input (0); PyTorch's count_include_pad=True with ceil_mode, and
    divisor_override, divide by something else: the area-divided result is rescaled.
    """
    x = r.inputs[0]
    geometry = r.params["geometry"]
    divisor = np.asarray(r.params["divisor"], dtype=np.float64)
    out_h, out_w = r.output.shape[2:]
    (top, _), (left, _) = geometry.padding
    (kh, kw), (sh, sw) = geometry.kernel_size, geometry.stride
    inside = np.outer(
        cells_inside(x.shape[2], kh, sh, top, out_h), cells_inside(x.shape[3], kw, sw, left, out_w)
    )
    area = kh * kw
    full = np.broadcast_to(divisor, (1, 1, out_h, out_w))[0, 0]
    by_area = bool(np.all(full == area))
    by_inside = not by_area and np.array_equal(full, inside)
    scale = None if by_area or by_inside else area / divisor
    attrs = _window_attrs(geometry)
    pooled = g.emit(
        r, "AveragePool", [g.value(x, "x")], final=scale is None,
        count_include_pad=0 if by_inside else 1, **attrs,
    )  # fmt: skip
    if scale is not None:
        factor = g.value(scale.astype(x.dtype), r.key("divisor_scale"))
        g.emit(r, "Mul", [pooled, factor])


def _adaptive_avg_pool(g: GraphBuilder, r: Record) -> None:
    x = r.inputs[0]
    (oh, ow), (h, w) = r.params["output_size"], x.shape[2:]
    if (oh, ow) == (1, 1):
        g.emit(r, "GlobalAveragePool", [g.value(x, "x")])
        return
    if h % oh or w % ow:
        raise ONNXError(
            f"export: AdaptiveAvgPool2d in module '{r.path}': output size {(oh, ow)} does not "
            f"divide the input size {(h, w)}; ONNX has no adaptive pooling with uneven bins "
            f"(use an output size that divides it, or 1)"
        )
    kernel = [h // oh, w // ow]
    g.emit(r, "AveragePool", [g.value(x, "x")], kernel_shape=kernel, strides=kernel)


def _reshape(g: GraphBuilder, r: Record) -> None:
    """Flatten when the batch axis stays and the rest merges, else Reshape with 0 or -1 first.

    0 copies the batch size from the input, -1 lets the batch scale the first axis: both keep
    the graph valid for any batch size.
    """
    x, out = r.inputs[0], r.output.shape
    if g.batch_axis(x) != 0 or not out:
        target = list(out)
    elif out == (x.shape[0], math.prod(x.shape[1:])):
        g.emit(r, "Flatten", [g.value(x, "x")], axis=1)
        return
    elif out[0] == x.shape[0]:
        target = [0, *out[1:]]
    else:
        target = [-1, *out[1:]]
    g.batch[id(r.output)] = 0 if g.batch_axis(x) == 0 and out else None
    target_name = g.value(np.asarray(target, dtype=np.int64), r.key("shape"))
    g.emit(r, "Reshape", [g.value(x, "x"), target_name])


def _permute(g: GraphBuilder, r: Record) -> None:
    x, dims = r.inputs[0], list(r.params["dims"])
    axis = g.batch_axis(x)
    g.batch[id(r.output)] = None if axis is None else dims.index(axis)
    g.emit(r, "Transpose", [g.value(x, "x")], perm=dims)


def _linear(g: GraphBuilder, r: Record) -> None:
    """Gemm with transB=1 for (N, in) input; MatMul by the transposed weight otherwise."""
    x, w, b = r.inputs
    xs, ws, bs = g.value(x, "x"), g.value(w, r.key("weight")), g.value(b, r.key("bias"))
    if x.ndim == 2:
        g.emit(r, "Gemm", [xs, ws, bs], transB=1)
        return
    wt = g.emit(r, "Transpose", [ws], final=False, perm=[1, 0])
    y = g.emit(r, "MatMul", [xs, wt], final=b is None)
    if b is not None:
        g.emit(r, "Add", [y, bs])


def _batch_norm(g: GraphBuilder, r: Record) -> None:
    x, weight, bias = r.inputs
    p, dt = r.params, x.dtype
    if p["training"]:
        raise ONNXError(
            f"export: BatchNorm in module '{r.path}' normalises with batch statistics even in "
            f"eval mode (track_running_stats=False); ONNX inference needs running statistics"
        )
    channels = x.shape[1]
    inputs = [
        g.value(x, "x"),
        g.value(np.ones(channels, dt) if weight is None else weight, r.key("weight"), dt),
        g.value(np.zeros(channels, dt) if bias is None else bias, r.key("bias"), dt),
        g.value(p["running_mean"], r.key("running_mean"), dt),
        g.value(p["running_var"], r.key("running_var"), dt),
    ]
    # ONNX's momentum weighs the old running value, PyTorch's the new batch statistic
    momentum = 1.0 - float(p["momentum"])
    g.emit(r, "BatchNormalization", inputs, epsilon=float(p["eps"]), momentum=momentum)


def _unary(op: str, **attrs_from: str) -> Callable[[GraphBuilder, Record], None]:
    def handler(g: GraphBuilder, r: Record) -> None:
        attrs = {name: r.params[key] for name, key in attrs_from.items()}
        g.emit(r, op, [g.value(r.inputs[0], "x")], **attrs)

    return handler


def _leaky_relu(g: GraphBuilder, r: Record) -> None:
    alpha = float(r.params["negative_slope"])
    g.emit(r, "LeakyRelu", [g.value(r.inputs[0], "x")], alpha=alpha)


def _binary(op: str) -> Callable[[GraphBuilder, Record], None]:
    """Both operands in the output's dtype (ONNX does not promote); constants as initializers."""

    def handler(g: GraphBuilder, r: Record) -> None:
        dtype = r.output.dtype
        names = [g.value(v, r.key(f"{op.lower()}_const"), dtype) for v in r.inputs]
        g.emit(r, op, names)

    return handler


def _reduce(op: str) -> Callable[[GraphBuilder, Record], None]:
    def handler(g: GraphBuilder, r: Record) -> None:
        x, axes, keepdim = r.inputs[0], list(r.params["axes"]), r.params["keepdim"]
        axis = g.batch_axis(x)
        if axis is None or axis in axes:  # a reduced batch axis is a batch no more
            g.batch[id(r.output)] = None
        else:
            g.batch[id(r.output)] = axis if keepdim else axis - sum(a < axis for a in axes)
        inputs = [g.value(x, "x")]
        if op == "ReduceSum" or g.opset >= 18:  # axes became an input (Sum in 13, Mean in 18)
            inputs.append(g.value(np.asarray(axes, np.int64), r.key("axes")))
            g.emit(r, op, inputs, keepdims=int(keepdim))
        else:
            g.emit(r, op, inputs, axes=axes, keepdims=int(keepdim))

    return handler


def _cast(g: GraphBuilder, r: Record) -> None:
    g.emit(r, "Cast", [g.value(r.inputs[0], "x")], to=g.elem_type(r.params["dtype"]))


HANDLERS: dict[type, Callable[[GraphBuilder, Record], None]] = {
    conv.Conv2d: _conv,
    pool.MaxPool2d: _max_pool,
    pool.AvgPool2d: _avg_pool,
    pool.AdaptiveAvgPool2d: _adaptive_avg_pool,
    Linear: _linear,
    norm.BatchNorm: _batch_norm,
    activation.ReLU: _unary("Relu"),
    activation.LeakyReLU: _leaky_relu,
    activation.Sigmoid: _unary("Sigmoid"),
    activation.Tanh: _unary("Tanh"),
    activation.Softmax: _unary("Softmax", axis="dim"),
    activation.LogSoftmax: _unary("LogSoftmax", axis="dim"),
    shape.Reshape: _reshape,
    shape.Permute: _permute,
    arithmetic.Add: _binary("Add"),
    arithmetic.Sub: _binary("Sub"),
    arithmetic.Mul: _binary("Mul"),
    arithmetic.Div: _binary("Div"),
    arithmetic.Pow: _binary("Pow"),
    arithmetic.MatMul: _binary("MatMul"),
    arithmetic.Neg: _unary("Neg"),
    arithmetic.Exp: _unary("Exp"),
    arithmetic.Log: _unary("Log"),
    arithmetic.Sqrt: _unary("Sqrt"),
    arithmetic.Abs: _unary("Abs"),
    arithmetic.Sum: _reduce("ReduceSum"),
    arithmetic.Mean: _reduce("ReduceMean"),
    arithmetic.Cast: _cast,
}
