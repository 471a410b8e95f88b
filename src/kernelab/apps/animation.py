"""``kernelab inspect RUN --animate``: the kernels of a run learning, as a GIF (and an MP4).

One frame per snapshot of the run's kernel timeline (:mod:`kernelab.apps.timeline`): the
first and second convolutions' kernels, each averaged over its depth as
:func:`kernelab.kernels.viz.plot_kernels` draws them, with the step, epoch and loss in the
title. Each layer's colour scale is centred on 0 and spans that frame's largest weight, so
the pattern of every frame shows whatever the kernels' size (they often grow many times
over a run). The GIF is written with pillow; the MP4 when an ffmpeg is found, the one on
the PATH first, else the one the ``imageio-ffmpeg`` package ships.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from ..nn import Conv2d, Module
from . import runs
from .timeline import Timeline, load_timeline

FPS = 4  # frames a second: the early, dense steps change fast enough to be followed
COLUMNS = 8  # kernels a row
LAYERS = 2  # the convolutions drawn: the first and the second


def find_ffmpeg() -> str | None:
    """The ffmpeg executable on the PATH, else imageio-ffmpeg's, else None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package without a binary for this platform
        return None


def tiles(kernels: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """(n, kH, kW) kernels laid out ``columns`` a row, NaN (drawn blank) around each."""
    n, kh, kw = kernels.shape
    rows = math.ceil(n / columns)
    padded = np.full((rows * columns, kh + 1, kw + 1), np.nan)
    padded[:n, :kh, :kw] = kernels
    grid = padded.reshape(rows, columns, kh + 1, kw + 1).transpose(0, 2, 1, 3)
    return grid.reshape(rows * (kh + 1), columns * (kw + 1))[:-1, :-1]  # (H, W) of the mosaic


def layer_kernels(model: Module) -> list[tuple[str, np.ndarray]]:
    """(name, kernels (C_out, kH, kW) averaged over depth) of the first two convolutions."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv2d)][:LAYERS]
    return [(name, np.asarray(conv.weight.array).mean(axis=1)) for name, conv in convs]


def frame_title(timeline: Timeline, step: int) -> str:
    epoch, loss = timeline.epoch(step), timeline.loss(step)
    text = f"step {step}" + (f" (epoch {epoch})" if epoch is not None else " (initial)")
    return text + (f", batch loss {loss:.3f}" if loss is not None else "")


def kernel_animation(model: Module, timeline: Timeline):
    """A matplotlib FuncAnimation of ``model``'s kernels over the timeline's steps.

    ``model`` is the run's (its convolutional part is overwritten by each snapshot in turn).
    The figure is drawn without pyplot, so no window or global state is involved.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.animation import FuncAnimation
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('animations need matplotlib: pip install "kernelab[train]"') from None
    model.load_state_dict(timeline.snapshot(timeline.steps[0]), strict=False)
    first = layer_kernels(model)
    figure = Figure(figsize=(10, 4.2), dpi=90, layout="constrained")
    widths = [tiles(kernels).shape[1] for _, kernels in first]
    axes = figure.subplots(1, len(first), width_ratios=widths, squeeze=False)[0]
    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    images = []
    for ax, (name, kernels) in zip(axes, first, strict=True):
        images.append(ax.imshow(tiles(kernels), cmap=cmap, interpolation="nearest"))
        ax.set_title(f"layer {name}: {len(kernels)} kernels", fontsize=10)
        ax.axis("off")
        figure.colorbar(images[-1], ax=ax, shrink=0.6)
    heading = figure.suptitle("")

    def draw(index: int) -> list:
        step = timeline.steps[index]
        model.load_state_dict(timeline.snapshot(step), strict=False)
        for image, (_, kernels) in zip(images, layer_kernels(model), strict=True):
            limit = float(np.abs(kernels).max()) or 1.0  # the frame's own scale, centred on 0
            image.set_data(tiles(kernels))
            image.set_clim(-limit, limit)
        heading.set_text(frame_title(timeline, step))
        return [*images, heading]

    return FuncAnimation(figure, draw, frames=len(timeline.steps), blit=False)


def animate_run(run: str | Path, path: str | Path | None = None) -> list[Path]:
    """Write the animation of the run's kernel timeline; the files written.

    ``path``: the GIF (default ``RUN/timeline.gif``); the MP4 goes beside it with the
    suffix ``.mp4`` when an ffmpeg is found. Raises FileNotFoundError for a run without a
    timeline.
    """
    model, _, run_dir = runs.load_run(run)
    timeline = load_timeline(run_dir)
    gif = Path(path) if path else run_dir / "timeline.gif"
    if gif.suffix.lower() != ".gif":
        raise ValueError(f"the animation is a GIF: its path must end in .gif, got {gif}")
    animation = kernel_animation(model, timeline)  # says so when matplotlib is missing
    import matplotlib
    from matplotlib.animation import FFMpegWriter, PillowWriter

    gif.parent.mkdir(parents=True, exist_ok=True)
    animation.save(gif, writer=PillowWriter(fps=FPS))
    written = [gif]
    ffmpeg = find_ffmpeg()
    if ffmpeg is not None:
        mp4 = gif.with_suffix(".mp4")
        with matplotlib.rc_context({"animation.ffmpeg_path": ffmpeg}):
            animation.save(mp4, writer=FFMpegWriter(fps=FPS))
        written.append(mp4)
    return written
