"""The ONNX graph an export builds: traced records in, nodes and initializers out.

:class:`Record` is one traced operation with the module that ran it; :class:`GraphBuilder`
names tensors, turns constants into initializers and appends nodes. ``export.py`` drives it,
``export_ops.py`` has one handler per operation that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from ..core.tensor import Tensor
from ..nn import Module
from .common import require_onnx


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
            self.owners[id(tensor)] = self.owners[id(tensor.array)] = key
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
            return id(x) in self.names or id(x.array) in self.names
        return isinstance(x, np.ndarray) and id(x) in self.names

    def bind(self, x: Tensor, name: str, batch_axis: int | None) -> None:
        self._taken.add(name)
        self.names[id(x)] = self.names[id(x.array)] = name
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
            name = self.names.get(id(x)) or self.names[id(x.array)]
            if dtype is None or x.dtype == dtype:
                return name
            return self.node("Cast", [name], f"{hint}/Cast", to=self.elem_type(dtype))
        raw = x.array if isinstance(x, Tensor) else x
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
            self.names[id(rec.output)] = self.names[id(rec.output.array)] = name
        return name
