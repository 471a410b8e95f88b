"""Reverse-mode automatic differentiation.

Every differentiable operation is a :class:`Function`: a ``forward`` on NumPy arrays and a
``backward`` that maps the gradient of the output to the gradients of the inputs. Calling
``Function.apply`` runs the forward and, when an input needs a gradient, records a node on
the output tensor. :func:`backward` walks those nodes in reverse topological order and adds up
the gradients of a tensor that was used more than once (so residual connections work).

A backward never writes into the gradient it receives: one array may reach several inputs.
Where nothing could see a gradient in between, the walk may run two steps as one pass that an
op family registered: a node's backward and that of the node that made its input
(:func:`register_fused_backward`: ReLU after batch norm), or a node's backward of an output
gradient in two parts without the sum made first (:func:`register_summed_backward`: a ReLU
whose output feeds two branches, as a residual block's does). The graph, hooks and
``retain_grad`` are PyTorch's either way.

This module is the bottom layer: the ops in ``kernelab.functional`` are Functions, and the
Tensor's methods call those ops, so it cannot import the Tensor. ``core/tensor.py`` hands the
class over once (:func:`set_tensor_class`); :func:`wrap` and :func:`unwrap` cross between
tensors and arrays for every layer below the Tensor.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .core.errors import ShapeError
from .core.node_names import pytorch_node_name


class _Mode(threading.local):
    grad_enabled = True
    detect_anomaly = False
    trace: list | None = None
    after_backward: list | None = None


_mode = _Mode()
BUILT_IN = __name__.split(".")[0] + "."  # the package's own operations' modules


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


class Node:
    """How a tensor was computed, PyTorch's ``grad_fn``: the operation, what its forward saved
    for the backward (``ctx``, None once freed), its inputs and its settings (``params``)."""

    __slots__ = ("function", "ctx", "inputs", "params")

    def __init__(
        self,
        function: type[Function],
        ctx: Context | None,
        inputs: tuple,
        params: dict | None = None,
    ):
        self.function, self.ctx, self.inputs = function, ctx, inputs
        self.params = {} if params is None else params

    def name(self) -> str:
        """PyTorch's name for this node (``AddmmBackward0``), so printed graphs read the same."""
        inputs = tuple(unwrap(x) for x in self.inputs)
        return pytorch_node_name(self.function.__name__, inputs, self.params)

    @property
    def next_functions(self) -> tuple:
        """One ``(node, 0)`` per input, the nodes its gradient flows to: the input's own node,
        :class:`AccumulateGrad` for a leaf that requires grad, else None."""
        return tuple((grad_node(x), 0) for x in self.inputs)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The node that adds a gradient into a leaf tensor's ``.grad``; ``variable`` is the leaf."""

    next_functions = ()

    def __init__(self, variable: Any):
        self.variable = variable

    def name(self) -> str:
        """PyTorch's name, which (unlike its class name) carries the C++ namespace."""
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def grad_node(x: Any) -> Node | AccumulateGrad | None:
    """Where a gradient for ``x`` goes: its node, an AccumulateGrad for a leaf, or nowhere."""
    if not is_tensor(x) or not x.requires_grad:
        return None
    return AccumulateGrad(x) if x.node is None else x.node


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
        # one pass over the inputs: this runs for every operation of every step
        mode, tensor = _mode, _tensor_class
        grad_enabled, arrays, needs = mode.grad_enabled, [], []
        for x in inputs:
            if isinstance(x, tensor):
                arrays.append(x.array)
                needs.append(grad_enabled and x.requires_grad)
            else:
                arrays.append(x)
                needs.append(False)
        if mode.detect_anomaly:
            _check_finite(cls.__name__, "input", arrays)
        ctx = Context(tuple(needs))
        out = cls.forward(ctx, *arrays, **params)
        if mode.detect_anomaly:  # name the operation that made the first NaN or Inf
            _check_finite(cls.__name__, "output", (out,))
        result = tensor(out, requires_grad=any(needs))
        if result.requires_grad:
            result.node = Node(cls, ctx, inputs, params)
        if mode.trace is not None:
            mode.trace.append((cls, inputs, params, result))
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


