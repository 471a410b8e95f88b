"""Start a model from another network's weights: select layers, check shapes, freeze.

Weights come from a kernelab checkpoint, a ``.safetensors`` file, or a PyTorch ``state_dict``
saved with ``torch.save`` — read with ``torch.load(weights_only=True)``, which refuses to run
pickled code. Keys are PyTorch's (``0.weight``, ``features.3.bias``...).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..autograd import unwrap
from ..core import serialization
from ..core.errors import ShapeError
from ..nn import Module


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """A flat ``{name: array}`` from a kernelab checkpoint, safetensors or PyTorch file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError('reading .safetensors needs: pip install "kernelab[train]"') from None
        return dict(load_file(str(path)))
    if path.suffix in (".pt", ".pth", ".bin"):
        try:
            import torch
        except ImportError:
            raise ImportError(f"reading PyTorch file {path.name} needs torch installed") from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            # torch's message is long and advises weights_only=False: keep only its reason
            reason = str(error).split("WeightsUnpickler error:")[-1].split("Check the doc")[0]
            reason = reason.split(". ")[0]
            raise ValueError(
                f"{path}: not a PyTorch file of tensors ({' '.join(reason.split())}); "
                f"anything else is refused unread (save model.state_dict(), not the model)"
            ) from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state_dict (names to tensors), got {type(state)}")
        return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "numpy")}
    content = serialization.load(path)
    state = content.get("model", content) if isinstance(content, dict) else content
    return {k: np.asarray(unwrap(v)) for k, v in state.items()}


def _selected(key: str, layers: Sequence[str] | None) -> bool:
    return layers is None or any(key == p or key.startswith(p + ".") for p in layers)


def transfer(
    model: Module,
    weights: dict[str, np.ndarray],
    layers: Sequence[str] | None = None,
    freeze: bool = False,
) -> list[str]:
    """Copy ``weights`` into ``model`` for the layers named in ``layers`` (all by default).

    Every selected key must exist in both and have the same shape. With ``freeze`` the
    transferred parameters stop requiring gradients, so training leaves them bit-identical.
    Returns the keys copied.
    """
    own = model.state_dict()
    keys = [k for k in own if _selected(k, layers) and k in weights]
    if layers is not None:
        unknown = [p for p in layers if not any(_selected(k, [p]) for k in own)]
        if unknown:
            raise KeyError(f"no layer named {unknown} in the model (its keys: {list(own)})")
    if not keys:
        raise KeyError(f"no matching weights: the file has {list(weights)[:8]}...")
    for key in keys:
        if own[key].shape != np.shape(weights[key]):
            raise ShapeError(
                f"transfer: '{key}' expected shape {tuple(own[key].shape)}, "
                f"got {np.shape(weights[key])}"
            )
    model.load_state_dict({k: weights[k] for k in keys}, strict=False)
    if freeze:
        for name, param in model.named_parameters():
            if name in keys:
                param.requires_grad = False
    return keys
