"""Reverse-mode automatic differentiation.

Every differentiable operation is a :class:`Function`: a ``forward`` on NumPy arrays and a
``backward`` that maps the gradient of the output to the gradients of the inputs. Calling
``Function.apply`` runs the forward and, when an input needs a gradient, records a node on
the output tensor. :func:`backward` walks those nodes in reverse topological order and adds up
the gradients of a tensor that was used more than once (so residual connections work).

A backward never writes into the gradient it receives: one array may reach several inputs.

This module is the bottom layer: the ops in ``kernelab.functional`` are Functions, and the
Tensor's methods call those ops, so it cannot import the Tensor. ``core/tensor.py`` hands the
class over once (:func:`set_tensor_class`); :func:`wrap` and :func:`unwrap` cross between
tensors and arrays for every layer below the Tensor.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np

from .core.errors import ShapeError


class _Mode(threading.local):
    grad_enabled = True
    detect_anomaly = False
    trace: list | None = None
    after_backward: list | None = None


_mode = _Mode()


def is_grad_enabled() -> bool:
    return _mode.grad_enabled


class set_grad_enabled:
    """Turn graph recording on or off; usable as a context manager or a plain call."""

    def __init__(self, mode: bool):
        self.prev = _mode.grad_enabled
        _mode.grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.grad_enabled = self.prev


class no_grad:
    """Run without recording a graph (inference, weight updates); context or decorator."""

    enabled = False

    def __enter__(self):
        self.prev = _mode.grad_enabled
        _mode.grad_enabled = self.enabled

    def __exit__(self, *exc):
        _mode.grad_enabled = self.prev

    def __call__(self, func):
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)

        wrapper.__wrapped__ = func
        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = func.__doc__
        return wrapper


class enable_grad(no_grad):
    """Record a graph again inside a ``no_grad`` block."""

    enabled = True


inference_mode = no_grad


class detect_anomaly:
    """Check every operation's inputs and gradients for NaN or Inf and name the operation."""

    def __init__(self, mode: bool = True):
        self.mode = mode

    def __enter__(self):
        self.prev = _mode.detect_anomaly
        _mode.detect_anomaly = self.mode

    def __exit__(self, *exc):
        _mode.detect_anomaly = self.prev


def set_detect_anomaly(mode: bool) -> None:
    _mode.detect_anomaly = bool(mode)


class trace:
    """Record every operation run inside the block, for exporters that follow a forward pass.

    ``records`` gets one ``(Function, inputs, params, output)`` per operation, in order.
    """

    def __init__(self):
        self.records: list[tuple[type[Function], tuple, dict, Any]] = []

    def __enter__(self):
        self.prev = _mode.trace
        _mode.trace = self.records
        return self

    def __exit__(self, *exc):
        _mode.trace = self.prev


# ---- tensors and arrays
_tensor_class: type | None = None


def set_tensor_class(cls: type) -> None:
    """The class every op's output is made of (:class:`kernelab.Tensor`), given once."""
    global _tensor_class
    _tensor_class = cls


def is_tensor(x: Any) -> bool:
    return isinstance(x, _tensor_class)


def unwrap(x: Any) -> Any:
    """The array behind a tensor; anything else unchanged."""
    return x.array if isinstance(x, _tensor_class) else x


def wrap(array: Any, requires_grad: bool = False) -> Any:
    """A tensor holding ``array``; outside the graph unless an op records its node."""
    return _tensor_class(array, requires_grad=requires_grad)


class Node(NamedTuple):
    """How a tensor was computed: the operation, what it saved (None once freed), its inputs."""

    function: type[Function]
    ctx: Context | None
    inputs: tuple


class Context:
    """What a forward keeps for its backward; ``needs_input_grad`` says which inputs want one."""

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad


class Function:
    """A differentiable operation: ``forward(ctx, *arrays, **params)`` and ``backward(ctx, grad)``.

    Positional arguments are the inputs (tensors, arrays, numbers or None); keyword arguments
    are settings. ``backward`` returns one gradient (or None) per positional input.
    """

    @staticmethod
    def forward(ctx: Context, *inputs: Any, **params: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        arrays = tuple(unwrap(x) for x in inputs)
        if _mode.detect_anomaly:
            _check_finite(cls.__name__, "input", arrays)
        if _mode.grad_enabled:
            needs = tuple(is_tensor(x) and x.requires_grad for x in inputs)
        else:
            needs = (False,) * len(inputs)
        ctx = Context(needs)
        out = cls.forward(ctx, *arrays, **params)
        if _mode.detect_anomaly:  # name the operation that made the first NaN or Inf
            _check_finite(cls.__name__, "output", (out,))
        result = wrap(out, requires_grad=any(needs))
        if result.requires_grad:
            result.node = Node(cls, ctx, inputs)
        if _mode.trace is not None:
            _mode.trace.append((cls, inputs, params, result))
        return result


def _check_finite(op: str, what: str, arrays) -> None:
    for i, a in enumerate(arrays):
        array = isinstance(a, (np.ndarray, np.generic))  # a 0-D result may be a NumPy scalar
        if array and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise FloatingPointError(f"{op}: {what} {i} holds NaN or Inf values")


def queue_callback(callback) -> None:
    """Run ``callback()`` once when the backward pass now running has finished.

    Gradient hooks use it to act on all gradients together (e.g. averaging them over
    processes before the optimiser step).
    """
    if _mode.after_backward is None:
        raise RuntimeError("queue_callback() is only valid during a backward pass")
    _mode.after_backward.append(callback)


def _graph_order(root: Any) -> list[Any]:
    """Tensors with a node, each after every tensor computed from it (iterative DFS)."""
    order: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        for inp in tensor.node.inputs:
            if is_tensor(inp) and inp.node is not None and id(inp) not in seen:
                stack.append((inp, False))
    order.reverse()
    return order


def backward(root: Any, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Propagate ``grad`` from ``root`` to every leaf tensor that requires a gradient."""
    _mode.after_backward = []
    try:
        _propagate(root, grad, retain_graph)
        callbacks = _mode.after_backward
    finally:
        _mode.after_backward = None
    for callback in callbacks:
        callback()


def _propagate(root: Any, grad: np.ndarray, retain_graph: bool) -> None:
    if root.node is None:
        root.accumulate_grad(grad)
        return
    grads: dict[int, np.ndarray] = {id(root): grad}
    for tensor in _graph_order(root):
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        fn, ctx, inputs = tensor.node
        if ctx is None:
            raise RuntimeError(
                "backward through a graph a second time: its saved arrays were freed; "
                "pass retain_graph=True to the first backward"
            )
        in_grads = fn.backward(ctx, g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if _mode.detect_anomaly:
            _check_finite(fn.__name__, "gradient", in_grads)
        for inp, need, ig in zip(inputs, ctx.needs_input_grad, in_grads, strict=False):
            if not need or ig is None:
                continue
            if ig.shape != inp.shape:
                raise ShapeError(
                    f"{fn.__name__}.backward: gradient of shape {ig.shape} "
                    f"for an input of shape {inp.shape}"
                )
            if inp.node is None:
                inp.accumulate_grad(ig)
            else:
                key = id(inp)
                grads[key] = ig if key not in grads else grads[key] + ig
        if not retain_graph:
            tensor.node = Node(fn, None, inputs)