def _graph_order(roots: list[Any]) -> tuple[list[Any], dict[int, int]]:
    """Tensors with a node, each after every tensor computed from it (iterative DFS), and
    how many of their nodes take each of them as an input (by id): the gradients it gets."""
    tensor_class = _tensor_class  # runs for every input of every node: locals, no calls
    order: list[Any] = []
    uses: dict[int, int] = {}
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False) for root in reversed(roots)]
    pop, push = stack.pop, stack.append
    while stack:
        tensor, expanded = pop()
        if expanded:
            order.append(tensor)
            continue
        key = id(tensor)
        if key in seen:
            continue
        seen.add(key)
        push((tensor, True))
        for inp in tensor.node.inputs:
            if isinstance(inp, tensor_class) and inp.node is not None:
                key = id(inp)
                uses[key] = uses.get(key, 0) + 1
                if key not in seen:
                    push((inp, False))
    order.reverse()
    return order, uses


def _seeds(tensors: Any, grad_tensors: Any, caller: str) -> list[tuple[Any, np.ndarray]]:
    """``(tensor, gradient)`` pairs to start from, checked as PyTorch checks them."""
    tensors = [tensors] if is_tensor(tensors) else list(tensors)
    if grad_tensors is None or is_tensor(grad_tensors) or isinstance(grad_tensors, np.ndarray):
        grad_tensors = [grad_tensors] * len(tensors) if len(tensors) == 1 else grad_tensors
    grad_tensors = [None] * len(tensors) if grad_tensors is None else list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(
            f"{caller}: got {len(grad_tensors)} gradients for {len(tensors)} tensors"
        )
    seeds = []
    for i, (tensor, grad) in enumerate(zip(tensors, grad_tensors, strict=True)):
        if not tensor.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        if grad is None:
            if tensor.array.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            grad = np.ones_like(tensor.array)
        grad = np.asarray(unwrap(grad), dtype=tensor.array.dtype)
        if grad.shape != tensor.array.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {grad.shape} and "
                f"output[{i}] has a shape of {tensor.array.shape}"
            )
        seeds.append((tensor, grad))
    return seeds


