"""Batch transforms for images: to float, normalise, and random-shift augmentation.

Each takes a whole batch (a NumPy array or a Tensor, returning the same kind) so that one
vectorised call per batch replaces a Python loop over its images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.rng import as_generator
from ..core.tensor import Tensor

# Mean and standard deviation of all pixels of MNIST's 60,000 training images, scaled to [0, 1]
# (0.13066 and 0.30811 to five places); the values every PyTorch MNIST example uses.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
# Per channel (R, G, B) over CIFAR-10's 50,000 training images, scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def convert_image_dtype(images: np.ndarray | Tensor, dtype=np.float32) -> np.ndarray | Tensor:
    """uint8 pixels 0..255 to floats in [0, 1]; floating images just change dtype."""
    array = _array(images)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"convert_image_dtype: expected a floating dtype, received {dtype}")
    if array.dtype == np.uint8:
        out = array.astype(dtype) / dtype.type(255)
    elif array.dtype.kind == "f":
        out = array.astype(dtype, copy=False)
    else:
        raise ValueError(
            f"convert_image_dtype: expected uint8 or floating images, received {array.dtype}"
        )
    return _like(images, out)


def normalize(
    images: np.ndarray | Tensor,
    mean: float | Sequence[float],
    std: float | Sequence[float],
) -> np.ndarray | Tensor:
    """``(images - mean) / std``, per channel when ``mean`` and ``std`` are sequences.

    Shape:
        - images: (..., H, W) floating; with per-channel statistics (..., C, H, W)
    """
    array = _array(images)
    if array.dtype.kind != "f":
        raise ValueError(
            f"normalize: expected floating images, received {array.dtype} "
            f"(convert with convert_image_dtype first)"
        )
    # (C, 1, 1) for per-channel statistics: broadcasts over the channel axis, -3
    mean_ = np.asarray(mean, dtype=array.dtype).reshape(-1, 1, 1) if np.ndim(mean) else mean
    std_ = np.asarray(std, dtype=array.dtype).reshape(-1, 1, 1) if np.ndim(std) else std
    if np.any(np.asarray(std) == 0):
        raise ValueError(f"normalize: expected a non-zero std, received {std}")
    channels = max(np.size(mean), np.size(std))
    if channels > 1 and (array.ndim < 3 or array.shape[-3] != channels):
        raise ValueError(
            f"normalize: expected images (..., {channels}, H, W) for {channels} channel "
            f"statistics, received shape {array.shape}"
        )
    return _like(images, ((array - mean_) / std_).astype(array.dtype, copy=False))


def shift(images: np.ndarray | Tensor, dy, dx, fill: float = 0.0) -> np.ndarray | Tensor:
    """Move image ``i`` down by ``dy[i]`` and right by ``dx[i]`` pixels, filling with ``fill``.

    Negative shifts move up or left. ``out[i, ..., y, x] = images[i, ..., y - dy[i], x - dx[i]]``
    where that lies inside the image, else ``fill``: 0 is the background of raw images; for
    normalised ones pass the background's normalised value, ``-mean / std``.

    Shape:
        - images: (N, H, W) or (N, C, H, W)
        - dy, dx: (N,) ints, or one int for every image
    """
    array = _array(images)
    if array.ndim < 3:
        raise ValueError(f"shift: expected images (N, [C,] H, W), received shape {array.shape}")
    n, h, w = array.shape[0], array.shape[-2], array.shape[-1]
    dy = np.broadcast_to(np.asarray(dy, dtype=np.int64), (n,))
    dx = np.broadcast_to(np.asarray(dx, dtype=np.int64), (n,))
    k = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    batch = array.reshape(n, -1, h, w)  # (N, C, H, W), C = product of any middle axes
    padded = np.pad(batch, ((0, 0), (0, 0), (k, k), (k, k)), constant_values=fill)
    # One zero-copy view of every (H, W) window of the padded images; the window at offset
    # (k - dy, k - dx) is the image shifted by (dy, dx).
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
    out = windows[np.arange(n), :, k - dy, k - dx]  # (N, C, H, W)
    return _like(images, out.reshape(array.shape))


def random_shift(
    images: np.ndarray | Tensor,
    max_shift: int,
    generator: np.random.Generator | int | None = None,
    fill: float = 0.0,
) -> np.ndarray | Tensor:
    """Shift each image by its own random (dy, dx), each uniform in ``-max_shift..max_shift``.

    The translation augmentation of classic MNIST training; pixels shifted out are lost and
    the uncovered border is ``fill`` (see :func:`shift`). Shape as :func:`shift`.
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"random_shift: expected an int max_shift >= 0, received {max_shift!r}")
    n = _array(images).shape[0]
    rng = as_generator(generator)
    dy = rng.integers(-max_shift, max_shift + 1, size=n)
    dx = rng.integers(-max_shift, max_shift + 1, size=n)
    return shift(images, dy, dx, fill)


def _array(images: np.ndarray | Tensor) -> np.ndarray:
    return images.array if isinstance(images, Tensor) else np.asarray(images)


def _like(images: np.ndarray | Tensor, out: np.ndarray) -> np.ndarray | Tensor:
    return Tensor(out) if isinstance(images, Tensor) else out
