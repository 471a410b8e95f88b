"""The one path from an image file to a model's input, checked against expectations built here,
and shared by `kernelab predict` and `kernelab inspect --image`."""

import numpy as np
import pytest

from kernelab import nn
from kernelab.apps import runs
from kernelab.cli import main
from kernelab.core.tensor import Tensor
from kernelab.data import centre_like_mnist, model_pixels, normalize_pixels

Image = pytest.importorskip("PIL.Image")
MEAN, STD = 0.1307, 0.3081


def heavy_footed_digit() -> np.ndarray:
    """A 20x20 shape, 1 where ink: a thin stem (rows 0-13, column 0) on a wide foot (rows 14-19).

    Its longer side is already MNIST's 20 pixels, so no resampling happens; its centre of mass
    is low (row 15.46, column 8.51), so centring it moves its top two rows out of the frame.
    """
    shape = np.zeros((20, 20))
    shape[:14, 0] = 1
    shape[14:, :] = 1
    return shape


def mnist_placement(shape: np.ndarray, frame: int = 28) -> np.ndarray:
    """MNIST's rule, written out pixel by pixel: centre of mass on the frame's centre, the ink
    that falls outside cut off."""
    ink = [(r, c) for r in range(shape.shape[0]) for c in range(shape.shape[1]) if shape[r, c]]
    cy = sum(r for r, _ in ink) / len(ink)
    cx = sum(c for _, c in ink) / len(ink)
    top, left = round((frame - 1) / 2 - cy), round((frame - 1) / 2 - cx)
    out = np.zeros((frame, frame))
    for r, c in ink:
        if 0 <= r + top < frame and 0 <= c + left < frame:
            out[r + top, c + left] = 255
    return out


def write_page(path, shape: np.ndarray) -> str:
    """The shape in dark ink on a light 40x40 page, at rows and columns 10-29."""
    page = np.full((40, 40), 240, np.uint8)
    page[10:30, 10:30][shape > 0] = 10
    Image.fromarray(page).save(path)
    return str(path)


def test_digits_are_centred_by_mass_as_mnist_did(tmp_path):
    shape = heavy_footed_digit()
    expected = mnist_placement(shape)
    assert expected[:, 5].sum() == 18 * 255  # the stem lost its two top rows: centred by mass
    pixels = model_pixels(write_page(tmp_path / "d.png", shape), (1, 28, 28))
    assert pixels.shape == (1, 28, 28) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[0], expected)
    drawn = (np.pad(shape, 4) * 255).astype(np.float32)  # the same digit drawn on black, 28x28
    np.testing.assert_array_equal(centre_like_mnist(drawn), expected)


def test_model_pixels_inverts_and_centres_like_mnist(tmp_path):
    pixels = np.full((50, 60), 255, dtype=np.uint8)
    pixels[5:25, 5:12] = 0  # a dark bar near the top-left corner of a white page
    Image.fromarray(pixels).save(tmp_path / "bar.jpg")
    digit = model_pixels(tmp_path / "bar.jpg", (1, 28, 28))
    assert digit.shape == (1, 28, 28) and digit.dtype == np.uint8
    assert digit[0, [0, -1]].max() == 0 and digit[0, :, [0, -1]].max() == 0  # black border
    rows, cols = np.nonzero(digit[0] > 128)
    assert rows.max() - rows.min() + 1 == 20  # the long side fills 20 of 28 pixels
    assert abs(rows.mean() - 13.5) <= 1 and abs(cols.mean() - 13.5) <= 1
    colour = model_pixels(tmp_path / "bar.jpg", (3, 32, 32))
    assert colour.shape == (3, 32, 32)


def test_normalize_pixels_is_the_training_formula():
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    x = normalize_pixels(pixels, MEAN, STD)
    assert x.shape == (2, 1, 3, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], (pixels / 255 - MEAN) / STD, rtol=1e-6)


class Recorder(nn.Module):
    """A model that remembers every input it is given and answers 'no idea'."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(np.array(x.array))
        return Tensor(np.zeros((x.shape[0], 10), np.float32))


def test_predict_and_inspect_feed_the_model_the_same_pixels(tmp_path, monkeypatch, capsys):
    """`kernelab predict` and `kernelab inspect --image` give the model one array per file."""
    model = Recorder()
    config = {
        "arch": "flatten,linear10",
        "input_shape": [1, 28, 28],
        "mean": MEAN,
        "std": STD,
        "classes": [str(c) for c in range(10)],
    }
    monkeypatch.setattr(runs, "load_run", lambda path: (model, dict(config), tmp_path))
    image = write_page(tmp_path / "d.png", heavy_footed_digit())
    assert main(["predict", "run", image]) == 0
    assert main(["inspect", "run", "--image", image, "--out", str(tmp_path / "report")]) == 0
    predicted, inspected = model.inputs
    np.testing.assert_array_equal(predicted, inspected)
    expected = (mnist_placement(heavy_footed_digit()) / 255 - MEAN) / STD
    np.testing.assert_allclose(predicted, expected[None, None], rtol=1e-6, atol=1e-6)
    assert "d.png: 0 (10.0%)" in capsys.readouterr().out