def backward(
    tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None, inputs: Any = None
) -> None:
    """Add the gradient of ``tensors`` into the ``.grad`` of every leaf that requires one (of
    ``inputs`` only, when given) and of every tensor that called ``retain_grad()``.

    ``grad_tensors`` are the gradients of ``tensors`` (needed unless each has one element);
    the graph's saved arrays are freed unless ``retain_graph``.
    """
    seeds = _seeds(tensors, grad_tensors, "backward")
    if is_tensor(inputs):
        inputs = [inputs]
    chosen = None if inputs is None else {id(t) for t in inputs}

    def accumulate(tensor: Any, grad: np.ndarray, owned: bool) -> None:
        if chosen is None:
            wanted = tensor.node is None or tensor.retains_grad
        else:
            wanted = id(tensor) in chosen
        if wanted:
            tensor.accumulate_grad(grad, owned)

    _mode.after_backward = []
    try:
        _propagate(seeds, bool(retain_graph), accumulate, chosen or set())
        callbacks = _mode.after_backward
    finally:
        _mode.after_backward = None
    for callback in callbacks:
        callback()


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, returned instead of added into
    ``.grad`` (``torch.autograd.grad``; first order only)."""
    if create_graph:
        raise NotImplementedError(
            "kernelab.autograd.grad: create_graph=True (gradients of gradients) is not supported"
        )
    inputs = (inputs,) if is_tensor(inputs) else tuple(inputs)
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    wanted = {id(x) for x in inputs}
    found: dict[int, np.ndarray] = {}

    def collect(tensor: Any, g: np.ndarray, owned: bool) -> None:
        if id(tensor) in wanted:
            key = id(tensor)
            found[key] = g if key not in found else found[key] + g

    _propagate(_seeds(outputs, grad_outputs, "grad"), bool(retain_graph), collect, wanted)
    result = []
    for x in inputs:
        if id(x) in found:
            result.append(wrap(np.array(found[id(x)], dtype=x.array.dtype)))
        elif materialize_grads:
            result.append(wrap(np.zeros_like(x.array)))
        elif allow_unused:
            result.append(None)
        else:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
    return tuple(result)


def _propagate(
    seeds: list[tuple[Any, np.ndarray]], retain_graph: bool, sink, kept: set[int]
) -> None:
    """Walk the graph back from the seeds; ``sink(tensor, grad, owned)`` receives the gradient
    of each inner tensor that calls ``retain_grad()`` or is among ``kept`` once it is
    complete, then each leaf's, summed over every path to it. A tensor's ``register_hook``
    hooks see (and may replace) its gradient first. ``kept`` are the ids of the tensors the
    sink wants whatever they are (``inputs``): a fused backward
    (:func:`register_fused_backward`, :func:`register_summed_backward`) never skips one.

    ``owned`` says that nothing but this walk holds the array, so a leaf may keep it as its
    ``.grad`` without a copy (as PyTorch's AccumulateGrad steals a gradient no one else
    references): a sum the walk made, or a new array a built-in operation's backward returned.
    """
    walk = _Walk(kept)
    for root, g in seeds:
        walk.add(root, g, NOT_OWNED)
    order, uses = _graph_order([root for root, _ in seeds if root.node is not None])
    grads, pending, add = walk.grads, walk.pending, walk.add
    for tensor in order:
        key = id(tensor)
        g = grads.pop(key, None)
        if g is None:
            continue
        node = tensor.node
        if node.ctx is None:
            raise RuntimeError(
                "backward through a graph a second time: its saved arrays were freed; "
                "pass retain_graph=True to the first backward"
            )
        in_grads = None
        if key in pending:
            done, in_grads, g = walk.summed_backward(tensor, g)
        if in_grads is None:
            if tensor.grad_hooks:
                g = _hooked(tensor, g)
            if tensor.retains_grad or key in kept:  # the sink wants no other inner tensor
                sink(tensor, g, False)  # g goes on to the backward, which may pass it through
            done, in_grads = _backward(node, g, uses, kept, grads)
        for inp, ig, level in _input_grads(done[-1], g, in_grads, uses):
            add(inp, ig, level)  # a fused backward's are the skipped node's inputs'
        if not retain_graph:
            for finished in done:
                finished.ctx = None
    for key, leaf in walk.leaves.items():
        # a hook is handed the array and may keep it
        owned = walk.owned[key] == KEPT and not leaf.grad_hooks
        sink(leaf, _hooked(leaf, walk.grads.pop(key)), owned)


class _Walk:
    """The gradients a backward pass has summed so far, by tensor id: ``grads``, each one's
    ``owned`` level (:func:`ownership`), the leaves among them, and a second gradient left
    unsummed (``pending``) for a node whose backward takes the two parts in one pass."""

    def __init__(self, kept: set[int]):
        self.kept = kept
        self.grads: dict[int, np.ndarray] = {}
        self.owned: dict[int, int] = {}  # KEPT, SUMMED_INTO or NOT_OWNED
        self.leaves: dict[int, Any] = {}
        self.pending: dict[int, tuple[np.ndarray, int]] = {}

    def add(self, tensor: Any, g: np.ndarray, level: int) -> None:
        """Sum g into the tensor's gradient (or leave it pending: :meth:`summed_backward`)."""
        key = id(tensor)
        if key not in self.grads:  # the first gradient (none can be pending): kept as it is
            self.grads[key], self.owned[key] = g, level
            if tensor.node is None:
                self.leaves[key] = tensor
            return
        if key not in self.pending and self._defers(tensor, g):
            self.pending[key] = g, level
            return
        if key in self.pending:  # a third part: the two before are summed after all
            self._sum(tensor, *self.pending.pop(key))
        self._sum(tensor, g, level)

    def _defers(self, tensor: Any, g: np.ndarray) -> bool:
        """Whether a second gradient for ``tensor`` may wait for its node's summed backward:
        nothing but that backward would see the sum (see :func:`register_summed_backward`)."""
        return (
            tensor.node is not None
            and tensor.node.function in _SUMMED
            and not tensor.grad_hooks
            and not tensor.retains_grad
            and id(tensor) not in self.kept
            and not _mode.detect_anomaly
            and g.dtype == self.grads[id(tensor)].dtype
        )

    def _sum(self, tensor: Any, g: np.ndarray, level: int) -> None:
        key, grads, owned = id(tensor), self.grads, self.owned
        if key in grads and owned[key] and grads[key].dtype == np.result_type(grads[key], g):
            np.add(grads[key], g, out=grads[key])  # the walk's own memory: summed in place
        elif key in grads and level and g.dtype == np.result_type(grads[key], g):
            np.add(g, grads[key], out=g)  # into the new gradient, the one the walk owns
            grads[key], owned[key] = g, level
        elif key in grads:  # a new array, laid out as the tensor is (a leaf's C-ordered)
            order = "C" if tensor.node is None else "K"
            total = np.empty_like(tensor.array, np.result_type(grads[key], g), order)
            grads[key], owned[key] = np.add(grads[key], g, out=total), KEPT
        else:
            grads[key], owned[key] = g, level
        if tensor.node is None:
            self.leaves[key] = tensor

    def summed_backward(self, tensor: Any, g: np.ndarray) -> tuple[tuple, Any, np.ndarray]:
        """``((node,), input gradients, g)``: the tensor's node's backward of g plus its
        pending second gradient, in one pass; else ``((), None, the tensor's gradient)``."""
        second = self.pending.pop(id(tensor), None)
        if second is None:
            return (), None, g
        node = tensor.node
        in_grads = _SUMMED[node.function](node.ctx, g, second[0])
        if in_grads is not None:
            return (node,), in_grads, g
        self.grads[id(tensor)] = g  # summed as any other, for the node's own backward
        self._sum(tensor, *second)
        return (), None, self.grads.pop(id(tensor))


