"""Batch transforms against plain loops and the definitions they implement."""

from pathlib import Path

import numpy as np
import pytest

from kernelab import Tensor
from kernelab.data import (
    MNIST_MEAN,
    MNIST_STD,
    convert_image_dtype,
    normalize,
    random_shift,
    read_idx_images,
    shift,
)

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def naive_shift(images, dy, dx):
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    for i in range(len(images)):
        for y in range(h):
            for x in range(w):
                if 0 <= y - dy[i] < h and 0 <= x - dx[i] < w:
                    out[i, ..., y, x] = images[i, ..., y - dy[i], x - dx[i]]
    return out


@pytest.mark.parametrize("shape", [(5, 7, 6), (5, 2, 7, 6)])
def test_shift_matches_loop(shape):
    rng = np.random.default_rng(1)
    images = rng.integers(1, 256, shape, dtype=np.uint8)
    dy, dx = np.array([0, 2, -3, 7, -1]), np.array([1, -2, 0, 0, -6])
    np.testing.assert_array_equal(shift(images, dy, dx), naive_shift(images, dy, dx))


def test_random_shift_is_seeded_and_bounded():
    images = np.zeros((200, 1, 9, 9), np.float32)
    images[:, :, 4, 4] = 1  # one lit pixel in the middle shows each image's shift
    out = random_shift(Tensor(images), 2, generator=7)
    assert isinstance(out, Tensor) and out.dtype == np.float32
    np.testing.assert_array_equal(out.array, random_shift(images, 2, generator=7))
    ys, xs = np.nonzero(out.array[:, 0].sum(axis=2))[1], np.nonzero(out.array[:, 0].sum(axis=1))[1]
    assert sorted(set(ys - 4)) == sorted(set(xs - 4)) == [-2, -1, 0, 1, 2]
    assert out.array.sum() == 200  # shifts of at most 2 keep the middle pixel inside
    assert not np.array_equal(out.array, random_shift(images, 2, generator=8))
    np.testing.assert_array_equal(random_shift(images, 0, generator=1), images)
    with pytest.raises(ValueError, match="max_shift >= 0, received -1"):
        random_shift(images, -1)


def test_convert_image_dtype():
    images = np.array([[0, 51, 255]], np.uint8)
    out = convert_image_dtype(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0.2, 1]], rtol=1e-7)
    assert isinstance(convert_image_dtype(Tensor(images)), Tensor)
    with pytest.raises(ValueError, match="expected uint8 or floating images, received int64"):
        convert_image_dtype(images.astype(np.int64))


def test_normalize_scalar_and_per_channel():
    x = np.random.default_rng(2).random((4, 3, 5, 5)).astype(np.float32)
    out = normalize(x, MNIST_MEAN, MNIST_STD)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (x - 0.1307) / 0.3081, rtol=1e-6)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    per_channel = normalize(Tensor(x), mean, std).array
    for c in range(3):
        np.testing.assert_allclose(per_channel[:, c], (x[:, c] - mean[c]) / std[c], rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected images \(..., 3, H, W\).*\(4, 5, 5\)"):
        normalize(x[:, 0], mean, std)
    with pytest.raises(ValueError, match="convert with convert_image_dtype first"):
        normalize(np.zeros((1, 2, 2), np.uint8), 0.5, 0.5)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no shared MNIST files on this machine")
def test_mnist_constants_are_the_training_set_statistics():
    pixels = read_idx_images(SHARED_MNIST / "train-images-idx3-ubyte.gz")
    counts = np.bincount(pixels.ravel(), minlength=256)  # a histogram: exact and fast
    values = np.arange(256) / 255
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert round(mean, 4) == MNIST_MEAN and round(std, 4) == MNIST_STD


def test_shift_fill_value_for_normalised_images():
    images = np.ones((2, 4, 4), np.float32)
    out = shift(images, [1, 0], [0, -2], fill=-0.42)
    expected = naive_shift(images, [1, 0], [0, -2])
    expected[0, 0, :] = expected[1, :, 2:] = -0.42
    np.testing.assert_array_equal(out, expected)
