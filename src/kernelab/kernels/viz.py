"""Pictures of kernels and training: each function returns a matplotlib Figure.

Kernels and signed feature maps use a diverging colour map centred on 0 (red excites, blue
inhibits); non-negative maps and spectra use sequential ones. Save any figure with
:func:`save`. Big layers are capped (the first kernels or channels are shown) and the title
says so.

The figures are made without pyplot: nothing keeps them but the caller (no figure registry
to close, so making many leaks nothing), no window ever opens, and a notebook shows a figure
once, as a PNG, when a cell returns it (pyplot's inline backend would also show every figure
made in the cell, a second time). ``figure.savefig`` works as usual (Agg).

matplotlib is an optional extra (``pip install "kernelab[train]"``); it is imported on first
use, so the core engine does not need it.
"""

from __future__ import annotations

import functools
import io
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .frequency import describe, frequency_response


@functools.cache
def _figure_class() -> type:
    """matplotlib's Figure with a PNG form for notebooks; matplotlib imported on first use."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('pictures need matplotlib: pip install "kernelab[train]"') from None

    class KernelabFigure(Figure):
        """A Figure a notebook shows as a PNG, whatever the matplotlib backend."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    return KernelabFigure


def new_figure(figsize: tuple[float, float]):
    """An empty Figure drawn by Agg and kept by no registry (see the module docstring)."""
    figure = _figure_class()(figsize=figsize)  # first: it says how to install matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)  # the canvas attaches itself to the figure
    return figure


def _cmap(name: str, bad: str | None = None):
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap if bad is None else cmap.with_extremes(bad=bad)


