"""``torchvision.utils``: a batch of images as one picture (``make_grid``), saved to a file
(``save_image``), with torchvision's arguments and numbers."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import IO

import numpy as np

from ..core.tensor import Tensor
from ..data.images import pillow
from .missing import not_in_vision

__all__ = ["make_grid", "save_image"]


def make_grid(
    tensor: Tensor | Sequence[Tensor],
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range: tuple[float, float] | None = None,
    scale_each: bool = False,
    pad_value: float = 0.0,
) -> Tensor:
    """The images of a batch side by side, ``nrow`` to a row, ``padding`` pixels of
    ``pad_value`` around each.

    One-channel images are repeated into three (RGB). With ``normalize``, pixels are clamped
    to ``value_range`` (default: the batch's min and max, or each image's own with
    ``scale_each``) and mapped to [0, 1]. A batch of one image is returned without padding.

    Shape:
        - tensor: (B, C, H, W), a list of (C, H, W), one (C, H, W) or one (H, W)
        - output: (C', rows * (H + padding) + padding, cols * (W + padding) + padding), with
          cols = min(nrow, B), rows = ceil(B / cols), C' = 3 if C == 1 else C
    """
    images = _batch(tensor)
    if normalize:
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError(f"make_grid: expected value_range (min, max), received {value_range!r}")
        parts = images[:, None] if scale_each else images[None]  # each image alone, or all
        images = np.concatenate([_rescale(part, value_range) for part in parts])
    if len(images) == 1:
        return Tensor(images[0])
    count, channels, h, w = images.shape
    cols = min(nrow, count)
    rows = int(math.ceil(count / cols))
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((channels, rows * cell_h + padding, cols * cell_w + padding), pad_value)
    grid = grid.astype(images.dtype)
    for k in range(count):
        y, x = divmod(k, cols)
        grid[
            :, y * cell_h + padding : (y + 1) * cell_h, x * cell_w + padding : (x + 1) * cell_w
        ] = images[k]
    return Tensor(grid)


def _batch(tensor) -> np.ndarray:
    """The images as a new array (B, C, H, W), one channel repeated into three."""
    if isinstance(tensor, Tensor):
        array = tensor.array
    elif isinstance(tensor, list) and tensor and all(isinstance(t, Tensor) for t in tensor):
        array = np.stack([t.array for t in tensor])
    else:
        raise TypeError(
            f"make_grid: expected a Tensor or a list of Tensors, received {tensor!r:.80}"
        )
    if array.ndim == 2:
        array = array[None]  # (1, H, W)
    if array.ndim == 3:
        array = array[None]  # (1, C, H, W)
    if array.ndim != 4:
        raise ValueError(f"make_grid: expected (B, C, H, W) images, received shape {array.shape}")
    if array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)  # (B, 3, H, W)
    return np.array(array)


def _rescale(images: np.ndarray, value_range) -> np.ndarray:
    """Pixels clamped to (low, high) and mapped to [0, 1]: ``(x - low) / max(high - low,
    1e-5)``; (low, high) is ``value_range`` or the images' own min and max."""
    low, high = value_range if value_range is not None else (images.min(), images.max())
    low, high = float(low), float(high)
    scale = images.dtype.type(max(high - low, 1e-5))
    return (np.clip(images, low, high) - images.dtype.type(low)) / scale


def save_image(
    tensor: Tensor | Sequence[Tensor],
    fp: str | os.PathLike | IO[bytes],
    format: str | None = None,  # noqa: A002  (torchvision's name)
    **kwargs,
) -> None:
    """Save images in [0, 1] to an image file (a grid of a batch, see :func:`make_grid`,
    whose keywords ``kwargs`` takes): pixels ``x * 255 + 0.5`` clamped to 0..255 and
    truncated, so rounded to the nearest level. ``format`` (``"png"``) is needed for a file
    object; for a path the extension tells."""
    image_module = pillow("save_image")
    grid = make_grid(tensor, **kwargs).array
    pixels = np.clip(grid * 255 + 0.5, 0, 255).transpose(1, 2, 0).astype(np.uint8)  # (H, W, C)
    image_module.fromarray(np.ascontiguousarray(pixels)).save(fp, format=format)


def __getattr__(name: str):
    raise not_in_vision(__name__, name, "torchvision.utils")
