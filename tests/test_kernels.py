"""Hand-designed kernels against their definitions, SciPy, and OpenCV's formulas."""

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.signal.windows import gaussian as gaussian_window
from scipy.special import comb

from kernelab.kernels import designed as K

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def binomial(n):
    return np.array([comb(n - 1, k, exact=True) for k in range(n)], dtype=float)


def ramp(axis, size=9):
    """An image whose intensity grows along ``axis`` (1: to the right, 0: downward)."""
    values = np.arange(size, dtype=float)
    return np.tile(values, (size, 1)) if axis == 1 else np.tile(values[:, None], (1, size))


# ---- derivatives
def test_sobel_3x3_is_the_textbook_matrix():
    np.testing.assert_array_equal(K.sobel_x(), SOBEL_X)
    np.testing.assert_array_equal(K.sobel_y(), SOBEL_X.T)
    assert K.sobel_x().dtype == np.float64


@pytest.mark.parametrize("size", [5, 7, (3, 5), (7, 5)])
def test_larger_sobel_is_smoothing_outer_derivative(size):
    kh, kw = (size, size) if isinstance(size, int) else size

    def derivative(n):  # central difference [-1, 0, 1] smoothed by an (n-2)-tap binomial
        return np.convolve([-1, 0, 1], binomial(n - 2))

    np.testing.assert_array_equal(K.sobel_x(size), np.outer(binomial(kh), derivative(kw)))
    np.testing.assert_array_equal(K.sobel_y(size), np.outer(derivative(kh), binomial(kw)))


def test_sobel_5x5_matches_opencv():
    expected = np.outer([1, 4, 6, 4, 1], [-1, -2, 0, 2, 1])
    np.testing.assert_array_equal(K.sobel_x(5), expected)


@pytest.mark.parametrize(
    "fn, axis",
    [
        (K.sobel_x, 1),
        (K.sobel_y, 0),
        (K.scharr_x, 1),
        (K.scharr_y, 0),
        (K.prewitt_x, 1),
        (K.prewitt_y, 0),
    ],
)
def test_derivative_sign_under_correlation(fn, axis):
    """x kernels respond positively to intensity rising to the right, y kernels downward."""
    response = ndimage.correlate(ramp(axis), fn(), mode="nearest")[4, 4]
    assert response > 0
    other = ndimage.correlate(ramp(1 - axis), fn(), mode="nearest")[4, 4]
    assert other == 0


def test_scharr_and_prewitt_matrices():
    scharr = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], dtype=float)
    np.testing.assert_array_equal(K.scharr_x(), scharr)
    np.testing.assert_array_equal(K.scharr_y(), scharr.T)
    np.testing.assert_array_equal(K.prewitt_x(), [[-1, 0, 1]] * 3)
    np.testing.assert_array_equal(K.prewitt_y(), np.array([[-1, 0, 1]] * 3).T)
    np.testing.assert_array_equal(K.prewitt_x(5), [[-2, -1, 0, 1, 2]] * 5)
    np.testing.assert_array_equal(K.prewitt_x((3, 5)), [[-2, -1, 0, 1, 2]] * 3)


