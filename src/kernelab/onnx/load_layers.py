"""Which ONNX nodes are accepted, and which become kernelab layers.

:func:`check_node` refuses, with the node's name, any attribute or attribute value kernelab
would not honour exactly. :func:`layer_for` turns a node whose weights are constants into the
layer of identical meaning (its Parameters copied from the initializers), or returns None to
run it as an operation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..nn.normalization import BatchNorm
from .common import supported
from .node import Step, fail, window_settings

_WINDOW = {"auto_pad", "kernel_shape", "pads", "strides"}
ATTRIBUTES: dict[str, set[str]] = {
    "Conv": _WINDOW | {"dilations", "group"},
    "MaxPool": _WINDOW | {"dilations", "ceil_mode", "storage_order"},
    "AveragePool": _WINDOW | {"dilations", "ceil_mode", "count_include_pad"},
    "Gemm": {"alpha", "beta", "transA", "transB"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial"},
    "LeakyRelu": {"alpha"},
    "Softmax": {"axis"},
    "LogSoftmax": {"axis"},
    "Flatten": {"axis"},
    "Reshape": {"allowzero"},
    "Transpose": {"perm"},
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"},
    "ReduceSum": {"axes", "keepdims", "noop_with_empty_axes"},
    "Dropout": {"ratio", "seed", "is_test"},
    "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints"},
    "ConstantOfShape": {"value"},
    "Shape": {"start", "end"},
    "Gather": {"axis"},
    "Unsqueeze": {"axes"},
    "Squeeze": {"axes"},
    "Concat": {"axis"},
    "Slice": {"starts", "ends", "axes"},
    "Cast": {"to", "saturate"},
}
_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def check_node(step: Step, opset: int) -> None:
    """Raise for an attribute or value kernelab does not implement; normalise ``Cast.to``."""
    allowed = ATTRIBUTES.get(step.op, set())
    for name in step.attrs:
        if name not in allowed:
            raise fail(
                step,
                f"attribute '{name}' is not supported (supported: {supported(allowed) or 'none'})",
            )
    a = step.attrs
    if step.op in ("Conv", "MaxPool", "AveragePool"):
        if a.get("auto_pad", "NOTSET") not in _AUTO_PAD:
            raise fail(step, f"auto_pad={a['auto_pad']!r} is not one of {_AUTO_PAD}")
        if len(a.get("kernel_shape", (0, 0))) != 2:
            raise fail(
                step, f"only 2-D windows are supported, got kernel_shape {a['kernel_shape']}"
            )
        if step.op != "Conv" and "kernel_shape" not in a:
            raise fail(step, "kernel_shape is required")
    extra = [n for n in step.outputs[1:] if n]
    if extra and step.op in ("MaxPool", "BatchNormalization", "Dropout"):
        raise fail(
            step, f"extra outputs {extra} (indices, mask, batch statistics) are not supported"
        )
    if step.op == "BatchNormalization" and (a.get("training_mode", 0) or a.get("spatial", 1) != 1):
        raise fail(step, "only inference mode with per-channel statistics is supported")
    if step.op == "AveragePool" and any(d != 1 for d in a.get("dilations", (1, 1))):
        raise fail(step, f"dilations {a['dilations']} are not supported for average pooling")
    if step.op == "Cast":
        from onnx import helper

        try:
            a["to"] = np.dtype(helper.tensor_dtype_to_np_dtype(a["to"])).str
        except (KeyError, TypeError):
            raise fail(step, f"cast to ONNX type {a['to']} is not supported") from None


def layer_for(step: Step, static: dict, shapes: dict, opset: int) -> tuple[Any, dict] | None:
    """(layer, {attribute: graph value}) for a node kernelab has a layer for, else None."""
    build = BUILDERS.get(step.op)
    return None if build is None else build(step, static, shapes, opset)


def _static(step: Step, static: dict, index: int) -> tuple[bool, np.ndarray | None]:
    """(known, value) of an optional input: known when absent or a constant."""
    if index >= len(step.inputs) or not step.inputs[index]:
        return True, None
    value = static.get(step.inputs[index])
    return value is not None, value


def _copy_into(layer: Any, values: dict[str, np.ndarray]) -> None:
    for attribute, value in values.items():
        target = getattr(layer, attribute)
        target.array = np.array(value, dtype=target.dtype, copy=True)


def _described(value: np.ndarray | None) -> str:
    return "none" if value is None else f"{value.dtype}{list(value.shape)}"


def _weights(step: Step, names: dict[str, int]) -> dict[str, str]:
    return {a: step.inputs[i] for a, i in names.items() if i < len(step.inputs) and step.inputs[i]}


def _conv(step: Step, static: dict, shapes: dict, opset: int):
    (known_w, w), (known_b, b) = _static(step, static, 1), _static(step, static, 2)
    if not (known_w and known_b) or w is None or w.ndim != 4:
        return None
    if w.dtype.kind != "f" or b is not None and (b.dtype != w.dtype or b.shape != w.shape[:1]):
        raise fail(step, f"weight {w.dtype}{list(w.shape)} with bias {_described(b)}")
    if tuple(step.attrs.get("kernel_shape", w.shape[2:])) != w.shape[2:]:
        raise fail(step, f"kernel_shape {step.attrs['kernel_shape']} but weight {w.shape}")
    stride = step.attrs.get("strides", (1, 1))
    if step.attrs.get("auto_pad", "NOTSET").startswith("SAME") and tuple(stride) != (1, 1):
        return None  # its padding depends on the input size: worked out at each call
    stride, dilation, padding = window_settings(step, (None, None), w.shape[2:])
    groups = step.attrs.get("group", 1)
    layer = nn.Conv2d(
        w.shape[1] * groups, w.shape[0], w.shape[2:], stride, padding, dilation, groups,
        bias=b is not None, dtype=w.dtype,
    )  # fmt: skip
    _copy_into(layer, {"weight": w} | ({"bias": b} if b is not None else {}))
    return layer, _weights(step, {"weight": 1, "bias": 2})


def _gemm(step: Step, static: dict, shapes: dict, opset: int):
    a = step.attrs
    (known_w, w), (known_b, b) = _static(step, static, 1), _static(step, static, 2)
    plain = a.get("transA", 0) == 0 and a.get("transB", 0) == 1
    plain = plain and a.get("alpha", 1.0) == 1 and a.get("beta", 1.0) == 1
    if not (plain and known_w and known_b) or w is None or w.ndim != 2 or w.dtype.kind != "f":
        return None
    if b is not None and b.shape != (w.shape[0],):
        return None
    layer = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype)
    _copy_into(layer, {"weight": w} | ({"bias": b} if b is not None else {}))
    return layer, _weights(step, {"weight": 1, "bias": 2})


class BatchNormalization(BatchNorm):
    """Batch normalisation for an input of unknown rank (N, C, ...)."""

    expected_ndim = (2, 3, 4, 5)


def _batch_norm(step: Step, static: dict, shapes: dict, opset: int):
    values = [static.get(n) for n in step.inputs[1:5]]
    if any(v is None for v in values):
        return None
    scale, bias, mean, var = values
    if any(v.ndim != 1 or v.shape != scale.shape or v.dtype.kind != "f" for v in values):
        shapes_text = ", ".join(f"{v.dtype}{list(v.shape)}" for v in values)
        raise fail(
            step, f"scale, B, mean and var must be 1-D floats of one size, got {shapes_text}"
        )
    rank = len(shapes.get(step.inputs[0], ()))
    kind = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}.get(rank, BatchNormalization)
    # ONNX's momentum weighs the old running value (0.9 is PyTorch's 0.1)
    momentum = float(f"{1.0 - step.attrs.get('momentum', 0.9):.6g}")
    eps = step.attrs.get("epsilon", 1e-5)
    layer = kind(len(scale), eps=eps, momentum=momentum, dtype=scale.dtype)
    names = ("weight", "bias", "running_mean", "running_var")
    _copy_into(layer, dict(zip(names, values, strict=True)))
    return layer, _weights(step, {n: i + 1 for i, n in enumerate(names)})


def _pool_padding(step: Step) -> tuple[int, int] | None:
    """(ph, pw) when the pads are symmetric and PyTorch-sized (≤ half the kernel), else None."""
    a = step.attrs
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return None
    t, l, b, r = a.get("pads", (0, 0, 0, 0)) if a.get("auto_pad") != "VALID" else (0, 0, 0, 0)
    kh, kw = a["kernel_shape"]
    return (t, l) if (t, l) == (b, r) and t <= kh // 2 and l <= kw // 2 else None


def _max_pool(step: Step, static: dict, shapes: dict, opset: int):
    padding, a = _pool_padding(step), step.attrs
    if padding is None:
        return None
    kernel, stride = tuple(a["kernel_shape"]), tuple(a.get("strides", (1, 1)))
    dilation, ceil = tuple(a.get("dilations", (1, 1))), bool(a.get("ceil_mode", 0))
    return nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil), {}


def _average_pool(step: Step, static: dict, shapes: dict, opset: int):
    padding, a = _pool_padding(step), step.attrs
    if padding is None:
        return None
    kernel, stride = tuple(a["kernel_shape"]), tuple(a.get("strides", (1, 1)))
    include = bool(a.get("count_include_pad", 0))
    ceil = bool(a.get("ceil_mode", 0))
    return nn.AvgPool2d(kernel, stride, padding, ceil, count_include_pad=include), {}


def _softmax(kind: type) -> Any:
    def build(step: Step, static: dict, shapes: dict, opset: int):
        axis = step.attrs.get("axis", -1 if opset >= 13 else 1)
        rank = len(shapes.get(step.inputs[0], ()))
        if opset >= 13 or (rank and axis % rank == rank - 1):  # the old 2-D view is then moot
            return kind(dim=axis), {}
        return None

    return build


def _dropout(step: Step, static: dict, shapes: dict, opset: int):
    known, ratio = _static(step, static, 1)
    ratio = step.attrs.get("ratio", 0.5) if opset < 12 else ratio
    if not known or len(step.inputs) > 2:
        return None
    return nn.Dropout(0.5 if ratio is None else float(ratio)), {}


def _flatten(step: Step, static: dict, shapes: dict, opset: int):
    rank = len(shapes.get(step.inputs[0], ()))
    return (nn.Flatten(), {}) if step.attrs.get("axis", 1) == 1 and rank != 1 else None


def _simple(make: Any) -> Any:
    return lambda step, static, shapes, opset: (make(step.attrs), {})


BUILDERS = {  # ONNX operator → the kernelab layer of identical meaning
    "Conv": _conv,
    "Gemm": _gemm,
    "BatchNormalization": _batch_norm,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _simple(lambda a: nn.AdaptiveAvgPool2d(1)),
    "Relu": _simple(lambda a: nn.ReLU()),
    "LeakyRelu": _simple(lambda a: nn.LeakyReLU(a.get("alpha", 0.01))),
    "Sigmoid": _simple(lambda a: nn.Sigmoid()),
    "Tanh": _simple(lambda a: nn.Tanh()),
    "Softmax": _softmax(nn.Softmax),
    "LogSoftmax": _softmax(nn.LogSoftmax),
    "Flatten": _flatten,
    "Dropout": _dropout,
}
