"""Classic image filtering with kernelab's own convolution: convolve or correlate any image.

A CNN layer (``F.conv2d``) computes a *correlation*: ``out[i, j] = Σ w[p, q] · x[i + p − a,
j + q − b]``, the kernel laid on the image as it is. Image processing usually means
*convolution*, which flips the kernel by 180° first: ``out[i, j] = Σ w[p, q] · x[i − p + a',
j − q + b']``. The two agree for point-symmetric kernels (Gaussian, box, Laplacian) and differ
for the others: a correlated Sobel x is positive where intensity increases to the right, a
convolved one is negative there.

Borders: zero padding, as in CNN layers, and the output has the input's size. The results
equal ``scipy.ndimage.correlate`` / ``scipy.ndimage.convolve`` with ``mode="constant",
cval=0`` (SciPy's default is ``mode="reflect"``, which differs near the borders), for odd
*and* even kernels. For a kernel of k taps along an axis SciPy's centre tap is k // 2 when
correlating, so the padding is (k // 2 before, (k − 1) // 2 after); convolution flips the
kernel and SciPy moves the centre of even kernels one tap back, so the padding becomes
((k − 1) // 2 before, k // 2 after) — PyTorch's "same" split. For odd k both are k // 2.

Display: the float result is rescaled *min–max* over all channels to 0..255 (the lowest
value black, the highest white). Unlike the absolute value, this keeps the sign, so the
difference between convolving and correlating an antisymmetric kernel stays visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..core.tensor import Tensor
from ..data.images import open_image
from . import viz

MODES = ("correlate", "convolve")


def _padding(kernel_shape: tuple[int, int], mode: str) -> tuple[tuple[int, int], ...]:
    """((top, bottom), (left, right)) that reproduces SciPy's alignment (module docstring)."""
    if mode == "correlate":
        return tuple((k // 2, (k - 1) // 2) for k in kernel_shape)
    return tuple(((k - 1) // 2, k // 2) for k in kernel_shape)


def filter_image(image: np.ndarray, kernel: np.ndarray, mode: str = "correlate") -> np.ndarray:
    """Correlate (as a CNN layer does) or convolve (kernel flipped) an image with a kernel.

    Shape:
        image (H, W) or (H, W, C), each channel filtered alone; kernel (kH, kW), any size
        (even too); output float64 with the image's shape. Borders are zero-padded.
    """
    if mode not in MODES:
        raise ValueError(f"filter_image: expected mode 'correlate' or 'convolve', got {mode!r}")
    x = np.asarray(image, dtype=np.float64)
    w = np.asarray(kernel, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"filter_image: expected an image (H, W) or (H, W, C), got {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"filter_image: expected a kernel (kH, kW), got shape {w.shape}")
    planes = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)  # (C, H, W)
    if mode == "convolve":
        w = w[::-1, ::-1]
    with no_grad():
        out = F.conv2d(
            Tensor(np.ascontiguousarray(planes[:, None])),  # (C, 1, H, W): channels as a batch
            Tensor(np.ascontiguousarray(w)[None, None]),  # (1, 1, kH, kW)
            padding=_padding(w.shape, mode),
        ).array[:, 0]  # (C, H, W)
    return out[0] if x.ndim == 2 else out.transpose(1, 2, 0)


def to_uint8(result: np.ndarray) -> np.ndarray:
    """Min–max rescale to 0..255 (a constant result is clipped to 0..255 instead)."""
    low, high = float(result.min()), float(result.max())
    if high - low < 1e-12:
        return np.clip(np.rint(result), 0, 255).astype(np.uint8)
    return np.rint((result - low) * (255 / (high - low))).astype(np.uint8)


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('reading images needs Pillow: pip install "kernelab[train]"') from None
    return Image


def read_image(path: str | Path) -> np.ndarray:
    """A PNG/JPEG as float64 (H, W) for grey images or (H, W, 3) for colour, values 0..255."""
    with open_image(path, "filter") as image:
        if image.mode not in ("L", "I", "I;16", "F", "1"):
            return np.asarray(image.convert("RGB"), dtype=np.float64)
        return np.asarray(image.convert("F") if image.mode == "1" else image, dtype=np.float64)


def write_image(pixels: np.ndarray, path: str | Path) -> Path:
    """Save uint8 (H, W) or (H, W, 3) pixels as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil().fromarray(pixels).save(path, format="PNG")
    return path


def is_point_symmetric(kernel: np.ndarray) -> bool:
    """True when rotating the kernel by 180° leaves it unchanged (convolve = correlate)."""
    return bool(np.allclose(kernel, kernel[::-1, ::-1]))


def save_comparison(image: np.ndarray, kernel: np.ndarray, title: str, path: str | Path) -> Path:
    """original | correlated | convolved, side by side, as a PNG titled ``title`` and the size."""
    pictures = [("original", to_uint8(image))]
    for mode in MODES:
        pictures.append((f"{mode}d", to_uint8(filter_image(image, kernel, mode))))
    figure = viz.plot_images(pictures, f"{title} {kernel.shape[0]}x{kernel.shape[1]}")
    return viz.save(figure, path)
