"""A user's image file as a model's input: read, converted like the training data, normalised.

One path for every command and loader: :func:`read_image` reads and converts (grey or colour,
resized, digits centred like MNIST), :func:`model_pixels` applies a model's input shape, and
:func:`normalize_pixels` maps pixels to the values the model trained on. ``kernelab predict``,
``kernelab inspect --image``, ``kernelab explain`` uploads and :func:`load_image_folder` go
through it, so one file gives one array everywhere.

Needs Pillow, an optional dependency (``pip install "kernelab[images]"``), imported only when
an image is actually read.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np

from ..core.serialization import brief
from .transforms import convert_image_dtype, normalize

MNIST_BOX = 20 / 28  # MNIST digits fill a 20x20 box inside the 28x28 frame
# The most pixels (width x height) an image file may have: 50 MP is past any camera photo a
# user would classify, and at 4 bytes a pixel still well under a gigabyte decoded.
MAX_IMAGE_PIXELS = 50_000_000
# What Pillow raises for a damaged file, from its plugins' decoders and parsers
_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)


class ImageTooLarge(ValueError):
    """An image file with more than :data:`MAX_IMAGE_PIXELS` pixels, refused before decoding."""


def pillow(caller: str = "read_image"):
    """Pillow's ``Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            f'{caller} needs Pillow: pip install "kernelab[images]" (or pip install pillow)'
        ) from error
    return Image


@contextmanager
def open_image(path: str | os.PathLike | IO[bytes], caller: str = "read_image") -> Iterator:
    """Pillow's image of a file, refused before decoding when larger than MAX_IMAGE_PIXELS.

    The size comes from the header, so a decompression bomb (a small file that decodes to
    gigabytes) is refused unread. Any failure inside the block too (truncated, corrupt, not
    an image) is a ValueError naming the file, in one line.
    """
    image_module = pillow(caller)
    name = getattr(path, "name", path) if not isinstance(path, (str, os.PathLike)) else path
    too_large = f"at most {MAX_IMAGE_PIXELS:,} pixels are read (kernelab.data.MAX_IMAGE_PIXELS)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)  # ours is lower
            with image_module.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageTooLarge(f"{caller}: {name} is {width}x{height} pixels; {too_large}")
                yield image
    except ImageTooLarge:
        raise
    except image_module.DecompressionBombError:  # Pillow's own, past twice its warning size
        raise ImageTooLarge(f"{caller}: {name} has too many pixels; {too_large}") from None
    except _DAMAGE as error:
        raise ValueError(f"{caller}: cannot read {name}: {brief(error)}") from None


def read_image(
    path: str | os.PathLike | IO[bytes],
    size: int | tuple[int, int] | None = None,
    channels: int = 1,
    like_mnist: bool = False,
) -> np.ndarray:
    """One image file as uint8 (H, W) for ``channels=1`` or (3, H, W) for ``channels=3``.

    ``size`` is ``(height, width)`` or an int for a square (None keeps the file's size);
    resizing is bilinear. ``like_mnist`` (grey images only; colour ones are just resized)
    prepares a photo or scan of a digit as :func:`centre_like_mnist` says; ``size`` defaults
    to 28x28 then.
    """
    image_module = pillow()
    if channels not in (1, 3):
        raise ValueError(f"read_image: expected channels 1 or 3, received {channels}")
    target = (size, size) if isinstance(size, int) else size
    with open_image(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if like_mnist and channels == 1:
            return centre_like_mnist(np.asarray(image, np.float32), target or (28, 28))
        if target is not None and image.size != (target[1], target[0]):
            image = image.resize((target[1], target[0]), image_module.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array if channels == 1 else array.transpose(2, 0, 1)  # (3, H, W)


def centre_like_mnist(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A grey picture of a digit prepared as MNIST's digits were: uint8 ``size``.

    Bright ink on black (inverted when the border is light, the page's level subtracted),
    cropped to the ink (pixels above 1/10 of the brightest: faint noise is not the digit),
    stretched to 255, scaled with Lanczos filtering in floating point so the longer side
    fills 20/28 of the frame, then translated so the centre of mass lands on the frame's
    centre, ink past an edge being cut off. That is MNIST's own rule (fit in 20x20, centre by
    mass in 28x28); the digit is never moved off its centre of mass to keep it whole.

    Shape:
        grey (H, W) floating, 0..255; output ``size`` = (height, width)
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: MNIST's ink is the bright part
        grey, border = 255 - grey, 255 - border
    ink = np.clip(grey - np.median(border), 0, None)
    canvas = np.zeros(size, dtype=np.float32)
    if ink.max() <= 0:
        return canvas.astype(np.uint8)
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] * (255 / ink.max())
    scale = MNIST_BOX * min(size) / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    image_module = pillow()
    digit = image_module.fromarray(crop.astype(np.float32))  # mode "F": 32-bit float
    digit = np.asarray(digit.resize((w, h), image_module.Resampling.LANCZOS)).clip(0, 255)
    # Pixel i's centre is at i + 0.5, the frame's at size / 2: top + com = (size - 1) / 2.
    mass = digit.sum()
    com = ((digit.sum(1) @ np.arange(h)) / mass, (digit.sum(0) @ np.arange(w)) / mass)
    top = round((size[0] - 1) / 2 - com[0])
    left = round((size[1] - 1) / 2 - com[1])
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, size[0]), min(left + w, size[1])
    canvas[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.round(canvas).astype(np.uint8)


def model_pixels(path: str | os.PathLike | IO[bytes], shape: tuple[int, int, int]) -> np.ndarray:
    """The pixels a model with input ``shape`` (C, H, W) sees for an image file: uint8 (C, H, W).

    One channel: grey and centred like MNIST (:func:`centre_like_mnist`); three: RGB, resized.
    """
    channels, height, width = shape
    pixels = read_image(path, (height, width), channels, like_mnist=channels == 1)
    return pixels[None] if pixels.ndim == 2 else pixels


def normalize_pixels(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) → float32 (N, C, H, W): ``(x / 255 − mean) / std``.

    How training normalises its data, so a run's ``mean`` and ``std`` give its model the
    values it learned on.
    """
    x = convert_image_dtype(images)
    return normalize(x[:, None] if x.ndim == 3 else x, mean, std)