def save(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` as a PNG; one made with pyplot is also closed (released)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # pyplot keeps its figures until closed; ours it never had
        pyplot.close(figure)
    return path


def _mosaic(tiles: np.ndarray, columns: int, gap: int = 1, label_rows: int = 0) -> np.ndarray:
    """(n, h, w) tiles laid out in ``columns`` columns as one array, NaN (blank) between.

    ``label_rows`` blank rows above every row of tiles leave room for a caption. Drawing one
    image instead of one axis per tile keeps a 64-kernel picture fast.
    """
    n, h, w = tiles.shape
    rows, step_y, step_x = math.ceil(n / columns), h + gap + label_rows, w + gap
    out = np.full((rows * step_y - gap, columns * step_x - gap), np.nan)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        top = r * step_y + label_rows
        out[top : top + h, c * step_x : c * step_x + w] = tile
    return out


def _tile_figure(
    tiles: np.ndarray,
    labels: Sequence[str],
    columns: int,
    inches: float,
    colour: dict[str, Any],
    label_size: float = 7,
):
    """One axis showing every tile with its label above it, and a colour bar."""
    n, h, w = tiles.shape
    columns = max(1, min(columns, n))
    gap = max(1, round(0.08 * max(h, w)))
    label_rows = max(1, math.ceil(0.3 * h)) if labels else 0
    mosaic = _mosaic(tiles, columns, gap, label_rows)
    width = inches * columns  # of the tiles; the height follows the mosaic's aspect
    figure = new_figure((width + 1.2, width * mosaic.shape[0] / mosaic.shape[1] + 0.7))
    ax = figure.subplots()
    options = dict(colour, cmap=_cmap(colour["cmap"], bad="white"))
    image = ax.imshow(mosaic, interpolation="nearest", **options)
    ax.axis("off")
    for index, label in enumerate(labels):
        r, c = divmod(index, columns)
        x = c * (w + gap) + (w - 1) / 2
        y = r * (h + gap + label_rows) + label_rows - 0.6
        ax.text(x, y, label, ha="center", va="bottom", fontsize=label_size)
    figure.colorbar(image, ax=ax, shrink=0.6)
    return figure, ax


def _shown(total: int, cap: int, what: str) -> str:
    return f"first {cap} of {total} {what}" if total > cap else f"{total} {what}"


def plot_kernels(weight: np.ndarray, title: str = "kernels", columns: int | None = None):
    """One tile per kernel of a layer (C_out, C_in/groups, kH, kW), averaged over its depth.

    A diverging colour map centred on 0 (shared by all tiles) shows the sign of each weight:
    red excites, blue inhibits.
    """
    kernels = np.asarray(weight).mean(axis=1)  # (C_out, kH, kW)
    limit = float(np.abs(kernels).max()) or 1.0
    figure, _ = _tile_figure(
        kernels,
        [str(i) for i in range(len(kernels))],
        columns or min(8, len(kernels)),
        1.0,
        {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit},
    )
    figure.axes[0].set_title(f"{title} {tuple(np.shape(weight))}")
    return figure


def plot_kernel_depth(
    weight: np.ndarray,
    title: str = "kernels by input channel",
    max_out: int = 16,
    max_in: int = 16,
):
    """Every 2-D slice of a layer's kernels: rows are output channels, columns input channels.

    Shape: weight (C_out, C_in/groups, kH, kW); at most ``max_out`` rows and ``max_in``
    columns are drawn (the title says when the layer is bigger). One colour scale, centred
    on 0, for all slices.
    """
    w = np.asarray(weight)
    c_out, depth, kh, kw = w.shape
    shown = w[:max_out, :max_in]  # (rows, columns, kH, kW)
    rows, columns = shown.shape[:2]
    limit = float(np.abs(shown).max()) or 1.0
    mosaic = _mosaic(shown.reshape(rows * columns, kh, kw), columns)
    figure = new_figure((0.5 * columns * (kw + 1) / 4 + 1.6, 0.5 * rows * (kh + 1) / 4 + 1.2))
    ax = figure.subplots()
    cmap = _cmap("RdBu_r", bad="white")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(columns)], range(columns))
    ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(rows)], range(rows))
    ax.tick_params(length=0, labelsize=7, top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.set(xlabel="input channel", ylabel="output channel")
    ax.xaxis.set_label_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    figure.colorbar(image, ax=ax, shrink=0.6)
    figure.axes[0].set_title(
        f"{title} {tuple(w.shape)}\nrows: {_shown(c_out, max_out, 'output channels')}; "
        f"columns: {_shown(depth, max_in, 'input channels')}",
        fontsize=9,
    )
    return figure


def plot_learning_curves(epochs: Sequence[dict[str, float]]):
    """Loss and accuracy per epoch, training beside validation."""
    figure = new_figure((9, 3.5))
    loss_ax, acc_ax = figure.subplots(1, 2)
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
    n = len(matrix)
    labels = list(labels or range(n))
    figure = new_figure((0.55 * n + 2, 0.55 * n + 1.5))
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return figure


def plot_feature_maps(
    maps: np.ndarray, title: str = "feature maps", max_maps: int = 32, columns: int = 8
):
    """The feature maps one image produces at one layer, one tile per output channel.

    Shape: maps (C, H, W). Signed maps share a diverging scale centred on 0; non-negative
    maps (after ReLU or pooling) share a 0..max scale. At most ``max_maps`` are drawn.
    """
    maps = np.asarray(maps)
    shown = maps[:max_maps]
    low, high = float(shown.min()), float(shown.max())
    if low < 0:
        limit = max(-low, high) or 1.0
        colour = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    else:
        colour = {"cmap": "magma", "vmin": 0.0, "vmax": high or 1.0}
    figure, _ = _tile_figure(shown, [str(i) for i in range(len(shown))], columns, 1.1, colour)
    figure.axes[0].set_title(
        f"{title}: {_shown(len(maps), max_maps, 'maps')} of {maps.shape[1]}x{maps.shape[2]}",
        fontsize=9,
    )
    return figure


def plot_frequency_responses(
    weight: np.ndarray,
    title: str = "frequency responses",
    size: int = 32,
    max_kernels: int = 64,
    columns: int = 8,
):
    """|DFT| of each kernel (centre = DC, edges = Nyquist), labelled with its frequency class.

    Shape: weight (C_out, C_in/groups, kH, kW); a deep kernel's response is the root sum of
    squares over its depth (see :func:`kernelab.kernels.frequency.frequency_response`). Each tile is
    scaled to its own maximum, since the class depends on the shape of the response.
    """
    w = np.asarray(weight)
    tiles, labels = [], []
    for index, kernel in enumerate(w[:max_kernels]):
        magnitude = frequency_response(kernel, size)
        tiles.append(magnitude / (magnitude.max() or 1.0))
        labels.append(f"{index} {describe(magnitude).kind}")
    figure, _ = _tile_figure(
        np.stack(tiles),
        labels,
        columns,
        1.2,
        {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0},
        label_size=6,
    )
    figure.axes[0].set_title(
        f"{title}: {_shown(len(w), max_kernels, 'kernels')}\n"
        "|DFT| scaled per kernel, centre = DC, edges = Nyquist (0.5 cycles/pixel)",
        fontsize=9,
    )
    return figure


def plot_images(pictures: Sequence[tuple[str, np.ndarray]], title: str = ""):
    """Images side by side, each with its caption: (H, W) grey or (H, W, 3) colour, uint8."""
    figure = new_figure((3.2 * len(pictures), 3.6))
    axes = figure.subplots(1, len(pictures), squeeze=False)
    for ax, (caption, pixels) in zip(axes[0], pictures, strict=True):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    figure.suptitle(title)
    return figure


def plot_probabilities(
    probabilities: np.ndarray, labels: Sequence[str] | None = None, title: str = "prediction"
):
    """The model's class probabilities for one image, as bars."""
    p = np.asarray(probabilities)
    labels = [str(label) for label in (labels or range(len(p)))]
    figure = new_figure((0.45 * len(p) + 2, 2.8))
    ax = figure.subplots()
    colours = ["tab:orange" if i == p.argmax() else "tab:blue" for i in range(len(p))]
    ax.bar(range(len(p)), p, color=colours)
    ax.set(xticks=range(len(p)), ylim=(0, 1), ylabel="probability", title=title)
    ax.set_xticklabels(labels, rotation=45 if max(map(len, labels)) > 2 else 0, fontsize=8)
    figure.tight_layout()
    return figure
