"""``torchvision.transforms.functional``: the image operations behind the transforms.

Each takes an image in one of three forms and returns the same form:

- a PIL image (what the datasets return when Pillow is installed);
- a NumPy array (H, W) or (H, W, C), as ``np.asarray(pil_image)`` gives (what the datasets
  return without Pillow);
- a :class:`kernelab.Tensor` (..., C, H, W), as ToTensor gives.

The geometry is done on one NumPy layout, (H, W, ...): a Tensor's last two axes are moved to
the front and back again, so one line of slicing serves all three forms.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Sequence

import numpy as np

from ...core.dtypes import get_default_dtype
from ...core.tensor import Tensor
from ...data.images import pillow
from ...data.transforms import normalize as normalize_images
from ..missing import not_in_vision

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


class InterpolationMode(enum.Enum):
    """How Resize computes new pixels (``torchvision.transforms.InterpolationMode``)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


# Pillow's resampling filter numbers (Image.Resampling), so Pillow need not be imported here.
_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def is_pil_image(img) -> bool:
    """True for a PIL image (without importing Pillow: none exists if it was never imported)."""
    image_module = sys.modules.get("PIL.Image")
    return image_module is not None and isinstance(img, image_module.Image)


def _as_hw(img, caller: str) -> tuple[np.ndarray, Callable[[np.ndarray], object]]:
    """The image as an array (H, W, ...) and the function that turns such an array back into
    the image's form."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise ValueError(f"{caller}: expected a Tensor (..., H, W), received shape {img.shape}")
        array = np.moveaxis(img.array, (-2, -1), (0, 1))  # (H, W, ...)
        return array, lambda out: Tensor(np.ascontiguousarray(np.moveaxis(out, (0, 1), (-2, -1))))
    if is_pil_image(img):
        return np.asarray(img), lambda out: _pil_like(out, img)
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{caller}: expected an array (H, W[, C]), received shape {img.shape}")
        return img, np.ascontiguousarray
    raise TypeError(
        f"{caller}: expected a PIL image, a NumPy array (H, W[, C]) or a Tensor (..., C, H, W), "
        f"received {type(img).__name__}"
    )


def _pil_like(pixels: np.ndarray, like):
    """Pixels as a PIL image of the mode of ``like`` (a palette image keeps its palette)."""
    image = sys.modules["PIL.Image"].fromarray(np.ascontiguousarray(pixels))
    if like.mode == "P":
        image.putpalette(like.getpalette())
    return image


def get_dimensions(img) -> list[int]:
    """``[channels, height, width]`` of an image in any of the three forms."""
    if is_pil_image(img):
        return [len(img.getbands()), img.height, img.width]
    array, _ = _as_hw(img, "get_dimensions")
    if isinstance(img, Tensor):
        return [img.shape[-3] if img.ndim > 2 else 1, *img.shape[-2:]]
    return [array.shape[2] if array.ndim == 3 else 1, *array.shape[:2]]


def to_tensor(pic) -> Tensor:
    """A PIL image or an array (H, W[, C]) as a Tensor (C, H, W); uint8 pixels become floats
    in [0, 1] (the default dtype), other dtypes are kept as they are, as torchvision does."""
    if is_pil_image(pic):
        array = np.asarray(pic)
        if pic.mode == "1":  # one bit per pixel: True is white
            array = array.astype(np.uint8) * 255
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(
                f"to_tensor: expected an array (H, W[, C]), received shape {pic.shape}"
            )
        array = pic
    else:
        raise TypeError(
            f"to_tensor: expected a PIL image or a NumPy array, received {type(pic).__name__}"
        )
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W, 1)
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))  # (C, H, W)
    if chw.dtype == np.uint8:
        dtype = np.dtype(get_default_dtype())
        return Tensor(chw.astype(dtype) / dtype.type(255))
    return Tensor(chw)


def pil_to_tensor(pic) -> Tensor:
    """A PIL image as a Tensor (C, H, W) of its own dtype (uint8 for L and RGB), not scaled."""
    if not is_pil_image(pic):
        raise TypeError(f"pil_to_tensor: expected a PIL image, received {type(pic).__name__}")
    array = np.asarray(pic)
    hwc = array[:, :, None] if array.ndim == 2 else array  # (H, W, C)
    return Tensor(np.ascontiguousarray(hwc.transpose(2, 0, 1)))  # (C, H, W)


def to_pil_image(pic, mode: str | None = None):
    """A Tensor (C, H, W) or (H, W), or an array (H, W[, C]), as a PIL image; floating tensors
    are taken as [0, 1] and scaled to 0..255 (truncated, as torchvision's ``byte()``)."""
    image_module = pillow("to_pil_image")
    if isinstance(pic, Tensor):
        array = pic.array
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)  # (H, W, C)
        if array.dtype.kind == "f" and mode != "F":
            array = (array * 255).astype(np.uint8)
    elif isinstance(pic, np.ndarray):
        array = pic
    else:
        raise TypeError(
            f"to_pil_image: expected a Tensor or a NumPy array, received {type(pic).__name__}"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = image_module.fromarray(np.ascontiguousarray(array))
    return image if mode is None or image.mode == mode else image.convert(mode)


def normalize(tensor: Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
    """``(tensor - mean[c]) / std[c]`` for each channel c of a float Tensor (..., C, H, W)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"normalize: expected a Tensor, received {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"normalize: expected a float tensor, received {tensor.dtype}")
    if tensor.ndim < 3:
        raise ValueError(
            f"normalize: expected a tensor image (..., C, H, W), received shape {tensor.shape}"
        )
    out = normalize_images(tensor, tuple(np.atleast_1d(mean)), tuple(np.atleast_1d(std)))
    if inplace:
        tensor.array[...] = out.array
        return tensor
    return out


def padding_ltrb(padding, caller: str) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` from an int, or a sequence of 1, 2 (left and right, top
    and bottom) or 4 ints, as torchvision takes them."""
    values = [padding] if isinstance(padding, (int, np.integer)) else list(padding)
    if len(values) not in (1, 2, 4) or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values
    ):
        raise ValueError(
            f"{caller}: expected padding as an int >= 0 or 1, 2 or 4 of them, received {padding!r}"
        )
    if len(values) == 1:
        return (int(values[0]),) * 4
    if len(values) == 2:
        return int(values[0]), int(values[1]), int(values[0]), int(values[1])
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    """The image with ``padding`` pixels added on its sides (see :func:`padding_ltrb`), filled with
    ``fill`` (a number, or one per channel) or by ``padding_mode`` edge, reflect or symmetric
    (NumPy's modes of the same names, which are torchvision's)."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"pad: expected padding_mode in {PADDING_MODES}, received {padding_mode!r}"
        )
    left, top, right, bottom = padding_ltrb(padding, "pad")
    array, rebuild = _as_hw(img, "pad")
    if padding_mode != "constant":
        widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
        return rebuild(np.pad(array, widths, mode=padding_mode))
    h, w = array.shape[:2]
    out = np.empty((top + h + bottom, left + w + right, *array.shape[2:]), array.dtype)
    out[...] = fill  # a tuple broadcasts over the last axis, the channels
    out[top : top + h, left : left + w] = array
    return rebuild(out)


def crop(img, top: int, left: int, height: int, width: int):
    """The ``height`` x ``width`` window at (``top``, ``left``); parts outside are zeros."""
    array, rebuild = _as_hw(img, "crop")
    h, w = array.shape[:2]
    out = np.zeros((height, width, *array.shape[2:]), array.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, h), min(left + width, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = array[y0:y1, x0:x1]
    return rebuild(out)


def size_pair(size, caller: str) -> tuple[int, int]:
    """``(height, width)`` from an int (a square) or a sequence of one or two ints."""
    values = [size] if isinstance(size, (int, np.integer)) else list(size)
    if len(values) not in (1, 2) or any(not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{caller}: expected a size int or (height, width), received {size!r}")
    return int(values[0]), int(values[-1])


def center_crop(img, output_size):
    """The central ``output_size`` window; an image smaller than it is padded with zeros
    first, the odd pixel of padding going to the right and bottom."""
    th, tw = size_pair(output_size, "center_crop")
    _, h, w = get_dimensions(img)
    if tw > w or th > h:
        pads = [(tw - w) // 2, (th - h) // 2, (tw - w + 1) // 2, (th - h + 1) // 2]
        img = pad(img, [max(p, 0) for p in pads])
        _, h, w = get_dimensions(img)
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def hflip(img):
    """The image mirrored left to right."""
    array, rebuild = _as_hw(img, "hflip")
    return rebuild(array[:, ::-1])


def vflip(img):
    """The image upside down."""
    array, rebuild = _as_hw(img, "vflip")
    return rebuild(array[::-1])


def resized_size(height: int, width: int, size, max_size: int | None = None) -> tuple[int, int]:
    """``(height, width)`` after Resize: ``size`` (h, w) as given, or an int that the shorter
    side becomes, the longer keeping the aspect ratio (truncated) and at most ``max_size``."""
    if not isinstance(size, (int, np.integer)) and len(size) == 2:
        if max_size is not None:
            raise ValueError("resize: max_size is only allowed when size is one int")
        return int(size[0]), int(size[1])
    requested = int(size) if isinstance(size, (int, np.integer)) else int(size[0])
    short, long = sorted((height, width))
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ValueError(f"resize: expected max_size > size, received {max_size} <= {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_short, new_long) if height <= width else (new_long, new_short)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """The image resized to ``size`` (see :func:`resized_size`).

    A PIL image is resized by Pillow with the filter ``interpolation`` names. An array or a
    Tensor supports NEAREST and BILINEAR, computed as ``torch.nn.functional.interpolate``
    does (``align_corners=False``; with ``antialias`` the bilinear filter widens by the
    shrink factor, as Pillow's does); integer images are rounded back to their dtype.
    """
    mode = interpolation.value if isinstance(interpolation, InterpolationMode) else interpolation
    if isinstance(mode, (int, np.integer)):  # Pillow's filter number, as older code passes
        mode = {v: k for k, v in _PIL_FILTERS.items()}.get(int(mode), mode)
    if mode not in _PIL_FILTERS:
        raise ValueError(f"resize: expected an InterpolationMode, received {interpolation!r}")
    _, h, w = get_dimensions(img)
    oh, ow = resized_size(h, w, size, max_size)
    if (oh, ow) == (h, w):
        return img
    if is_pil_image(img):
        return img.resize((ow, oh), _PIL_FILTERS[mode])
    if mode not in ("nearest", "bilinear"):
        raise NotImplementedError(
            f"resize: {mode} interpolation of arrays and Tensors is not supported (use "
            f"NEAREST or BILINEAR, or a PIL image)"
        )
    array, rebuild = _as_hw(img, "resize")
    if mode == "nearest":  # PyTorch's rule: source index floor(i * in / out)
        rows = np.minimum(np.floor(np.arange(oh) * (h / oh)).astype(np.int64), h - 1)
        cols = np.minimum(np.floor(np.arange(ow) * (w / ow)).astype(np.int64), w - 1)
        return rebuild(array[rows][:, cols])
    dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float64)
    rows = _linear_weights(h, oh, antialias).astype(dtype)  # (OH, H)
    cols = _linear_weights(w, ow, antialias).astype(dtype)  # (OW, W)
    out = np.tensordot(rows, array.astype(dtype, copy=False), axes=(1, 0))  # (OH, W, ...)
    out = np.moveaxis(np.tensordot(cols, out, axes=(1, 1)), 0, 1)  # (OH, OW, ...)
    if array.dtype.kind != "f":
        info = np.iinfo(array.dtype)
        out = np.clip(np.round(out), info.min, info.max).astype(array.dtype)
    return rebuild(out)


def _linear_weights(size_in: int, size_out: int, antialias: bool) -> np.ndarray:
    """The (size_out, size_in) matrix of linear interpolation: output pixel i, centred at
    ``(i + 0.5) * scale`` in input pixels, weighs input pixel j by the triangle
    ``max(0, 1 - |j + 0.5 - centre| / support)``, normalised to sum 1. ``support`` is 1, or
    the shrink factor when antialiasing, so every input pixel counts (Pillow's filter; without
    antialias the triangle is PyTorch's two-tap interpolation, clamped at the borders)."""
    scale = size_in / size_out
    support = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(size_out) + 0.5) * scale  # (OUT,)
    distance = np.abs(np.arange(size_in) + 0.5 - centres[:, None]) / support  # (OUT, IN)
    weights = np.clip(1.0 - distance, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def rgb_to_grayscale(img, num_output_channels: int = 1):
    """The image in grey, with 1 or 3 (equal) channels.

    A PIL image is converted by Pillow (``"L"``, ITU-R 601-2 luma, rounded); a Tensor
    (..., 3, H, W) becomes ``0.2989 r + 0.587 g + 0.114 b`` in its dtype (truncated for
    integers), as torchvision computes it; an array (H, W, 3) is converted as Pillow would.
    """
    if num_output_channels not in (1, 3):
        raise ValueError(
            f"rgb_to_grayscale: expected num_output_channels 1 or 3, received {num_output_channels}"
        )
    if is_pil_image(img):
        grey = img.convert("L")
        if num_output_channels == 1:
            return grey
        return sys.modules["PIL.Image"].merge("RGB", (grey, grey, grey))
    if isinstance(img, Tensor):
        channels = img.shape[-3] if img.ndim > 2 else 0
        if channels not in (1, 3):
            raise TypeError(
                f"rgb_to_grayscale: expected a Tensor (..., 1 or 3, H, W), received {img.shape}"
            )
        x = img.array
        grey = x[..., :1, :, :]
        if channels == 3:
            grey = (
                0.2989 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]
            ).astype(x.dtype)
        reps = (1,) * (x.ndim - 3) + (num_output_channels, 1, 1)
        return Tensor(np.tile(grey, reps))
    array, _ = _as_hw(img, "rgb_to_grayscale")
    if array.ndim == 3 and array.shape[2] == 3:
        r, g, b = (array[:, :, c].astype(np.float64) for c in range(3))
        if (
            array.dtype == np.uint8
        ):  # Pillow's fixed-point luma: (19595 r + 38470 g + 7471 b) / 2^16
            grey = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) // 65536).astype(np.uint8)
        else:
            grey = (0.2989 * r + 0.587 * g + 0.114 * b).astype(array.dtype)
    else:
        grey = array.reshape(array.shape[:2])  # (H, W): already one channel
    return grey if num_output_channels == 1 else np.repeat(grey[:, :, None], 3, axis=2)


def __getattr__(name: str):
    raise not_in_vision(__name__, name, "torchvision.transforms.functional")
