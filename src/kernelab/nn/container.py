"""Containers: layers in a row (Sequential) or in a list (ModuleList)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..core.errors import ShapeError
from ..core.tensor import Tensor
from ..functional.fused import batch_norm_relu, relu_max_pool2d
from .activation import ReLU
from .module import Module
from .normalization import BatchNorm2d
from .pooling import MaxPool2d


class Sequential(Module):
    """Calls its layers in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(...))``.

    ReLU runs inside its neighbour's pass where the layers allow: ``ReLU, MaxPool2d``
    (undilated) as one pooling of :func:`~kernelab.functional.fused.relu_max_pool2d`, and
    ``BatchNorm2d, ReLU`` as :func:`~kernelab.functional.fused.batch_norm_relu` (but
    ``BatchNorm2d, ReLU, MaxPool2d`` as the batch norm, then ReLU and the pooling fused: no
    output of the ReLU is kept). Only the last layer's output leaves a Sequential, so nothing
    sees the skipped intermediate; outputs, gradients and batch norm's running statistics are
    the layers' own. The autograd graph then holds the fused node in the layers' place.
    Fused are only those exact classes (not subclasses), on 4-D float32 or float64 tensors,
    never a layer whose ``forward`` was replaced on the instance (tools that record each
    layer's output do that). Set ``fuse_activations = False`` on a Sequential (or on the
    class, for all) to run its layers one by one.
    """

    fuse_activations = True

    def __init__(self, *layers: Module):
        super().__init__()
        object.__setattr__(self, "_steps", None)  # the fusion plan, made on the first call
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for name, layer in layers[0].items():
                self.add_module(name, layer)
        else:
            for index, layer in enumerate(layers):
                self.add_module(str(index), layer)

    def forward(self, x: Any) -> Any:
        if not self.fuse_activations:
            for layer in self._modules.values():
                x = layer(x)
            return x
        if self._steps is None:
            object.__setattr__(self, "_steps", fusion_plan(list(self._modules.values())))
        for fused, layers in self._steps:
            if fused is not None and fusable(x, layers):
                x = fused(x, *layers)
                continue
            for layer in layers:
                x = layer(x)
        return x

    # ---- changes to the layers, which make the fusion plan again on the next call
    def add_module(self, name: str, module: Module | None) -> None:
        super().add_module(name, module)
        object.__setattr__(self, "_steps", None)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        object.__setattr__(self, "_steps", None)

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        object.__setattr__(self, "_steps", None)

    def __setitem__(self, index: int, layer: Module) -> None:
        self.add_module(list(self._modules)[index], layer)

    def __delitem__(self, index: int) -> None:
        del self._modules[list(self._modules)[index]]
        object.__setattr__(self, "_steps", None)

    def __getitem__(self, index: int | slice) -> Module:
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, layer: Module) -> Sequential:
        self.add_module(str(len(self)), layer)
        return self


def fusion_plan(layers: list) -> tuple:
    """The layers as steps ``(fused, layers)``: a fused runner and the layers it replaces,
    or ``(None, (layer,))``. ``ReLU, MaxPool2d`` is preferred to ``BatchNorm2d, ReLU``."""
    steps, i = [], 0
    while i < len(layers):
        kinds = tuple(type(layer) for layer in layers[i : i + 3])
        if kinds[:2] == (ReLU, MaxPool2d):
            steps.append((fused_relu_max_pool, tuple(layers[i : i + 2])))
            i += 2
        elif kinds[:2] == (BatchNorm2d, ReLU) and kinds[2:] != (MaxPool2d,):
            steps.append((fused_batch_norm_relu, tuple(layers[i : i + 2])))
            i += 2
        else:
            steps.append((None, (layers[i],)))
            i += 1
    return tuple(steps)


def fusable(x: Any, layers: tuple) -> bool:
    """Whether these layers may run fused on x: a 4-D float tensor, every forward the class's,
    and what the fused op needs of the layers' settings (else the layers say what is wrong)."""
    if not isinstance(x, Tensor) or x.ndim != 4 or x.dtype not in (np.float32, np.float64):
        return False
    if any("forward" in layer.__dict__ for layer in layers):
        return False
    first = layers[0]
    if isinstance(first, BatchNorm2d):
        tensors = (first.weight, first.bias, first.running_mean, first.running_var)
        if any(t is not None and t.dtype != x.dtype for t in tensors):
            return False
        batch = x.shape[0] * x.shape[2] * x.shape[3]
        training = first.training or first.running_mean is None  # batch statistics
        return x.shape[1] == first.num_features and (batch > 1 or not training)
    return layers[1].dilation in (1, (1, 1))


def fused_relu_max_pool(x: Tensor, relu: ReLU, pool: MaxPool2d) -> Tensor:
    """``pool(relu(x))`` in one pass (or the layers' own, which name themselves in an error)."""
    try:
        return relu_max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode)
    except (ShapeError, ValueError):  # nothing ran yet: the layers say what is wrong
        return pool(relu(x))


def fused_batch_norm_relu(x: Tensor, norm: BatchNorm2d, relu: ReLU) -> Tensor:
    """``relu(norm(x))`` in one pass, the running statistics moved as ``norm(x)`` moves them."""
    return batch_norm_relu(x, *norm.step_arguments())


class ModuleList(Module):
    """A list of layers whose parameters the parent module sees."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
