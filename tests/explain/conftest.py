"""A small trained run for the explain tests: `kernelab train` on a synthetic MNIST.

The images carry their class as the position of a bright bar, so two epochs give a model
that is right most of the time and wrong on a few images (a confusion matrix worth showing).
"""

import base64
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from kernelab import cli

pytest.importorskip("starlette")
pytest.importorskip("PIL")

# padding "same", padding 1 with stride 2 and a symmetry, and an average pool with padding
TINY = "conv3x4-same,relu,maxpool2,conv3x3x6-p1-s2-symx,relu,avgpool2-p1,flatten,linear10"
SESSION = {"X-Kernelab-Session": "test-session-a"}


def write_mnist(folder: Path, train: int = 400, test: int = 120, seed: int = 0) -> None:
    """MNIST's four gzipped IDX files with 28x28 images whose class is where a bar is."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, label in enumerate(labels):
            row, column = divmod(int(label), 5)
            images[i, 3 + 12 * row : 13 + 12 * row, 2 + 5 * column : 6 + 5 * column] = 255
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as file:
            file.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as file:
            file.write(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    write_mnist(folder)
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, mnist_dir) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny"
    code = cli.main(
        [
            "train",
            "--arch",
            TINY,
            "--data-dir",
            str(mnist_dir),
            "--run-dir",
            str(run),
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    return run


def pixels_b64(pixels: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(pixels, np.uint8).tobytes()).decode()


def drawn_digit() -> np.ndarray:
    """A 1x28x28 uint8 image with a few strokes."""
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 6:9, 8:20] = 255
    image[0, 9:24, 15:18] = 200
    image[0, 14, 10:20] = 120
    return image
