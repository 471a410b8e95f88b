"""MNIST-format files for tests, written from the IDX definition (not with kernelab's reader):
the four files from given arrays, and "bar digits" a tiny network learns in an epoch or two."""

import gzip
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file written from the format's definition: magic, sizes, big-endian values."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(folder: Path, splits: dict, compress: bool = True) -> None:
    """MNIST's four IDX files in ``folder``, from ``{"train": (images, labels), "t10k": ...}``
    (uint8 arrays), gzipped as the mirrors serve them unless ``compress`` is False."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, arrays in splits.items():
        for name, array in zip(MNIST_FILES[prefix], arrays, strict=True):
            data = idx_bytes(np.asarray(array, np.uint8))
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def bar_digits(n: int, rng: np.random.Generator, noise: int = 80) -> tuple:
    """``(images, labels)``: 28x28 noise with one bright bar whose place (2 rows of 5) is the
    class, so a tiny network learns it in an epoch or two."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * noise).astype(np.uint8)
    for i, label in enumerate(labels):
        row, column = divmod(int(label), 5)
        images[i, 3 + 12 * row : 13 + 12 * row, 2 + 5 * column : 6 + 5 * column] = 255
    return images, labels


def write_bar_mnist(folder: Path, train: int, test: int, noise: int = 80, seed: int = 0) -> dict:
    """Bar digits as MNIST's files in ``folder``; returns ``{"train": labels, "t10k": labels}``."""
    rng = np.random.default_rng(seed)
    splits = {"train": bar_digits(train, rng, noise), "t10k": bar_digits(test, rng, noise)}
    write_mnist(folder, splits)
    return {prefix: labels for prefix, (_, labels) in splits.items()}
