"""PyTorch models in, weights both ways, no pickle anywhere.

:func:`from_torch` rebuilds a PyTorch module made of the layers kernelab has, layer for layer,
with the same arguments, the same weights and the same state_dict keys. :func:`save_safetensors`
and :func:`load_safetensors` move weights as ``.safetensors`` files keyed by PyTorch's
state_dict names, so ``safetensors.torch.load_file`` + ``load_state_dict`` reads a kernelab
file into the equivalent PyTorch model with no renaming, and the other way round.
torch is imported only by :func:`from_torch`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import nn
from .core.tensor import Tensor
from .nn import Module
from .nn.layers import LAYERS


def _sequential(m: Any) -> Module:
    return nn.Sequential(OrderedDict((name, _convert(child)) for name, child in m.named_children()))


def _module_list(m: Any) -> Module:
    return nn.ModuleList(_convert(child) for child in m.children())


# a layer's PyTorch twin has the same class name; a container converts its children
_CONVERTERS: dict[str, Callable[[Any], Module]] = {
    kind.__name__: layer.from_torch for kind, layer in LAYERS.items() if layer.from_torch
} | {"Sequential": _sequential, "ModuleList": _module_list}


def _convert(m: Any) -> Module:
    import torch

    kind = type(m)
    # the class itself, not a subclass: a subclass may have its own forward
    if kind.__module__.startswith("torch.nn") and kind.__name__ in _CONVERTERS:
        layer = _CONVERTERS[kind.__name__](m)
        layer.train(m.training)
        return layer
    if not isinstance(m, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {kind.__name__}")
    raise NotImplementedError(
        f"from_torch: layer {kind.__module__}.{kind.__qualname__} is not supported "
        f"(supported: {', '.join(sorted(_CONVERTERS))}); a module with its own forward cannot be "
        f"converted: rebuild it in kernelab and load the weights with load_safetensors"
    )


def from_torch(module: Any) -> Module:
    """The kernelab equivalent of a PyTorch module: same layers, weights, keys and mode.

    Supported: every layer whose entry in :mod:`kernelab.nn.layers` has a ``from_torch``
    (Conv2d with every option but padding_mode, Linear, pooling, activations, Softmax,
    LogSoftmax, Flatten, dropout, batch norm, Identity), and Sequential/ModuleList nesting them.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("from_torch needs PyTorch: pip install torch") from None
    model = _convert(module)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    missing = sorted(set(model.state_dict()) ^ set(state))
    if missing:  # a layer whose state kernelab lays out differently: never load it half
        raise NotImplementedError(f"from_torch: state_dict keys differ: {missing}")
    model.load_state_dict(state)
    return model


def _state(model_or_state: Any) -> dict[str, np.ndarray]:
    state = model_or_state.state_dict() if isinstance(model_or_state, Module) else model_or_state
    if not isinstance(state, dict):
        raise TypeError(f"expected a Module or a state dict, got {type(model_or_state).__name__}")
    # order="C", not ascontiguousarray, which would turn a 0-d array into shape (1,)
    return {str(k): np.asarray(_numpy(v), order="C") for k, v in state.items()}


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("safetensors files need: pip install safetensors") from None
    return safetensors.numpy


def save_safetensors(
    model_or_state_dict: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Write the weights as a ``.safetensors`` file keyed by PyTorch's state_dict names.

    Accepts a Module or a dict of tensors/arrays (kernelab or torch). ``num_batches_tracked``
    stays a 0-d int64, as PyTorch stores it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _safetensors_numpy().save_file(_state(model_or_state_dict), str(path), metadata=metadata)


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``{key: array}`` in a ``.safetensors`` file, for ``model.load_state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    return dict(_safetensors_numpy().load_file(str(path)))