# ---- Laplacians
def test_laplacian_stencils():
    np.testing.assert_array_equal(K.laplacian(), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(K.laplacian(8), [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    opencv_5x5 = [
        [2, 4, 4, 4, 2],
        [4, 0, -8, 0, 4],
        [4, -8, -24, -8, 4],
        [4, 0, -8, 0, 4],
        [2, 4, 4, 4, 2],
    ]
    np.testing.assert_array_equal(K.laplacian(size=5), opencv_5x5)
    assert K.laplacian(size=7).sum() == 0


def test_laplacian_matches_scipy():
    image = np.random.default_rng(0).normal(size=(12, 10))
    ours = ndimage.correlate(image, K.laplacian(), mode="reflect")
    np.testing.assert_allclose(ours, ndimage.laplace(image, mode="reflect"), atol=1e-12)


@pytest.mark.parametrize("size, sigma", [(9, 1.4), (7, 1.0), ((5, 9), 1.2)])
def test_laplacian_of_gaussian_formula_and_zero_sum(size, sigma):
    kh, kw = (size, size) if isinstance(size, int) else size
    y, x = np.mgrid[:kh, :kw].astype(float)
    r2 = (x - (kw - 1) / 2) ** 2 + (y - (kh - 1) / 2) ** 2
    log = (r2 - 2 * sigma**2) / sigma**4 * np.exp(-r2 / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    ours = K.laplacian_of_gaussian(size, sigma)
    np.testing.assert_allclose(ours, log - log.mean(), atol=1e-14)
    assert abs(ours.sum()) < 1e-12
    assert ours[kh // 2, kw // 2] < 0


def test_difference_of_gaussians():
    g1 = np.outer(gaussian_window(9, 1.0), gaussian_window(9, 1.0))
    g2 = np.outer(gaussian_window(9, 2.0), gaussian_window(9, 2.0))
    expected = g1 / g1.sum() - g2 / g2.sum()
    np.testing.assert_allclose(K.difference_of_gaussians(9, 1, 2), expected, atol=1e-15)
    assert abs(K.difference_of_gaussians(9, 1, 2).sum()) < 1e-12
    assert K.difference_of_gaussians(9, 1, 2)[4, 4] > 0


# ---- smoothing and others
@pytest.mark.parametrize("size, sigma", [(3, 0.8), (7, 1.5), (5, 3.0), ((5, 9), (1.0, 2.5))])
def test_gaussian_matches_scipy_window(size, sigma):
    kh, kw = (size, size) if isinstance(size, int) else size
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    expected = np.outer(gaussian_window(kh, sy), gaussian_window(kw, sx))
    ours = K.gaussian(size, sigma)
    np.testing.assert_allclose(ours, expected / expected.sum(), rtol=1e-12)
    assert ours.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("k", [3, 5, 7, 11])
def test_gaussian_default_sigma_is_opencvs(k):
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # cv2.getGaussianKernel with sigma <= 0
    np.testing.assert_allclose(K.gaussian(k), K.gaussian(k, sigma), rtol=1e-15)


def test_box_identity_sharpen_emboss():
    image = np.random.default_rng(1).normal(size=(8, 9))
    box = ndimage.correlate(image, K.box(3), mode="reflect")
    np.testing.assert_allclose(box, ndimage.uniform_filter(image, 3, mode="reflect"), atol=1e-12)
    assert K.box((2, 5)).shape == (2, 5) and K.box((2, 5)).sum() == pytest.approx(1.0)
    ident = ndimage.correlate(image, K.identity(5), mode="constant")
    np.testing.assert_array_equal(ident, image)
    np.testing.assert_array_equal(K.identity((4, 4)).nonzero(), ([2], [2]))
    np.testing.assert_array_equal(K.sharpen(), K.identity(3) - K.laplacian())
    np.testing.assert_array_equal(K.emboss(), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


# ---- Gabor
def opencv_gabor(ksize_wh, sigma, theta, lambd, gamma, psi):
    """cv2.getGaborKernel, transcribed loop for loop (odd sizes)."""
    xmax, ymax = ksize_wh[0] // 2, ksize_wh[1] // 2
    sigma_x, sigma_y = sigma, sigma / gamma
    c, s = math.cos(theta), math.sin(theta)
    out = np.empty((2 * ymax + 1, 2 * xmax + 1))
    for y in range(-ymax, ymax + 1):
        for x in range(-xmax, xmax + 1):
            xr = x * c + y * s
            yr = -x * s + y * c
            v = math.exp(-0.5 * xr * xr / sigma_x**2 - 0.5 * yr * yr / sigma_y**2)
            out[ymax - y, xmax - x] = v * math.cos(2 * math.pi / lambd * xr + psi)
    return out


@pytest.mark.parametrize(
    "size, theta, sigma, lambd, psi, gamma",
    [
        (7, 0.0, 2.0, 4.0, 0.0, 0.5),
        (7, 0.785, 2.0, 4.0, math.pi / 2, 0.5),
        (9, 2.0, 1.5, 3.0, 0.3, 1.0),
        ((5, 7), 1.1, 2.5, 5.0, math.pi / 2, 0.7),
        ((9, 3), -0.4, 1.0, 2.5, 1.0, 2.0),
    ],
)
def test_gabor_matches_opencv_formula(size, theta, sigma, lambd, psi, gamma):
    kh, kw = (size, size) if isinstance(size, int) else size
    expected = opencv_gabor((kw, kh), sigma, theta, lambd, gamma, psi)
    ours = K.gabor(size, theta, sigma, lambd, psi, gamma)
    assert ours.shape == (kh, kw)
    np.testing.assert_allclose(ours, expected, atol=1e-14)


def test_gabor_orientation():
    """θ = 0 tunes to vertical stripes (varying along x); θ = π/2 to horizontal ones."""
    stripes = np.cos(2 * np.pi * np.arange(15) / 4.0)
    vertical = np.tile(stripes, (15, 1))
    horizontal = vertical.T

    def energy(image, theta):
        kernel = K.gabor(7, theta, sigma=2.0, lambd=4.0)
        return np.abs(ndimage.correlate(image, kernel, mode="wrap")).mean()

    assert energy(vertical, 0.0) > 10 * energy(horizontal, 0.0)
    assert energy(horizontal, np.pi / 2) > 10 * energy(vertical, np.pi / 2)


def test_gabor_defaults_and_even_sizes():
    assert K.gabor(4).shape == (4, 4)
    np.testing.assert_allclose(K.gabor(4), K.gabor(4)[::-1, ::-1], atol=1e-15)  # even: ψ = 0
    np.testing.assert_allclose(K.gabor(7), K.gabor(7, 0.0, 0.56 * 3.5, 3.5, 0.0, 0.5))


# ---- errors
@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: K.sobel_x(4), "odd"),
        (lambda: K.sobel_y(1), "odd"),
        (lambda: K.prewitt_x((3, 4)), "odd"),
        (lambda: K.laplacian(6), "neighbours"),
        (lambda: K.laplacian(8, 5), "3x3"),
        (lambda: K.gaussian(3, 0.0), "sigma"),
        (lambda: K.box((0, 3)), "size"),
        (lambda: K.gabor(5, lambd=-1.0), "lambd"),
        (lambda: K.laplacian_of_gaussian(5, -1.0), "sigma"),
    ],
)
def test_errors_name_what_was_expected(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# ---- spec parser
@pytest.mark.parametrize(
    "spec, expected",
    [
        ("sobel-x", SOBEL_X),
        ("sobel_y", SOBEL_X.T),
        ("SOBEL-X:5", np.outer([1, 4, 6, 4, 1], [-1, -2, 0, 2, 1])),
        ("box:3", np.full((3, 3), 1 / 9)),
        ("gaussian:7:1.5", K.gaussian(7, 1.5)),
        ("gaussian:7x5", K.gaussian((7, 5))),
        ("gabor:7:0.785", K.gabor(7, 0.785)),
        ("gabor:7:0.785:2:4:1.5:1", K.gabor(7, 0.785, 2.0, 4.0, 1.5, 1.0)),
        ("laplacian", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ("laplacian:8", [[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
        ("log:9:1.4", K.laplacian_of_gaussian(9, 1.4)),
        ("dog:9:1:2", K.difference_of_gaussians(9, 1.0, 2.0)),
        ("scharr-x", K.scharr_x()),
        ("sharpen", K.sharpen()),
    ],
)
def test_get_kernel(spec, expected):
    np.testing.assert_array_equal(K.get_kernel(spec), expected)


def test_every_listed_kernel_parses():
    needs = {"log": ":5:1", "dog": ":5:1:2", "gabor": ":5"}
    for name in K.KERNELS:
        kernel = K.get_kernel(name + needs.get(name, ""))
        assert kernel.ndim == 2 and kernel.dtype == np.float64


@pytest.mark.parametrize(
    "spec, words",
    [
        ("sobel", "expected one of: identity, box, gaussian, sobel-x"),
        ("gaussian:7:wide", "sigma must be a number within ±1,000,000, received 'wide'"),
        ("gaussian:7y5", "size must be a size like 7 or 7x5"),
        ("box:3:3", r"too many parameters; expected box\[:size\]"),
        ("dog:9:1", "missing parameters; expected dog:size:sigma1:sigma2"),
        ("sobel-x:4", "odd"),
        ("gaussian:15000:1", "at most 255"),  # refused before 1.8 GB are allocated
        ("gaussian:7x0", "at most 255"),
        ("gaussian:7:nan", "within ±1,000,000, received 'nan'"),
        ("laplacian:1000000", "whole number in 1..255"),
        ("gaussian:3:1e-300", r"sigma >= 0.001"),  # its square would underflow to a NaN kernel
        ("gabor:5:0:0", r"sigma >= 0.001"),
    ],
)
def test_get_kernel_errors(spec, words):
    with pytest.raises(ValueError, match=words):
        K.get_kernel(spec)


@pytest.mark.parametrize(
    "spec", ["gaussian", "gaussian:7x5:1", "laplacian:4:5", "sharpen", "gabor:9:0.5", "dog:9:1:2"]
)
def test_kernel_spec_size_is_the_built_kernels(spec):
    assert K.kernel_spec_size(spec) == K.get_kernel(spec).shape
