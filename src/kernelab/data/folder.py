"""Images sorted into class folders (``root/<class_name>/*.png``), loaded as arrays.

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
        if images and array.shape != images[0].shape:
            raise ValueError(
                f"load_image_folder: expected every image to be {images[0].shape[:2]} "
                f"(as {files[0]}), found {array.shape[:2]} in {path}; pass size= to resize"
            )
        images.append(array if array.ndim == 2 else array.transpose(2, 0, 1))  # (3, H, W)
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
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in suffixes)
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
