"""Export a model to ONNX by tracing one forward pass, as ``torch.onnx.export`` does.

The model runs once, in evaluation mode, inside :class:`kernelab.autograd.trace`; every
recorded operation becomes one or a few ONNX nodes (``export_ops.py``). Tensors are matched by
identity: the model's parameters and buffers become initializers named by their state_dict
keys, the example input is the graph input, each operation's output a node output. An
operation that does not depend on the input (a symmetric kernel built from its free
parameters, say) is folded: its traced value becomes a constant initializer. The batch axis is
dynamic (``dim_param "batch"``); every other size is the example's.

As with any tracer, only what goes through kernelab operations is seen: a value computed on
raw arrays (``Tensor(x.data * 2)``) would be frozen into the graph as a constant.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from .. import __version__
from ..autograd import no_grad, trace
from ..core.tensor import Tensor
from ..nn import Module
from .common import MIN_OPSET, ONNXError, require_onnx, supported

INPUT, OUTPUT, BATCH = "input", "output", "batch"


@dataclass
class Record:
    """One traced operation, and the state_dict prefix of the innermost module that ran it."""

    op: type
    inputs: tuple
    params: dict
    output: Tensor
    path: str

    def key(self, name: str) -> str:
        """A name under the module's prefix, as its state_dict keys are."""
        return f"{self.path}.{name}" if self.path else name


class GraphBuilder:
    """Collects nodes and initializers; names every tensor it is given exactly once."""

    def __init__(self, model: Module, opset: int):
        self.onnx = require_onnx()
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.names: dict[int, str] = {}  # id of a tensor (or its array) in the graph → name
        self.batch: dict[int, int | None] = {}  # id of a graph tensor → its batch axis
        self.output_names: dict[int, str] = {}  # id of a model output → graph output name
        self.owners: dict[int, str] = {}  # id of a parameter or buffer (or its array) → key
        for key, tensor in chain(model.named_parameters(), model.named_buffers()):
            self.owners[id(tensor)] = self.owners[id(tensor.data)] = key
        # (id, dtype) → (name, the object): holding the object keeps its id from being reused
        self._cache: dict[tuple[int, Any], tuple[str, Any]] = {}
        self._taken: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, n = name, 0
        while candidate in self._taken:
            n += 1
            candidate = f"{name}_{n}"
        self._taken.add(candidate)
        return candidate

    # ---- values
    def depends(self, x: Any) -> bool:
        """True for a tensor computed from the graph input (or sharing its array)."""
        if isinstance(x, Tensor):
            return id(x) in self.names or id(x.data) in self.names
        return isinstance(x, np.ndarray) and id(x) in self.names

    def bind(self, x: Tensor, name: str, batch_axis: int | None) -> None:
        self._taken.add(name)
        self.names[id(x)] = self.names[id(x.data)] = name
        self.batch[id(x)] = batch_axis

    def batch_axis(self, x: Tensor) -> int | None:
        return self.batch.get(id(x), 0)

    def value(self, x: Any, hint: str, dtype: Any = None) -> str:
        """The name of ``x`` in the graph; a constant becomes an initializer on first use.

        None is ONNX's empty name (an absent optional input). ``dtype`` converts: a Cast node
        for a graph tensor, a converted copy for a constant.
        """
        if x is None:
            return ""
        dtype = None if dtype is None else np.dtype(dtype)
        if self.depends(x):
            name = self.names.get(id(x)) or self.names[id(x.data)]
            if dtype is None or x.dtype == dtype:
                return name
            return self.node("Cast", [name], f"{hint}/Cast", to=self.elem_type(dtype))
        raw = x.data if isinstance(x, Tensor) else x
        key = (id(raw), dtype)
        if key not in self._cache:
            array = np.asarray(raw)
            if dtype is not None and array.dtype != dtype:
                array = array.astype(dtype)  # a converted copy no longer is the parameter
            else:
                hint = self.owners.get(id(raw), hint)
            self._cache[key] = self.constant(array, hint), raw
        return self._cache[key][0]

    def constant(self, array: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        tensor = self.onnx.numpy_helper.from_array(np.asarray(array, order="C"), name)
        self.initializers.append(tensor)
        return name

    def elem_type(self, dtype: Any) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    # ---- nodes
    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attrs):
        """Append one node; returns its output's name. Trailing absent inputs are dropped."""
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]
        name = self.unique(name)
        output = output or self.unique(f"{name}_output_0")
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def emit(self, rec: Record, op: str, inputs: list[str], final: bool = True, **attrs) -> str:
        """A node for ``rec``, named after its module; ``final`` binds the record's output."""
        # PyTorch's scheme, each scope the full module path: /features/features.0/Conv
        parts = rec.path.split(".") if rec.path else []
        prefix = "".join("/" + ".".join(parts[: i + 1]) for i in range(len(parts)))
        output = self.output_names.get(id(rec.output)) if final else None
        if output is not None:
            self._taken.add(output)
        name = self.node(op, inputs, f"{prefix}/{op}", output, **attrs)
        if final:
            self.names[id(rec.output)] = self.names[id(rec.output.data)] = name
        return name


