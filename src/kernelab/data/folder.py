"""Image files as arrays: one file, or folders of them sorted by class (``root/<class>/*.png``).

Needs Pillow, an optional dependency (``pip install "kernelab[images]"``), imported only when
a folder is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_MODES = {"L": "L", "grey": "L", "gray": "L", "RGB": "RGB", "rgb": "RGB"}
_MNIST_BOX = 20 / 28  # MNIST digits fill a 20x20 box inside the 28x28 frame


def read_image(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    channels: int = 1,
    like_mnist: bool = False,
) -> np.ndarray:
    """One image file as uint8 (H, W) for ``channels=1`` or (3, H, W) for ``channels=3``.

    ``size`` is ``(height, width)`` or an int for a square (None keeps the file's size).
    ``like_mnist`` (grey images only; colour ones are just resized) prepares a photo or scan
    of a digit as MNIST's digits were prepared: bright ink on a black background (inverted if
    the border is light), cropped to the ink, scaled so its longer side fills 20/28 of the
    frame, and placed with its centre of mass at the centre. ``size`` defaults to 28x28 then.
    """
    image_module = _import_pil()
    if channels not in (1, 3):
        raise ValueError(f"read_image: expected channels 1 or 3, received {channels}")
    target = (size, size) if isinstance(size, int) else size
    try:
        with image_module.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if like_mnist and channels == 1:
                return _like_mnist(np.asarray(image, np.float32), target or (28, 28), image_module)
            if target is not None and image.size != (target[1], target[0]):
                image = image.resize((target[1], target[0]), image_module.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except OSError as error:
        raise ValueError(f"read_image: cannot read {path}: {error}") from error
    return array if channels == 1 else array.transpose(2, 0, 1)  # (3, H, W)


def _like_mnist(grey: np.ndarray, size: tuple[int, int], image_module) -> np.ndarray:
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: MNIST's ink is the bright part
        grey, border = 255 - grey, 255 - border
    ink = np.clip(grey - np.median(border), 0, None)
    canvas = np.zeros(size, dtype=np.float32)
    if ink.max() <= 0:
        return canvas.astype(np.uint8)
    rows, cols = np.nonzero(ink > 0.1 * ink.max())  # faint noise is not part of the digit
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] * (255 / ink.max())
    scale = _MNIST_BOX * min(size) / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = image_module.fromarray(crop.astype(np.float32))  # mode "F": 32-bit float
    digit = np.asarray(digit.resize((w, h), image_module.Resampling.LANCZOS)).clip(0, 255)
    # Place the digit so its centre of mass lands on the frame's centre, clipping at edges.
    mass = digit.sum()
    com = ((digit.sum(1) @ np.arange(h)) / mass, (digit.sum(0) @ np.arange(w)) / mass)
    top = round((size[0] - 1) / 2 - com[0])
    left = round((size[1] - 1) / 2 - com[1])
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, size[0]), min(left + w, size[1])
    canvas[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.round(canvas).astype(np.uint8)


def load_image_folder(
    root: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    mode: str = "L",
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Every image under ``root/<class_name>/``, as one array with class-index labels.

    Classes are the sub-folder names in sorted order and files are read in sorted order, as
    torchvision's ``ImageFolder`` does. ``mode`` is ``"L"`` (grey) or ``"RGB"``; ``size`` is
    ``(height, width)``, or an int for squares, to resize every image to (bilinear); with None
    all images must already share one size.

    Shape:
        - images: (N, H, W) for grey, (N, 3, H, W) for RGB; uint8 (the layout of MNIST and
          CIFAR-10 respectively)
        - labels: (N,) int64
        - classes: the class names, ``classes[label]``
    """
    image_module = _import_pil()
    pil_mode = _MODES.get(mode)
    if pil_mode is None:
        raise ValueError(f"load_image_folder: expected mode 'L' or 'RGB', received {mode!r}")
    target = (size, size) if isinstance(size, int) else size
    files, labels, classes = _list_images(Path(root), extensions)
    images = []
    for path in files:
        try:
            with image_module.open(path) as image:
                image = image.convert(pil_mode)
                if target is not None and image.size != (target[1], target[0]):
                    image = image.resize((target[1], target[0]), image_module.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except OSError as error:
            raise ValueError(f"load_image_folder: cannot read {path}: {error}") from error
        if array.ndim == 3:
            array = array.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        if images and array.shape != images[0].shape:
            raise ValueError(
                f"load_image_folder: expected every image to be {images[0].shape[-2:]} "
                f"(as {files[0]}), found {array.shape[-2:]} in {path}; pass size= to resize"
            )
        images.append(array)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def _list_images(root: Path, extensions: Sequence[str]):
    if not root.is_dir():
        raise NotADirectoryError(f"load_image_folder: root {str(root)!r} is not a folder")
    suffixes = {e.lower() for e in extensions}
    classes = tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir()))
    if not classes:
        raise FileNotFoundError(f"load_image_folder: expected class folders in {root}, found none")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(
            p for p in (root / name).iterdir() if p.suffix.lower() in suffixes and p.is_file()
        )
        if not found:
            raise FileNotFoundError(
                f"load_image_folder: expected images ({', '.join(sorted(suffixes))}) in "
                f"{root / name}, found none"
            )
        files += found
        labels += [label] * len(found)
    return files, labels, classes


def _import_pil():
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            'load_image_folder needs Pillow: pip install "kernelab[images]" (or pip install pillow)'
        ) from error
    return Image