def _backward(node: Node, g: np.ndarray, uses: dict[int, int], kept: set[int], grads) -> tuple:
    """``(nodes run, input gradients)``: the node's backward of g, or that of the node and
    the one that made its input, fused (:func:`register_fused_backward`)."""
    skipped = _skippable(node, uses, kept, grads)
    if skipped is not None:
        fused = _FUSED[node.function, skipped.node.function]
        in_grads = fused(node.ctx, skipped.node.ctx, g)
        if in_grads is not None:
            return (node, skipped.node), in_grads
    return (node,), node.function.backward(node.ctx, g)


def _input_grads(node: Any, g: np.ndarray, in_grads: Any, uses: dict[int, int]) -> list:
    """``(input, gradient, ownership)`` for each input of ``node`` that takes one of
    ``in_grads`` (its backward's answer to the output gradient g), shapes checked."""
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if _mode.detect_anomaly:
        _check_finite(node.function.__name__, "gradient", in_grads)
    found = []
    for inp, need, ig in zip(node.inputs, node.ctx.needs_input_grad, in_grads, strict=False):
        if not need or ig is None:
            continue
        if ig.shape != inp.array.shape:
            raise ShapeError(
                f"{node.function.__name__}.backward: gradient of shape {ig.shape} "
                f"for an input of shape {inp.array.shape}"
            )
        # owning a gradient pays only where another one is added into it or a leaf keeps
        # it, and not for a small one: copied (into a leaf's .grad) sooner than proved
        if ig.size >= OWNED_SIZE and (inp.node is None or uses.get(id(inp), 0) > 1):
            found.append((inp, ig, ownership(node, g, ig, in_grads)))
        else:
            found.append((inp, ig, NOT_OWNED))
    return found


# ---- two nodes' backwards in one pass
_FUSED: dict[tuple[type, type], Any] = {}


def register_fused_backward(outer: type[Function], inner: type[Function], backward) -> None:
    """Let the walk run ``backward(outer_ctx, inner_ctx, g)`` in place of two backwards: that
    of a node of ``outer`` whose one input was made by a node of ``inner``, then the inner
    one's. g is the outer node's output gradient; it returns the inner node's input
    gradients, or None where it does not apply (both backwards then run in turn).

    The gradient in between (the outer node's input's) is never made, so the walk fuses only
    where nothing else could want it: that input has no other use in the graph, no hook,
    no ``retain_grad``, no gradient of its own from a seed, and is not among the tensors
    asked for; and not under ``detect_anomaly``, which names the op of a NaN."""
    _FUSED[outer, inner] = backward


_SUMMED: dict[type, Any] = {}


def register_summed_backward(function: type[Function], backward) -> None:
    """Let the walk run ``backward(ctx, g1, g2)`` for a node of ``function`` whose output got
    two gradients: its backward of ``g1 + g2`` without the sum made first (a ReLU whose
    output feeds two branches, as a residual block's, reads both parts in its one pass). It
    returns the input gradients, or None where it does not apply (the sum is made, the
    node's backward runs). The walk defers a sum only where nothing else could want it: as for
    :func:`register_fused_backward`, no hook, no ``retain_grad``, not asked for, not under
    ``detect_anomaly``; and both parts of one dtype."""
    _SUMMED[function] = backward


