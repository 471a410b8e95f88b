"""What each ONNX operation computes, with kernelab operations (so gradients flow).

Every function takes the step, its input values and the opset, and returns the output (or a
tuple of them). Values are Tensors, except shape arithmetic: integer values (``Shape``,
``Gather`` of a shape, axes) are NumPy arrays computed afresh at each call, which keeps the
batch size free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import unwrap
from ..core.tensor import Tensor, as_tensor
from ..functional import pool
from ..functional.geometry import conv_geometry, pool_output_length, window_extent
from .common import cells_inside
from .node import Step, fail, window_settings

Run = Callable[[Step, list, int], Any]


def _array(value: Any) -> np.ndarray:
    return np.asarray(unwrap(value))


def _is_int(value: Any) -> bool:
    return _array(value).dtype.kind in "iub"


def _ints(value: Any) -> list[int]:
    return [int(v) for v in _array(value).reshape(-1)]


def _tensor(value: Any) -> Tensor:
    return as_tensor(value)


def _axes(step: Step, args: list, opset: int, since: int) -> list[int] | None:
    """Axes from the attribute (before opset ``since``) or the optional second input."""
    if opset < since:
        return step.attrs.get("axes")
    return _ints(args[1]) if len(args) > 1 and args[1] is not None else None


# ---- convolution and pooling geometry
def pool_geometry(step: Step, x_shape: tuple):
    """The geometry of a pooling node for this input; ceil_mode adds bottom/right cells.

    The output length is PyTorch's, which ONNX's ceil_mode follows; the padding after grows
    by what the last window hangs over the end.
    """
    kernel = tuple(step.attrs["kernel_shape"])
    stride, dilation, padding = window_settings(step, x_shape[2:], kernel)
    if step.attrs.get("ceil_mode", 0):
        padding = list(padding)
        for axis, size in enumerate(x_shape[2:]):
            (before, after), k, s, d = padding[axis], kernel[axis], stride[axis], dilation[axis]
            out = pool_output_length(size, k, s, d, (before, after), ceil_mode=True)
            extra = max(0, (out - 1) * s + window_extent(k, d) - (size + before + after))
            padding[axis] = (before, after + extra)
        padding = tuple(padding)
    return conv_geometry(kernel, stride, padding, dilation)


def _conv(step: Step, args: list, opset: int) -> Tensor:
    x, w = _tensor(args[0]), _tensor(args[1])
    if w.ndim != 4:
        raise fail(step, f"only 2-D convolutions are supported, got a weight of shape {w.shape}")
    b = _tensor(args[2]) if len(args) > 2 and args[2] is not None else None
    stride, dilation, padding = window_settings(step, x.shape[2:], w.shape[2:])
    return F.conv2d(x, w, b, stride, padding, dilation, step.attrs.get("group", 1))


def _max_pool(step: Step, args: list, opset: int) -> Tensor:
    x = _tensor(args[0])
    return pool.MaxPool2d.apply(x, geometry=pool_geometry(step, x.shape))


def _average_pool(step: Step, args: list, opset: int) -> Tensor:
    """Divisor: the window's cells inside the input, plus the pads if count_include_pad."""
    x = _tensor(args[0])
    geometry = pool_geometry(step, x.shape)
    (top, bottom), (left, right) = window_settings(step, x.shape[2:], geometry.kernel_size)[2]
    out_h, out_w = geometry.output_size(*x.shape[2:])
    (kh, kw), (sh, sw), (h, w) = geometry.kernel_size, geometry.stride, x.shape[2:]
    if step.attrs.get("count_include_pad", 0):
        rows = cells_inside(h + top + bottom, kh, sh, 0, out_h)
        cols = cells_inside(w + left + right, kw, sw, 0, out_w)
    else:
        rows, cols = cells_inside(h, kh, sh, top, out_h), cells_inside(w, kw, sw, left, out_w)
    divisor = np.outer(rows, cols).astype(x.dtype)[None, None]  # (1, 1, OH, OW)
    return pool.AvgPool2d.apply(x, geometry=geometry, divisor=divisor)


def _global_max_pool(step: Step, args: list, opset: int) -> Tensor:
    x = _tensor(args[0])
    return F.max_pool2d(x, tuple(x.shape[2:]))


# ---- layers of matrices
def _gemm(step: Step, args: list, opset: int) -> Tensor:
    """``alpha · A' B' + beta · C`` with A' = Aᵀ if transA, B' = Bᵀ if transB."""
    a, b = _tensor(args[0]), _tensor(args[1])
    attrs = step.attrs
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    y = a @ b
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    y = y * alpha if alpha != 1 else y
    if len(args) > 2 and args[2] is not None:
        c = _tensor(args[2])
        y = y + (c * beta if beta != 1 else c)
    return y


