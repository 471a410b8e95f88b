"""Pictures of kernels and training: each function returns a matplotlib Figure (Agg).

Kernels and signed feature maps use a diverging colour map centred on 0 (red excites, blue
inhibits); non-negative maps and spectra use sequential ones. Save any figure with
:func:`save`. Big layers are capped (the first kernels or channels are shown) and the title
says so.

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


def _tiles(plt, count: int, columns: int, size: float = 1.3, title_space: float = 0.6):
    """A figure with ``count`` tiles in ``columns`` columns; every axis starts hidden."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(size * columns + 0.8, size * rows + title_space), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    return figure, axes


def _shown(total: int, cap: int, what: str) -> str:
    return f"first {cap} of {total} {what}" if total > cap else f"{total} {what}"


def plot_kernel_depth(
    weight: np.ndarray, title: str = "kernels by input channel", max_out: int = 16,
    max_in: int = 16,
):
    """Every 2-D slice of a layer's kernels: rows are output channels, columns input channels.

    Shape: weight (C_out, C_in/groups, kH, kW); at most ``max_out`` rows and ``max_in``
    columns are drawn (the title says when the layer is bigger). One colour scale, centred
    on 0, for all slices.
    """
    plt = _pyplot()
    w = np.asarray(weight)
    c_out, depth = w.shape[:2]
    shown = w[:max_out, :max_in]  # (rows, columns, kH, kW)
    rows, columns = shown.shape[:2]
    limit = float(np.abs(shown).max()) or 1.0
    figure, axes = plt.subplots(
        rows, columns, figsize=(0.9 * columns + 1.2, 0.9 * rows + 0.9), squeeze=False
    )
    for (o, c), ax in np.ndenumerate(axes):
        image = ax.imshow(shown[o, c], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set(xticks=[], yticks=[])
        if c == 0:
            ax.set_ylabel(str(o), fontsize=7, rotation=0, labelpad=8)
        if o == 0:
            ax.set_title(f"in {c}", fontsize=7)
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    figure.suptitle(
        f"{title} {tuple(w.shape)}\nrows: {_shown(c_out, max_out, 'output channels')}; "
        f"columns: {_shown(depth, max_in, 'input channels')}",
        fontsize=9,
    )
    return figure


def plot_feature_maps(maps: np.ndarray, title: str = "feature maps", max_maps: int = 32,
                      columns: int = 8):
    """The feature maps one image produces at one layer, one tile per output channel.

    Shape: maps (C, H, W). Signed maps share a diverging scale centred on 0; non-negative
    maps (after ReLU or pooling) share a 0..max scale. At most ``max_maps`` are drawn.
    """
    plt = _pyplot()
    maps = np.asarray(maps)
    shown = maps[:max_maps]
    figure, axes = _tiles(plt, len(shown), columns)
    low, high = float(shown.min()), float(shown.max())
    if low < 0:
        limit = max(-low, high) or 1.0
        options = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    else:
        options = {"cmap": "magma", "vmin": 0.0, "vmax": high or 1.0}
    for index, ax in enumerate(axes.ravel()[: len(shown)]):
        image = ax.imshow(shown[index], **options)
        ax.set_title(str(index), fontsize=7)
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    figure.suptitle(f"{title}: {_shown(len(maps), max_maps, 'maps')} of "
                    f"{maps.shape[1]}x{maps.shape[2]}", fontsize=9)
    return figure


def plot_frequency_responses(weight: np.ndarray, title: str = "frequency responses",
                             size: int = 32, max_kernels: int = 64, columns: int = 8):
    """|DFT| of each kernel (centre = DC, edges = Nyquist), titled with its frequency class.

    Shape: weight (C_out, C_in/groups, kH, kW); a deep kernel's response is the root sum of
    squares over its depth (see :func:`kernelab.frequency.frequency_response`). Each tile is
    scaled to its own maximum, since the class depends on the shape of the response.
    """
    from .frequency import describe, frequency_response

    plt = _pyplot()
    w = np.asarray(weight)[:max_kernels]
    figure, axes = _tiles(plt, len(w), columns)
    extent = (-0.5, 0.5, 0.5, -0.5)  # cycles per pixel, rows growing downward like the image
    for index, ax in enumerate(axes.ravel()[: len(w)]):
        magnitude = frequency_response(w[index], size)
        peak = magnitude.max() or 1.0
        ax.imshow(magnitude / peak, cmap="viridis", vmin=0, vmax=1, extent=extent)
        ax.set_title(f"{index} {describe(magnitude).kind}", fontsize=6)
    figure.suptitle(
        f"{title}: {_shown(len(np.asarray(weight)), max_kernels, 'kernels')}\n"
        "|DFT| scaled per kernel, centre = DC, edges = Nyquist (0.5 cycles/pixel)",
        fontsize=9,
    )
    return figure


def plot_images(pictures: Sequence[tuple[str, np.ndarray]], title: str = ""):
    """Images side by side, each with its caption: (H, W) grey or (H, W, 3) colour, uint8."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(pictures), figsize=(3.2 * len(pictures), 3.6),
                                squeeze=False)
    for ax, (caption, pixels) in zip(axes[0], pictures, strict=True):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    figure.suptitle(title)
    return figure


def plot_probabilities(probabilities: np.ndarray, labels: Sequence[str] | None = None,
                       title: str = "prediction"):
    """The model's class probabilities for one image, as bars."""
    plt = _pyplot()
    p = np.asarray(probabilities)
    labels = [str(label) for label in (labels or range(len(p)))]
    figure, ax = plt.subplots(figsize=(0.45 * len(p) + 2, 2.8))
    colours = ["tab:orange" if i == p.argmax() else "tab:blue" for i in range(len(p))]
    ax.bar(range(len(p)), p, color=colours)
    ax.set(xticks=range(len(p)), ylim=(0, 1), ylabel="probability", title=title)
    ax.set_xticklabels(labels, rotation=45 if max(map(len, labels)) > 2 else 0, fontsize=8)
    figure.tight_layout()
    return figure
