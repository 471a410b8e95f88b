"""Load an ONNX graph as a kernelab Module that runs its nodes in order.

A node with a kernelab layer of identical meaning becomes that layer (``load_layers.py``):
Conv → ``Conv2d``, Gemm with transB=1 and alpha = beta = 1 → ``Linear``, BatchNormalization →
``BatchNorm1d``/``2d``, pools, activations, Flatten, Dropout. The child is named after its
weights (``features.0.weight`` → ``features.0``: the state_dict keys are the initializer
names), else after the module scope in the node's name (``/features/features.2/Relu`` →
``features.2``), as PyTorch and kernelab write them. Every other node runs as a kernelab
operation (``load_ops.py``). Floating-point initializers are Parameters — the model's weights — and
BatchNormalization's mean and variance are buffers, so the loaded model trains, fine-tunes
and freezes like any other; integer initializers (shapes, axes) are buffers.

Shape computations (``Shape → Gather → Unsqueeze → Concat → Reshape``) run on NumPy integer
arrays at each call, so the batch size stays free.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..core.tensor import as_tensor
from ..nn import Module, Parameter
from .common import ONNXError, one_line, require_onnx, supported
from .load_layers import check_node, layer_for
from .load_ops import OPS
from .node import Step, fail

# What a layer or operation raises for values it cannot take (ShapeError and DTypeError too)
_REFUSED = (ValueError, TypeError, IndexError, RuntimeError, ArithmeticError)


class Namespace(Module):
    """Groups the layers and weights that share a name prefix; it is never called."""


class GraphModule(Module):
    """An ONNX graph as a Module: ``forward(*inputs)`` runs the steps in order.

    ``onnx_steps`` are the nodes; a step with a ``module`` calls that child on its first
    input, any other runs its kernelab operation. ``onnx_values`` maps each initializer and
    constant to the dotted name of the Parameter or buffer that holds it.
    """

    def __init__(self, opset: int, inputs: list[str], outputs: list[str]):
        super().__init__()
        self.onnx_opset, self.onnx_inputs, self.onnx_outputs = opset, inputs, outputs
        self.onnx_steps: list[Step] = []
        self.onnx_values: dict[str, str] = {}

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self.onnx_inputs):
            raise ONNXError(
                f"GraphModule: expected {len(self.onnx_inputs)} inputs "
                f"{self.onnx_inputs}, got {len(inputs)}"
            )
        env: dict[str, Any] = {
            n: as_tensor(x) for n, x in zip(self.onnx_inputs, inputs, strict=True)
        }
        env.update({name: _resolve(self, path) for name, path in self.onnx_values.items()})
        for step in self.onnx_steps:
            args = [env[n] if n else None for n in step.inputs]
            try:
                if step.module is not None:
                    result = _resolve(self, step.module)(args[0])
                else:
                    result = OPS[step.op](step, args, self.onnx_opset)
            except ONNXError:
                raise
            except _REFUSED as error:  # an input the node cannot take: say which node
                raise fail(step, one_line(error)) from None
            results = result if isinstance(result, tuple) else (result,)
            env.update((n, v) for n, v in zip(step.outputs, results, strict=False) if n)
        outputs = tuple(env[n] for n in self.onnx_outputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def extra_repr(self) -> str:
        return f"inputs={self.onnx_inputs}, outputs={self.onnx_outputs}, opset={self.onnx_opset}"


def _resolve(root: Module, path: str) -> Any:
    value: Any = root
    for part in path.split("."):
        value = getattr(value, part)
    return value


# ---- names
_SEGMENT = re.compile(r"[A-Za-z0-9_]+")


def _free(root: Module, path: str) -> bool:
    """True when ``path`` can be created: valid names, free last part, Namespaces above it."""
    parts = path.split(".")
    if not all(_SEGMENT.fullmatch(p) for p in parts):
        return False
    parent: Any = root
    for part in parts[:-1]:
        child = dict(parent.named_children()).get(part)
        if child is None:
            return not hasattr(parent, part)
        if type(child) is not Namespace:
            return False
        parent = child
    return not hasattr(parent, parts[-1])


def _flat(root: Module, name: str) -> str:
    """A fresh attribute name of ``root`` made from any string."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "value"
    candidate, n = base, 0
    while not _free(root, candidate):
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def place(root: Module, path: str, value: Any, persistent: bool = True) -> str:
    """Register a module, Parameter or buffer at ``path`` (or a flat fresh name); its path."""
    if not _free(root, path):
        path = _flat(root, path)
    *parents, last = path.split(".")
    owner: Module = root
    for part in parents:
        if part not in dict(owner.named_children()):
            owner.add_module(part, Namespace())
        owner = getattr(owner, part)
    if isinstance(value, (Module, Parameter)):
        setattr(owner, last, value)
    else:
        owner.register_buffer(last, value, persistent=persistent)
    return path


# ---- reading the file
def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    attrs = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.FLOAT:  # float32: its shortest decimal, 1e-05 not
            value = float(str(np.float32(value)))  # 9.99999974e-06 (same float32 value)
        elif isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        attrs[a.name] = value
    return attrs


def _read(source: Any) -> Any:
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, bytes):
            return onnx.load_from_string(source)
        return onnx.load(os.fspath(source))
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ONNXError(
            f"load: {source!s:.100} is not a readable ONNX model ({one_line(error)})"
        ) from None