def _batch_normalization(step: Step, args: list, opset: int) -> Tensor:
    x, scale, bias, mean, var = (_tensor(v) for v in args[:5])
    channels = tuple(x.shape[1:2])
    if x.ndim < 2 or any(tuple(v.shape) != channels for v in (scale, bias, mean, var)):
        shapes = ", ".join(str(list(v.shape)) for v in (x, scale, bias, mean, var))
        raise fail(step, f"expected X (N, C, ...) and four (C,) arrays, got shapes {shapes}")
    eps = step.attrs.get("epsilon", 1e-5)
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)


# ---- element-wise
def _binary(numpy_op: Callable, kernelab_op: Callable) -> Run:
    def run(step: Step, args: list, opset: int) -> Any:
        a, b = args
        if _is_int(a) and _is_int(b):  # shape arithmetic
            return numpy_op(_array(a), _array(b))
        return kernelab_op(_tensor(a), _tensor(b))

    return run


def _int_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX's integer division truncates towards zero (NumPy's floors)."""
    return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(np.result_type(a, b))


def _unary(kernelab_op: Callable, numpy_op: Callable | None = None) -> Run:
    def run(step: Step, args: list, opset: int) -> Any:
        if numpy_op is not None and _is_int(args[0]):
            return numpy_op(_array(args[0]))
        return kernelab_op(_tensor(args[0]))

    return run


def _leaky_relu(step: Step, args: list, opset: int) -> Tensor:
    return F.leaky_relu(_tensor(args[0]), step.attrs.get("alpha", 0.01))


def _softmax(function: Callable) -> Run:
    """Along one axis since opset 13; before, over all axes from ``axis`` on (as a 2-D view)."""

    def run(step: Step, args: list, opset: int) -> Tensor:
        x = _tensor(args[0])
        if opset >= 13:
            return function(x, dim=step.attrs.get("axis", -1))
        axis = step.attrs.get("axis", 1) % max(x.ndim, 1)
        flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
        return function(flat, dim=1).reshape(x.shape)

    return run


def _reduce(method: str, numpy_op: Callable, since: int) -> Run:
    def run(step: Step, args: list, opset: int) -> Any:
        x, keep = args[0], bool(step.attrs.get("keepdims", 1))
        axes = _axes(step, args, opset, since)
        if not axes:
            if step.attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(_array(x).ndim))
        rank = _array(x).ndim
        if any(not -rank <= a < rank for a in axes):
            raise fail(step, f"axes {list(axes)} outside a rank-{rank} input")
        if _is_int(x):
            return numpy_op(_array(x), axis=tuple(axes), keepdims=keep)
        return getattr(_tensor(x), method)(dim=tuple(axes), keepdim=keep)

    return run


def _cast(step: Step, args: list, opset: int) -> Any:
    dtype = np.dtype(step.attrs["to"])
    if _is_int(args[0]) or dtype.kind != "f":
        return _array(args[0]).astype(dtype)
    return _tensor(args[0]).astype(dtype)


# ---- shapes
def _reshape_to(x: Any, shape: tuple) -> Any:
    return x.reshape(shape) if isinstance(x, (Tensor, np.ndarray)) else _array(x).reshape(shape)


def _flatten(step: Step, args: list, opset: int) -> Any:
    x = args[0]
    shape = _array(x).shape
    axis = step.attrs.get("axis", 1) % (len(shape) + 1) if shape else 0
    return _reshape_to(x, (math.prod(shape[:axis]), math.prod(shape[axis:])))


def _reshape(step: Step, args: list, opset: int) -> Any:
    """0 copies the input's size at that position (unless allowzero); -1 is inferred."""
    x, shape = args[0], _ints(args[1])
    if not step.attrs.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return _reshape_to(x, tuple(shape))


def _transpose(step: Step, args: list, opset: int) -> Any:
    x = args[0]
    perm = step.attrs.get("perm", list(range(_array(x).ndim))[::-1])
    return x.permute(*perm) if isinstance(x, Tensor) else np.transpose(_array(x), perm)


def _axis(step: Step, axis: int, rank: int) -> int:
    """``axis`` counted from 0, refused when a rank-``rank`` value has no such axis."""
    if not -rank <= axis < rank:
        raise fail(step, f"axis {axis} outside a rank-{rank} input")
    return axis % rank


