"""A small trained run for the explain tests: `kernelab train` on a synthetic MNIST.

The images carry their class as the position of a bright bar, so two epochs give a model
that is right most of the time and wrong on a few images (a confusion matrix worth showing).
"""

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mnist_files import write_bar_mnist

from kernelab import cli

pytest.importorskip("starlette")
pytest.importorskip("PIL")

# padding "same", padding 1 with stride 2 and a symmetry, and an average pool with padding
TINY = "conv3x4-same,relu,maxpool2,conv3x3x6-p1-s2-symx,relu,avgpool2-p1,flatten,linear10"
SESSION = {"X-Kernelab-Session": "test-session-a"}


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    write_bar_mnist(folder, train=400, test=120, noise=60)
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


def served(app) -> Iterator[str]:
    """``app`` served on 127.0.0.1 at a free port, in a thread; yields its address."""
    from kernelab.apps.explain.app import served_in_thread

    return served_in_thread(app)
