"""Folders of images, written here with Pillow."""

import sys

import numpy as np
import pytest

from kernelab.data import load_image_folder, read_image


@pytest.fixture
def folder(tmp_path):
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    pictures = {}
    for name in ("cat", "ant"):  # classes are sorted: ant = 0, cat = 1
        (tmp_path / name).mkdir()
        for i in range(2):
            rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            image.fromarray(rgb).save(tmp_path / name / f"{i}.png")
            pictures[(name, i)] = rgb
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    return tmp_path, pictures


def test_rgb_channels_first(folder):
    root, pictures = folder
    images, labels, classes = load_image_folder(root, mode="RGB")
    assert classes == ("ant", "cat") and labels.tolist() == [0, 0, 1, 1]
    assert images.shape == (4, 3, 6, 8) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[2], pictures[("cat", 0)].transpose(2, 0, 1))


def test_grey_uses_pillow_luma(folder):
    image = pytest.importorskip("PIL.Image")
    root, pictures = folder
    images, _, _ = load_image_folder(root, mode="grey")
    assert images.shape == (4, 6, 8)
    expected = np.asarray(image.fromarray(pictures[("ant", 1)]).convert("L"))
    np.testing.assert_array_equal(images[1], expected)
    # ITU-R 601-2 luma, L = R·299/1000 + G·587/1000 + B·114/1000, to within rounding
    r, g, b = pictures[("ant", 1)].astype(float).transpose(2, 0, 1)
    assert np.abs(images[1] - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 1


def test_resize(folder):
    images, _, _ = load_image_folder(folder[0], size=(4, 5), mode="RGB")
    assert images.shape == (4, 3, 4, 5)
    square, _, _ = load_image_folder(folder[0], size=7)
    assert square.shape == (4, 7, 7)


def test_mismatched_sizes_need_resize(folder):
    image = pytest.importorskip("PIL.Image")
    root, _ = folder
    image.fromarray(np.zeros((3, 3), np.uint8)).save(root / "cat" / "small.png")
    with pytest.raises(ValueError, match=r"expected every image to be \(6, 8\).*small.png.*size="):
        load_image_folder(root)


def test_bad_arguments(folder, tmp_path):
    with pytest.raises(ValueError, match="expected mode 'L' or 'RGB', received 'CMYK'"):
        load_image_folder(folder[0], mode="CMYK")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="empty_class, found none"):
        load_image_folder(tmp_path)
    with pytest.raises(NotADirectoryError):
        load_image_folder(tmp_path / "nowhere")


def test_missing_pillow_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "kernelab\[images\]"'):
        load_image_folder(tmp_path)


def test_read_image_channels_and_size(folder):
    root, pictures = folder
    rgb = read_image(root / "cat" / "1.png", channels=3)
    np.testing.assert_array_equal(rgb, pictures[("cat", 1)].transpose(2, 0, 1))
    assert read_image(root / "cat" / "1.png", size=(3, 4)).shape == (3, 4)
    with pytest.raises(ValueError, match="expected channels 1 or 3, received 2"):
        read_image(root / "cat" / "1.png", channels=2)


def test_read_image_like_mnist(tmp_path):
    """A dark, off-centre stroke on white paper becomes a bright, centred, 20-pixel digit."""
    image = pytest.importorskip("PIL.Image")
    paper = np.full((120, 90), 230, np.uint8)
    paper[10:70, 55:70] = 20  # a tall bar, 60 x 15, near the top right
    image.fromarray(paper).save(tmp_path / "digit.png")
    digit = read_image(tmp_path / "digit.png", like_mnist=True)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # black background
    rows, cols = np.nonzero(digit > 127)
    assert rows.max() - rows.min() + 1 == 20  # the longer side fills 20 of 28 pixels
    assert abs((cols.max() - cols.min() + 1) - 5) <= 1  # aspect ratio kept: 15/60 * 20
    mass = digit.astype(float)
    centre = [(mass.sum(axis=1 - a) * np.arange(28)).sum() / mass.sum() for a in (0, 1)]
    np.testing.assert_allclose(centre, [13.5, 13.5], atol=0.6)
    blank = tmp_path / "blank.png"
    image.fromarray(np.full((10, 10), 255, np.uint8)).save(blank)
    assert read_image(blank, like_mnist=True).max() == 0