def _skippable(node: Node, uses: dict[int, int], kept: set[int], grads: dict) -> Any:
    """The input of ``node`` whose node's backward may run fused with its own (see
    :func:`register_fused_backward`), or None."""
    if len(node.inputs) != 1 or not node.ctx.needs_input_grad[0] or _mode.detect_anomaly:
        return None
    inner = node.inputs[0]
    if (
        inner.node is None
        or (node.function, inner.node.function) not in _FUSED
        or inner.node.ctx is None
        or uses.get(id(inner)) != 1
        or inner.grad_hooks
        or inner.retains_grad
        or id(inner) in kept
        or id(inner) in grads
    ):
        return None
    return inner


NOT_OWNED, SUMMED_INTO, KEPT = 0, 1, 2  # what the backward pass may do with a gradient
# Elements from which proving a gradient the walk's own (ownership: 3-4 µs, 10-20 with the
# caches cold after a layer's kernels) pays: the copy it saves takes longer only from here.
OWNED_SIZE = 4096


def fresh(node: Any, g: np.ndarray, ig: np.ndarray, in_grads: tuple) -> bool:
    """Whether the backward of ``node`` made ``ig`` for this input alone, as a whole new array
    (or a reshaped view of one) that a leaf may keep as its ``.grad``: see :func:`ownership`."""
    return ownership(node, g, ig, in_grads) == KEPT


def ownership(node: Any, g: np.ndarray, ig: np.ndarray, in_grads: tuple) -> int:
    """What the walk may do with the gradient ``ig`` that the backward of ``node`` returned.

    Only a built-in operation's array (a user's Function may return an array it keeps) whose
    memory is neither ``g``'s, nor another input's gradient's, nor that of anything the
    forward saved is the walk's own. It is ``KEPT`` (a leaf may hold it as its ``.grad``)
    when it is that whole memory, C-ordered; else ``SUMMED_INTO`` when it is that whole
    memory in another order, writable, as a channel-major view is: a second gradient for the
    same tensor is added into it in place, which saves a new array at every residual
    connection; else ``NOT_OWNED``. The inside of a padded array is not summed into: a sum
    into new memory laid out as the tensor is costs the same pass, and the next backward
    (ReLU's, reading the tensor's memory order) then reads it without a copy."""
    if ig is g or not node.function.__module__.startswith(BUILT_IN):
        return NOT_OWNED
    memory = _memory(ig)
    if memory is None or memory is _memory(g):
        return NOT_OWNED
    grads = [_memory(x) for x in in_grads if isinstance(x, np.ndarray)]
    saved = [_memory(x) for x in vars(node.ctx).values() if isinstance(x, np.ndarray)]
    if sum(m is memory for m in grads) != 1 or any(m is memory for m in saved):
        return NOT_OWNED
    if memory.size != ig.size:
        return NOT_OWNED
    if ig.flags.c_contiguous:
        return KEPT
    return SUMMED_INTO if ig.flags.writeable and _distinct(ig) else NOT_OWNED


def _distinct(array: np.ndarray) -> bool:
    """Whether no two elements of ``array`` share memory: taken by growing strides, each
    axis steps past all the memory the axes before it span (no broadcast, no overlap)."""
    span = array.itemsize
    axes = zip(array.strides, array.shape, strict=True)
    for stride, size in sorted((abs(s), n) for s, n in axes if n > 1):
        if stride < span:
            return False
        span = stride * (size - 1) + span
    return True


def _memory(array: np.ndarray) -> np.ndarray | None:
    """The array that owns ``array``'s memory; None when that is not an array (a buffer)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array if array.base is None else None


def _hooked(tensor: Any, grad: np.ndarray) -> np.ndarray:
    """``grad`` after the tensor's ``register_hook`` hooks, each given the previous result."""
    for hook in tensor.grad_hooks:
        replaced = hook(wrap(grad))
        if replaced is not None:
            grad = np.asarray(unwrap(replaced), dtype=tensor.array.dtype)
            if grad.shape != tensor.array.shape:
                raise RuntimeError(
                    f"hook: returned a gradient of shape {grad.shape} for a tensor of shape "
                    f"{tensor.array.shape}"
                )
    return grad