def _shape(step: Step, args: list, opset: int) -> np.ndarray:
    shape = np.asarray(_array(args[0]).shape, dtype=np.int64)
    return shape[step.attrs.get("start", 0) : step.attrs.get("end", None)]


def _gather(step: Step, args: list, opset: int) -> Any:
    data, index = args[0], _array(args[1])
    axis = step.attrs.get("axis", 0)
    if _is_int(data):
        return np.take(_array(data), index, axis=axis)
    axis = _axis(step, axis, data.ndim)
    key = int(index) if index.ndim == 0 else index
    return data[(slice(None),) * axis + (key,)]


def _unsqueeze(step: Step, args: list, opset: int) -> Any:
    x = args[0]
    shape = list(_array(x).shape)
    axes = _axes(step, args, opset, 13) or []
    rank = len(shape) + len(axes)  # negative axes count from the end of the output
    for axis in sorted(a % rank for a in axes):
        shape.insert(axis, 1)
    return _reshape_to(x, tuple(shape))


def _squeeze(step: Step, args: list, opset: int) -> Any:
    x = args[0]
    shape = _array(x).shape
    axes = _axes(step, args, opset, 13)
    if axes:
        drop = {_axis(step, a, len(shape)) for a in axes}
    else:
        drop = {i for i, n in enumerate(shape) if n == 1}
    return _reshape_to(x, tuple(n for i, n in enumerate(shape) if i not in drop))


def _concat(step: Step, args: list, opset: int) -> np.ndarray:
    if not all(_is_int(v) for v in args):
        raise fail(step, "concatenating floating-point tensors is not supported")
    return np.concatenate([_array(v) for v in args], axis=step.attrs["axis"])


def _slice(step: Step, args: list, opset: int) -> Any:
    x = args[0]
    if opset < 10:
        starts, ends = step.attrs["starts"], step.attrs["ends"]
        axes, steps = step.attrs.get("axes"), None
    else:
        starts, ends = _ints(args[1]), _ints(args[2])
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else None
        steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else None
    rank = _array(x).ndim
    key = [slice(None)] * rank
    for i, axis in enumerate(axes if axes is not None else range(len(starts))):
        key[_axis(step, axis, rank)] = slice(starts[i], ends[i], steps[i] if steps else 1)
    return x[tuple(key)] if isinstance(x, (Tensor, np.ndarray)) else _array(x)[tuple(key)]


def constant(step: Step, args: list, opset: int) -> np.ndarray:
    a = step.attrs
    if "value" in a:
        return np.asarray(a["value"])
    if "value_float" in a:
        return np.asarray(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.asarray(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.asarray(a["value_int"], dtype=np.int64)
    return np.asarray(a["value_ints"], dtype=np.int64)


def _constant_of_shape(step: Step, args: list, opset: int) -> np.ndarray:
    value = np.asarray(step.attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    return np.full(_ints(args[0]), value[0], dtype=value.dtype)


def _identity(step: Step, args: list, opset: int) -> Any:
    return args[0]


OPS: dict[str, Run] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda step, args, opset: _tensor(args[0]) @ _tensor(args[1]),
    "BatchNormalization": _batch_normalization,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": lambda step, args, opset: F.adaptive_avg_pool2d(_tensor(args[0]), 1),
    "GlobalMaxPool": _global_max_pool,
    "Relu": _unary(F.relu),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _unary(F.sigmoid),
    "Tanh": _unary(F.tanh),
    "Softmax": _softmax(F.softmax),
    "LogSoftmax": _softmax(F.log_softmax),
    "Add": _binary(np.add, lambda a, b: a + b),
    "Sub": _binary(np.subtract, lambda a, b: a - b),
    "Mul": _binary(np.multiply, lambda a, b: a * b),
    "Div": _binary(_int_divide, lambda a, b: a / b),
    "Pow": _binary(np.power, lambda a, b: a**b),
    "Neg": _unary(lambda x: -x, np.negative),
    "Abs": _unary(lambda x: x.abs(), np.abs),
    "Exp": _unary(lambda x: x.exp()),
    "Log": _unary(lambda x: x.log()),
    "Sqrt": _unary(lambda x: x.sqrt()),
    "ReduceMean": _reduce("mean", np.mean, 18),
    "ReduceSum": _reduce("sum", np.sum, 13),
    "Cast": _cast,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Identity": _identity,
    "Dropout": _identity,  # inference; as a layer (load_layers.py) it drops in training
    "Constant": constant,
    "ConstantOfShape": _constant_of_shape,
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Slice": _slice,
}
