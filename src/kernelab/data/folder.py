"""Folders of image files sorted by class (``root/<class>/*.png``) as one array with labels.

Each file is read by :func:`kernelab.data.images.read_image`. Needs Pillow, an optional
dependency (``pip install "kernelab[images]"``), imported only when a folder is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .images import pillow, read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_CHANNELS = {"L": 1, "grey": 1, "gray": 1, "RGB": 3, "rgb": 3}


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
    pillow("load_image_folder")
    channels = _CHANNELS.get(mode)
    if channels is None:
        raise ValueError(f"load_image_folder: expected mode 'L' or 'RGB', received {mode!r}")
    files, labels, classes = _list_images(Path(root), extensions)
    images = []
    for path in files:
        array = read_image(path, size, channels)
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
