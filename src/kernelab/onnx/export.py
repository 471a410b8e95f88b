"""Export a model to ONNX by tracing one forward pass, as ``torch.onnx.export`` does.

The model runs once, in evaluation mode, inside :class:`kernelab.autograd.trace`; every
recorded operation becomes one or a few ONNX nodes (``export_ops.py``). Tensors are matched by
identity: the model's parameters and buffers become initializers named by their state_dict
keys, the example input is the graph input, each operation's output a node output. An
operation that does not depend on the input (a symmetric kernel built from its free
parameters, say) is folded: its traced value becomes a constant initializer. The batch axis is
dynamic (``dim_param "batch"``); every other size is the example's.

As with any tracer, only what goes through kernelab operations is seen: a value computed on
raw arrays (``Tensor(x.array * 2)``) would be frozen into the graph as a constant.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import __version__
from ..autograd import no_grad, trace
from ..core.tensor import Tensor
from ..nn import Module
from .common import MIN_OPSET, ONNXError, require_onnx, supported
from .export_ops import HANDLERS
from .graph import GraphBuilder, Record

INPUT, OUTPUT, BATCH = "input", "output", "batch"


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