def _array(onnx: Any, tensor: Any) -> np.ndarray:
    """An initializer's values, refused by name when they do not fill its declared shape."""
    try:
        return onnx.numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as error:
        raise ONNXError(
            f"load: initializer '{tensor.name[:60]}' is unreadable ({one_line(error, 100)})"
        ) from None


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ONNXError("load: the model imports no version of the standard ONNX operator set")


def _shapes(onnx: Any, model: Any) -> dict[str, tuple]:
    """Shapes ONNX shape inference finds (None for a symbolic size); empty if it fails."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    shapes = {}
    graph = inferred.graph
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        t = info.type.tensor_type
        if t.HasField("shape"):
            dims = t.shape.dim
            shapes[info.name] = tuple(
                d.dim_value if d.HasField("dim_value") else None for d in dims
            )
    return shapes


def load(source: str | os.PathLike | bytes | Any) -> GraphModule:
    """A :class:`GraphModule` running the ONNX model in ``source`` (a path, bytes or proto).

    It is returned in eval mode, computing what the graph computes; ``train()`` it to
    fine-tune (batch normalisation then uses batch statistics, dropout drops).

    An operation, attribute or attribute value without an exact kernelab equivalent is an
    :class:`ONNXError` naming the node, its type and the supported list.
    """
    onnx = require_onnx()
    model = _read(source)
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise ONNXError(f"load: the model is not valid ONNX: {one_line(error)}") from None
    opset, graph = _opset(model), model.graph
    static = {t.name: _array(onnx, t) for t in graph.initializer}
    initializers = set(static)
    inputs = [i.name for i in graph.input if i.name not in initializers]
    root = GraphModule(opset, inputs, [o.name for o in graph.output])
    shapes = _shapes(onnx, model)
    steps = []
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
            op = f"{node.domain or 'ai.onnx'}.{node.op_type}"[:60]
            raise ONNXError(
                f"ONNX node '{name[:60]}' ({op}): operation not supported by kernelab; "
                f"supported: {supported(OPS)}"
            )
        step = Step(
            node.op_type, name, list(node.input), list(node.output), _attributes(onnx, node)
        )
        check_node(step, opset)
        if step.op == "Constant":
            static[step.outputs[0]] = OPS["Constant"](step, [], opset)
            root.onnx_values[step.outputs[0]] = place(
                root, _flat(root, step.outputs[0]), static[step.outputs[0]], persistent=False
            )
            continue
        if step.op == "Identity" and step.inputs[0] in static:
            static[step.outputs[0]] = static[step.inputs[0]]
        steps.append(step)
    layers = {id(step): _layer(step, static, shapes, opset) for step in steps}
    steps = _live(steps, root.onnx_outputs, layers)
    for step in steps:
        if layers[id(step)] is not None:
            step.module = _adopt(root, step, *layers[id(step)], initializers)
    _register_weights(root, steps, static, initializers)
    root.onnx_steps = steps
    return root.eval()


def _layer(step: Step, static: dict, shapes: dict, opset: int) -> tuple | None:
    """:func:`layer_for`, a layer's refusal of its arguments reported against the node."""
    try:
        return layer_for(step, static, shapes, opset)
    except ONNXError:
        raise
    except _REFUSED as error:
        raise fail(step, one_line(error)) from None


def _live(steps: list[Step], outputs: list[str], layers: dict) -> list[Step]:
    """The steps some graph output needs; a layer needs its first input only."""
    needed = set(outputs)
    live = []
    for step in reversed(steps):
        if not any(n in needed for n in step.outputs):
            continue
        live.append(step)
        needed.update(step.inputs[:1] if layers[id(step)] is not None else step.inputs)
    return live[::-1]


def _adopt(root: GraphModule, step: Step, layer: Module, weights: dict, initializers) -> str:
    """Place a layer under its weights' prefix, else its node's scope, else the node's name.

    ``weights`` maps the layer's attributes to the graph values they came from. A weight
    prefix counts when every weight is named ``prefix.attribute`` (a state_dict key); the
    scope is the module path exporters put before the operation (``/features/features.0/Conv``
    → ``features.0``). Weights shared between layers are tied.
    """
    candidates = []
    prefixes = {n.rpartition(".")[0] for n in weights.values()}
    if len(prefixes) == 1 and all(n == f"{p}.{a}" for p in prefixes for a, n in weights.items()):
        candidates.append(prefixes.pop())
    scopes = step.name.split("/")
    if len(scopes) > 2:
        candidates.append(scopes[-2])
    path = next((c for c in candidates if c and _free(root, c)), None) or _flat(root, step.name)
    path = place(root, path, layer)
    for attribute, name in weights.items():
        if name not in initializers:
            continue
        shared = _resolve(root, root.onnx_values[name]) if name in root.onnx_values else None
        if isinstance(shared, Parameter):
            setattr(layer, attribute, shared)  # one weight read by two layers stays one
        else:
            root.onnx_values.setdefault(name, f"{path}.{attribute}")
    return path


def _register_weights(root: GraphModule, steps: list[Step], static, initializers) -> None:
    """Initializers read by non-layer steps, or fed to a layer as its input: float ones as
    Parameters, others as buffers."""
    for step in steps:
        for name in step.inputs[:1] if step.module is not None else step.inputs:
            if name not in initializers or name in root.onnx_values:
                continue
            array = np.array(static[name], copy=True)
            value: Any = Parameter(array) if array.dtype.kind == "f" else array
            root.onnx_values[name] = place(root, name, value)
