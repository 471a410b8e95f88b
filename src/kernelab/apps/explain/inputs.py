"""The image the model sees: a drawing's pixels or an uploaded file, checked and converted.

The page sends pixels as base64 of uint8 (C, H, W) at the model's input size; uploads are any
image file, converted as ``kernelab predict`` converts them (grey, resized, inverted when the
background is light, centred like MNIST: :func:`kernelab.data.model_pixels`). Every way an input
can be wrong (not an image, too big, truncated, the wrong size) is an :class:`ExplainError`
with a 4xx status, never an exception from deep inside Pillow.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np

from ... import data
from .compute import ExplainError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # width x height of an upload; a 6000x6000 photo is refused
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def _pil():
    try:
        from PIL import Image
    except ImportError as error:
        raise ExplainError("reading images needs Pillow: pip install pillow", 501) from error
    return Image


def decode_pixels(text, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (C, H, W) from base64 of exactly C·H·W bytes."""
    if not isinstance(text, str):
        raise ExplainError("'pixels' must be a base64 string of uint8 values")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ExplainError("'pixels' is not valid base64") from None
    expected = int(np.prod(shape))
    if len(raw) != expected:
        c, h, w = shape
        raise ExplainError(
            f"'pixels' must hold {expected} bytes ({c}x{h}x{w} uint8), received {len(raw)}"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def encode_pixels(pixels: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).decode()


def centre_like_mnist(pixels: np.ndarray) -> np.ndarray:
    """A grey drawing (1, H, W) cropped to its ink, scaled and centred as MNIST digits are."""
    if pixels.shape[0] != 1 or not pixels.any():
        return pixels
    _pil()  # without Pillow: a 501 that says so
    return data.centre_like_mnist(pixels[0].astype(np.float32), pixels.shape[1:])[None]


def read_upload(body: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """An uploaded image file converted for the model: uint8 (C, H, W).

    Refused with a clear message: an empty or oversized body (413), a file Pillow does not
    recognise as an image (415), more than :data:`MAX_PIXELS` pixels (413), a truncated or
    corrupt file (400).
    """
    image_module = _pil()
    if not body:
        raise ExplainError("the upload is empty: send the bytes of an image file")
    if len(body) > MAX_UPLOAD_BYTES:
        raise ExplainError(
            f"the upload is {len(body):,} bytes; at most {MAX_UPLOAD_BYTES:,} are accepted", 413
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(io.BytesIO(body), formats=FORMATS) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ExplainError(
                        f"the image is {width}x{height} pixels; at most "
                        f"{MAX_PIXELS:,} pixels are accepted",
                        413,
                    )
                image.load()  # decodes everything: a truncated file fails here
    except ExplainError:
        raise
    except image_module.UnidentifiedImageError:
        raise ExplainError(f"not an image file: expected {', '.join(FORMATS)}", 415) from None
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning):
        raise ExplainError("the image is too large to decode safely", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ExplainError(f"the image file is corrupt or truncated ({error})") from None
    try:
        return data.model_pixels(io.BytesIO(body), shape)
    except (ValueError, OSError) as error:
        raise ExplainError(f"cannot convert the image: {error}") from None


def model_input(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (C, H, W) → float32 (1, C, H, W) normalised as in training."""
    return data.normalize_pixels(pixels[None], mean, std)  # as the training normalised
