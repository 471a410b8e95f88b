"""kernelab.kernels.filtering and `kernelab filter`: kernelab's conv2d against scipy.ndimage."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from kernelab.cli import main
from kernelab.kernels import designed as K
from kernelab.kernels.filtering import filter_image, is_point_symmetric, read_image, to_uint8

RNG = np.random.default_rng(0)
KERNELS = {
    "sobel-x": K.sobel_x(),
    "gaussian:7:1.5": K.gaussian(7, 1.5),
    "laplacian": K.laplacian(),
    "emboss": K.emboss(),
    "box:4": K.box(4),
    "gabor:6:0.5": K.gabor(6, 0.5),
    "random 2x4": RNG.normal(size=(2, 4)),
    "random 4x4": RNG.normal(size=(4, 4)),
    "random 1x3": RNG.normal(size=(1, 3)),
    "random 5x2": RNG.normal(size=(5, 2)),
}


def scipy_filter(image, kernel, mode):
    """SciPy per channel, zero borders (its default is mode='reflect')."""
    fn = ndimage.correlate if mode == "correlate" else ndimage.convolve
    if image.ndim == 2:
        return fn(image, kernel, mode="constant", cval=0.0)
    return np.stack(
        [fn(image[..., c], kernel, mode="constant", cval=0.0) for c in range(image.shape[2])],
        axis=-1,
    )


@pytest.mark.parametrize("mode", ["correlate", "convolve"])
@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("shape", [(13, 17), (9, 11, 3)])
def test_equals_scipy_with_zero_borders(shape, name, mode):
    image = RNG.uniform(0, 255, size=shape)
    out = filter_image(image, KERNELS[name], mode)
    assert out.shape == image.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, scipy_filter(image, KERNELS[name], mode), atol=1e-9)


def test_correlate_and_convolve_differ_only_for_asymmetric_kernels():
    image = RNG.uniform(0, 1, size=(12, 12))
    for kernel in (K.gaussian(5), K.box(3), K.laplacian(8), K.identity(3)):
        assert is_point_symmetric(kernel)
        np.testing.assert_allclose(
            filter_image(image, kernel, "convolve"),
            filter_image(image, kernel, "correlate"),
            atol=1e-12,
        )
    for kernel in (K.sobel_x(), K.emboss(), RNG.normal(size=(3, 3))):
        assert not is_point_symmetric(kernel)
        assert not np.allclose(
            filter_image(image, kernel, "convolve"), filter_image(image, kernel, "correlate")
        )
    # Sobel x is antisymmetric: convolving it gives minus the correlation, away from borders.
    ramp = np.tile(np.arange(8.0), (8, 1))  # intensity increases to the right
    correlated = filter_image(ramp, K.sobel_x(), "correlate")[1:-1, 1:-1]
    assert (correlated > 0).all()
    np.testing.assert_allclose(filter_image(ramp, K.sobel_x(), "convolve")[1:-1, 1:-1], -correlated)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        filter_image(np.zeros((4, 4)), np.ones((3, 3)), "same")
    with pytest.raises(ValueError, match="kernel"):
        filter_image(np.zeros((4, 4)), np.ones(3))


def test_to_uint8_is_min_max():
    out = to_uint8(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 128], [191, 255]]
    assert to_uint8(np.full((2, 2), 300.0)).tolist() == [[255, 255], [255, 255]]


def write_png(path, pixels):
    Image.fromarray(pixels).save(path)
    return str(path)


def test_read_image_grey_and_colour(tmp_path):
    grey = RNG.integers(0, 256, size=(6, 7), dtype=np.uint8)
    rgba = RNG.integers(0, 256, size=(6, 7, 4), dtype=np.uint8)
    assert np.array_equal(read_image(write_png(tmp_path / "g.png", grey)), grey)
    assert np.array_equal(read_image(write_png(tmp_path / "c.png", rgba)), rgba[..., :3])


@pytest.mark.parametrize("mode", ["correlate", "convolve"])
def test_cli_filter_end_to_end(tmp_path, capsys, mode):
    pixels = RNG.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    image = write_png(tmp_path / "in.png", pixels)
    out = tmp_path / "out.png"
    argv = ["filter", image, "--kernel", "sobel-x", "--mode", mode, "--out", str(out), "--compare"]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert f"{mode}d" in line and "CNN layer" in line and "not point-symmetric" in line
    expected = to_uint8(scipy_filter(pixels.astype(np.float64), K.sobel_x(), mode))
    result = np.asarray(Image.open(out))
    assert result.shape == pixels.shape
    assert np.abs(result.astype(int) - expected).max() <= 1
    with Image.open(tmp_path / "out_compare.png") as compare:
        assert compare.size[0] > compare.size[1]


def test_cli_filter_default_output_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = write_png(tmp_path / "digit.png", RNG.integers(0, 256, (10, 10), dtype=np.uint8))
    assert main(["filter", image, "--kernel", "gaussian:5:1"]) == 0
    assert "is point-symmetric, so --mode convolve gives the same result" in capsys.readouterr().out
    out = tmp_path / "runs" / "filter" / "digit_gaussian_5_1_correlate.png"  # not the checkout
    assert Image.open(out).size == (10, 10)
    assert main(["filter", image, "--kernel", "nonsense"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("kernelab filter: error:") and error.count("\n") == 1
