"""What the explain page shows of a forward pass, computed with the engine.

:func:`trace` runs one image through a model and keeps every leaf layer's input and output;
:func:`structure` lists the layers; :func:`forward_view` turns a trace into the compact JSON
the page draws (each feature map quantised to uint8 with its own min and max). The
arithmetic behind single values is in ``arithmetic.py``. Nothing here knows about HTTP.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...core.tensor import Tensor
from ...nn.layers import entry


class ExplainError(ValueError):
    """A request the explainer refuses; ``status`` is the HTTP status the web layer sends."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Step:
    """One call of a leaf layer: its input and output for one image (batch axis dropped).

    ``source`` is the index of the step whose output was this step's input, -1 for the
    model's input, None when it cannot be told (a layer fed by an operation in between).
    """

    index: int
    name: str
    module: nn.Module
    x: np.ndarray
    y: np.ndarray
    source: int | None

    @property
    def label(self) -> str:
        """The module's name in the model, or its type for a model that is one layer."""
        return self.name or type(self.module).__name__


def trace(model: nn.Module, x: np.ndarray) -> tuple[list[Step], np.ndarray]:
    """Every leaf layer's input and output, in call order, and the model's output.

    Each leaf's ``forward`` is wrapped for one evaluation-mode pass, so any model works, not
    only a Sequential. Shape: x (1, C, H, W) → output (classes,).
    """
    steps: list[Step] = []
    produced: dict[int, int] = {}  # id(output tensor) → step index
    alive: list[Tensor] = []  # keeps the ids above from being reused during the pass
    inputs = Tensor(x)
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]

    def recording(name: str, module: nn.Module):
        forward = module.forward

        def wrapper(*args, **kwargs):
            tensor = args[0]
            out = forward(*args, **kwargs)
            source = produced.get(id(tensor), -1 if tensor is inputs else None)
            produced[id(out)] = len(steps)
            alive.append(out)
            steps.append(Step(len(steps), name, module, tensor.array[0], out.array[0], source))
            return out

        return wrapper

    model.eval()  # explain shows inference: dropout off, batch norm's running statistics
    try:
        for name, module in leaves:
            module.forward = recording(name, module)
        with no_grad():
            out = model(inputs).array[0]
    finally:
        for _, module in leaves:
            del module.forward
    return steps, out


def kind(module: nn.Module) -> str:
    """The page's name for what a layer does ("conv", "activation", ...; "other" if unknown)."""
    return entry(module).kind


def encode(maps: np.ndarray) -> dict:
    """Feature maps as uint8 in base64, each rescaled by its own min and max.

    Shape: (C, H, W), (C, L) or (F,) (one map). The page reads a value back as
    ``lo[c] + q·(hi[c] − lo[c]) / 255``, exact to within (hi − lo) / 510.
    """
    shape = maps.shape
    flat = maps.reshape(1 if maps.ndim == 1 else shape[0], -1).astype(np.float32, copy=False)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = hi - lo
    scale = np.divide(255, span, out=np.zeros_like(span), where=span > 0)
    q = np.rint((flat - lo[:, None]) * scale[:, None]).astype(np.uint8)  # (C, H·W)
    return {
        "shape": list(shape),
        "lo": lo.tolist(),
        "hi": hi.tolist(),
        "data": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False) if p is not None)


def structure(steps: list[Step]) -> list[dict]:
    """Every layer: name, type, what it does, input and output shapes, parameter count."""
    layers = []
    for step in steps:
        module = step.module
        layers.append(
            {
                "index": step.index,
                "name": step.label,
                "type": type(module).__name__,
                "kind": kind(module),
                "text": f"{type(module).__name__}({module.extra_repr()})",
                "input_shape": list(step.x.shape),
                "shape": list(step.y.shape),
                "params": parameter_count(module),
                "source": step.source,
                "symmetry": getattr(module, "symmetry", None),
            }
        )
    return layers


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def answer(logits: np.ndarray, prefix: str = "") -> dict:
    """The logits, their probabilities (softmax) and the class predicted, keys ``prefix``-ed."""
    probabilities = softmax(logits)
    return {
        f"{prefix}logits": logits.astype(np.float64).tolist(),
        f"{prefix}probabilities": probabilities.tolist(),
        f"{prefix}prediction": int(probabilities.argmax()),
    }


def forward_view(x: np.ndarray, steps: list[Step], logits: np.ndarray) -> dict:
    """The model input, every layer's feature maps (encoded), the logits and probabilities."""
    return {
        "input": encode(x[0]),
        "layers": [encode(step.y) for step in steps],
        **answer(logits),
    }


def model_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's output for one input, nothing kept. Shape: x (1, C, H, W) → (classes,)."""
    with no_grad():
        return model(Tensor(x)).array[0]
