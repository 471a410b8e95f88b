"""Pictures of kernels and training: each function returns a matplotlib Figure (Agg).

matplotlib is an optional extra (``pip install "kernelab[train]"``); it is imported on first
use, so the core engine does not need it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'pictures need matplotlib: pip install "kernelab[train]"'
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` as a PNG and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return path


def plot_kernels(weight: np.ndarray, title: str = "kernels", columns: int | None = None):
    """One tile per kernel of a layer (C_out, C_in/groups, kH, kW), averaged over its depth.

    A diverging colour map centred on 0 (shared by all tiles) shows the sign of each weight:
    red excites, blue inhibits.
    """
    plt = _pyplot()
    kernels = np.asarray(weight).mean(axis=1)  # (C_out, kH, kW)
    count = len(kernels)
    columns = columns or min(8, count)
    rows = math.ceil(count / columns)
    limit = float(np.abs(kernels).max()) or 1.0
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5))
    axes = np.atleast_1d(axes).ravel()
    for index, ax in enumerate(axes):
        ax.axis("off")
        if index < count:
            image = ax.imshow(kernels[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(index), fontsize=7)
    figure.colorbar(image, ax=axes.tolist(), shrink=0.6)
    figure.suptitle(f"{title} {tuple(np.shape(weight))}")
    return figure


def plot_learning_curves(epochs: Sequence[dict[str, float]]):
    """Loss and accuracy per epoch, training beside validation."""
    plt = _pyplot()
    figure, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = [row["epoch"] for row in epochs]
    for split in ("train", "val"):
        if epochs and f"{split}_loss" in epochs[0]:
            loss_ax.plot(x, [row[f"{split}_loss"] for row in epochs], "o-", label=split)
            acc_ax.plot(x, [row[f"{split}_acc"] for row in epochs], "o-", label=split)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    loss_ax.legend()
    acc_ax.legend()
    figure.tight_layout()
    return figure


def plot_confusion(matrix: np.ndarray, labels: Sequence[str] | None = None):
    """Counts of (true class, predicted class); the diagonal holds the right answers."""
    plt = _pyplot()
    n = len(matrix)
    labels = list(labels or range(n))
    figure, ax = plt.subplots(figsize=(0.55 * n + 2, 0.55 * n + 1.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return figure
