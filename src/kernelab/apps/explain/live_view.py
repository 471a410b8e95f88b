"""What the Train view shows of a model in training, as plain dicts for the stream.

Every first- and second-layer kernel (float32 in base64, exact: the page draws them and a
test compares them with the checkpoint's), the feature maps and the prediction for the
current input (``compute.forward_view``), and the loss and accuracy curves downsampled to a
few hundred points. Called from the training thread between two steps.
"""

from __future__ import annotations

import base64

import numpy as np

from ...nn import Conv2d, Module
from . import compute

EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
CURVE_POINTS = 400  # points per curve sent to the page: buckets' means past that
MAX_KERNEL_VALUES = 262_144  # values of one layer's kernels sent (1 MB); more are cut


def conv_layers(model: Module, count: int = 2) -> list[tuple[str, Conv2d]]:
    """The first ``count`` convolutions, with their names in the model."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv2d)]
    return convs[:count]


def kernels(model: Module) -> list[dict]:
    """Every kernel of the first two convolutions: (C_out, C_in/groups, kH, kW) float32.

    A layer with more than :data:`MAX_KERNEL_VALUES` values sends its first kernels only
    (``shown`` says how many).
    """
    layers = []
    for name, conv in conv_layers(model):
        weight = np.ascontiguousarray(conv.materialize(), np.float32)  # (C_out, depth, kH, kW)
        per_kernel = int(np.prod(weight.shape[1:]))
        shown = max(1, min(weight.shape[0], MAX_KERNEL_VALUES // per_kernel))
        layers.append(
            {
                "name": name,
                "shape": list(weight.shape),
                "shown": shown,
                "data": base64.b64encode(weight[:shown].tobytes()).decode("ascii"),
            }
        )
    return layers


def decode_kernels(layer: dict) -> np.ndarray:
    """A layer of :func:`kernels` back as an array (shown, C_in/groups, kH, kW)."""
    shape = (layer["shown"], *layer["shape"][1:])
    return np.frombuffer(base64.b64decode(layer["data"]), np.float32).reshape(shape)


def downsample(values: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """At most ``points`` rows: consecutive rows averaged in equal buckets (the last row of
    each bucket's step kept). Shape: (N, 3) rows of (step, loss, acc) → (min(N, points), 3)."""
    n = len(values)
    if n <= points:
        return values
    edges = np.linspace(0, n, points + 1).astype(int)
    sums = np.add.reduceat(values, edges[:-1], axis=0)  # (points, 3)
    means = sums / np.diff(edges)[:, None]
    means[:, 0] = values[edges[1:] - 1, 0]
    return means


def curves(rows: list[tuple[int, float, float]], epochs: list[dict]) -> dict:
    """The step curves (downsampled) and one point per validation."""
    values = np.asarray(rows, np.float64).reshape(-1, 3)  # (steps, 3): step, loss, acc
    small = downsample(values)
    return {
        "step": small[:, 0].astype(int).tolist(),
        "loss": small[:, 1].tolist(),
        "acc": small[:, 2].tolist(),
        "epochs": [{k: row[k] for k in EPOCH_KEYS if k in row} for row in epochs],
    }


def input_view(model: Module, x: np.ndarray) -> dict:
    """Every layer's feature maps and the prediction for x (1, C, H, W); the model goes back
    to training mode afterwards (``compute.trace`` runs it in evaluation mode)."""
    was_training = model.training
    try:
        steps, logits = compute.trace(model, x)
        view = compute.forward_view(x, steps, logits)
        view["structure"] = compute.structure(steps)
    finally:
        model.train(was_training)
    return view