@contextmanager
def _module_paths(model: Module, paths: dict[int, str], records: list) -> Iterator[None]:
    """Note, for each record, the innermost module whose forward was running.

    Each module's ``forward`` is shadowed for the block; on return it claims the records
    made since its call that no inner module claimed (inner modules return first).
    """

    def wrap(name: str, forward):
        def call(*args, **kwargs):
            start = len(records)
            try:
                return forward(*args, **kwargs)
            finally:
                for i in range(start, len(records)):
                    paths.setdefault(i, name)

        return call

    shadowed = []
    for name, module in model.named_modules():
        shadowed.append((module, module.__dict__.get("forward")))
        object.__setattr__(module, "forward", wrap(name, module.forward))
    try:
        yield
    finally:
        for module, previous in shadowed:
            module.__dict__.pop("forward", None)
            if previous is not None:
                object.__setattr__(module, "forward", previous)


def trace_model(model: Module, x: Tensor) -> tuple[list[Record], Any]:
    """Run ``model(x)`` once in evaluation mode, without a graph; restore the modes after."""
    modes = [(module, module.training) for module in model.modules()]
    paths: dict[int, str] = {}
    model.eval()
    try:
        with no_grad(), trace() as tracer, _module_paths(model, paths, tracer.records):
            out = model(x)
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    records = [Record(*r, path=paths.get(i, "")) for i, r in enumerate(tracer.records)]
    return records, out


def _outputs(out: Any) -> list[Tensor]:
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not outputs or not all(isinstance(t, Tensor) for t in outputs):
        raise ONNXError(
            f"export: the model must return a Tensor or a tuple of Tensors, got {type(out)}"
        )
    return outputs


def _convert(records: list[Record], g: GraphBuilder) -> None:
    from .export_ops import HANDLERS

    for rec in records:
        dependent = [x for x in rec.inputs if g.depends(x)]
        if not dependent:
            continue  # folded: its traced value is a constant wherever it is used
        handler = HANDLERS.get(rec.op)
        if handler is None:
            where = f" in module '{rec.path}'" if rec.path else ""
            hint = ""
            if rec.op.__name__ == "Dropout":
                hint = " (export runs in eval mode: call F.dropout with training=self.training)"
            raise ONNXError(
                f"export: operation {rec.op.__name__}{where} has no ONNX equivalent{hint}; "
                f"supported: {supported(c.__name__ for c in HANDLERS)}"
            )
        batch = g.batch_axis(dependent[0])
        handler(g, rec)
        g.batch.setdefault(id(rec.output), batch)


def export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike | None,
    opset_version: int = 17,
) -> Any:
    """Write ``model`` as an ONNX file at ``path``, traced on ``example_input``.

    ``example_input`` is a Tensor or a NumPy array (N, ...); the exported graph takes any
    batch size N. Returns the ``onnx.ModelProto`` (also when ``path`` is None: nothing is
    written). The graph is checked with ``onnx.checker.check_model(full_check=True)``.
    """
    onnx = require_onnx()
    if opset_version < MIN_OPSET:
        raise ONNXError(f"export: opset_version must be at least {MIN_OPSET}, got {opset_version}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    if x.ndim < 1:
        raise ONNXError(f"export: expected an input with a batch axis, got shape {x.shape}")
    records, out = trace_model(model, x)
    outputs = _outputs(out)
    g = GraphBuilder(model, opset_version)
    g.bind(x, INPUT, 0)
    names = [OUTPUT] if len(outputs) == 1 else [f"{OUTPUT}_{i}" for i in range(len(outputs))]
    for tensor, name in zip(outputs, names, strict=True):
        g.output_names[id(tensor)] = name
    _convert(records, g)
    for tensor, name in zip(outputs, names, strict=True):
        if g.names.get(id(tensor)) != name:  # the input itself, a constant, or a repeat
            g.node("Identity", [g.value(tensor, f"{name}_value")], f"/{name}/Identity", name)
    graph = onnx.helper.make_graph(
        g.nodes,
        "kernelab",
        [_value_info(g, INPUT, x, 0)],
        [_value_info(g, n, t, g.batch.get(id(t))) for t, n in zip(outputs, names, strict=True)],
        initializer=g.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset_version)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="kernelab")
    proto.producer_version = __version__
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _value_info(g: GraphBuilder, name: str, x: Tensor, batch_axis: int | None):
    shape: list[Any] = list(x.shape)
    if batch_axis is not None and g.depends(x):
        shape[batch_axis] = BATCH
    return g.onnx.helper.make_tensor_value_info(name, g.elem_type(x.dtype), shape)
