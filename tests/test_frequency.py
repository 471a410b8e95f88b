"""kernelab.kernels.frequency: the DFT magnitude against a naive DFT, and the frequency classes."""

import math

import numpy as np
import pytest

from kernelab.kernels import designed as K
from kernelab.kernels.frequency import (
    CLASSES,
    classify,
    classify_layer,
    describe,
    frequency_response,
    frequency_table,
)


def naive_magnitude(kernel, size):
    """|Σ w[p, q] e^{-2πi(u p + v q)/size}| with u, v from -size//2, DC in the middle."""
    out = np.zeros((size, size))
    freqs = np.arange(size) - size // 2
    for i, u in enumerate(freqs):
        for j, v in enumerate(freqs):
            total = 0j
            for (p, q), w in np.ndenumerate(kernel):
                total += w * np.exp(-2j * np.pi * (u * p + v * q) / size)
            out[i, j] = abs(total)
    return out


@pytest.mark.parametrize("shape, size", [((3, 3), 8), ((2, 5), 9), ((4, 4), 4), ((1, 1), 5)])
def test_response_matches_naive_dft(shape, size):
    kernel = np.random.default_rng(0).normal(size=shape)
    response = frequency_response(kernel, size)
    assert response.shape == (size, size)
    np.testing.assert_allclose(response, naive_magnitude(kernel, size), atol=1e-12)
    assert response[size // 2, size // 2] == pytest.approx(abs(kernel.sum()))


def test_deep_kernel_is_root_sum_of_squares():
    deep = np.random.default_rng(1).normal(size=(3, 5, 5))
    expected = np.sqrt(sum(frequency_response(k, 16) ** 2 for k in deep))
    np.testing.assert_allclose(frequency_response(deep, 16), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        frequency_response(np.ones((5, 5)), size=4)
    with pytest.raises(ValueError, match="kernel"):
        frequency_response(np.ones(5))


def cross_derivative(size):
    d = K._derivative(size)
    return np.outer(d, d)


LOW = (
    [K.box(k) for k in (2, 3, 4, 5, 7, 9)]
    + [K.gaussian(k) for k in (3, 4, 5, 7, 9, 11)]
    + [K.gaussian(7, 1.5), K.gaussian(9, 2.0), K.gaussian((5, 9), (1.0, 2.0))]
)
HIGH = [
    K.laplacian(4),
    K.laplacian(8),
    cross_derivative(3),
    K.sharpen(),
    *(K.identity(k) - K.box(k) for k in (3, 5, 7)),
    *(K.identity(k) - K.gaussian(k) for k in (3, 5, 7, 9)),
]
BAND = [
    *(K.gabor(k, theta) for k in (7, 9, 11, 15, 21) for theta in (0, math.pi / 4, math.pi / 2)),
    *(K.gabor(k, 0.5, psi=math.pi / 2) for k in (7, 11, 15)),
    *(K.difference_of_gaussians(k, k / 6, 1.6 * k / 6) for k in (5, 7, 9, 11, 15)),
    K.difference_of_gaussians(9, 1, 2),
    K.laplacian_of_gaussian(9, 1.4),
    *(K.sobel_x(k) for k in (3, 5, 7)),
    *(K.sobel_y(k) for k in (3, 5, 7)),
    K.scharr_x(),
    K.prewitt_x(3),
]
ALL = [K.identity(k) for k in (1, 2, 3, 4, 5)] + [K.gaussian(3, 0.3), np.roll(K.identity(5), 1)]


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize(
    "kernels, kind",
    [(LOW, "low-pass"), (HIGH, "high-pass"), (BAND, "band-pass"), (ALL, "all-pass/other")],
)
def test_classes(kernels, kind, size):
    found = [classify(k, size) for k in kernels]
    wrong = [(i, f) for i, f in enumerate(found) if f != kind]
    assert not wrong, f"expected {kind}: (index, class) {wrong}"


def test_sobel_x_is_band_pass_not_high_pass():
    # The documented decision: a smoothed derivative blocks DC and Nyquist alike.
    stats = describe(frequency_response(K.sobel_x(), 32))
    assert stats.dc_gain == 0 and stats.centroid < 2 / 3
    assert classify(K.sobel_x()) == classify(-K.sobel_x()) == "band-pass"


def test_random_and_degenerate_kernels_do_not_crash():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 7), (2, 2), (3, 3), (5, 5), (4, 6), (11, 11)]:
        for _ in range(5):
            kernel = rng.normal(size=shape) * rng.choice([1e-8, 1.0, 1e6])
            assert classify(kernel) in CLASSES
    assert classify(np.zeros((3, 3))) == "all-pass/other"
    assert classify(np.full((3, 3), np.float32(1.0))) == "low-pass"


def test_frequency_table_counts_and_lists_kernels():
    bank = [
        K.gaussian(5),
        K.laplacian(4, 5) * 0,
        K.laplacian(8, 3),
        K.box(3),
        K.sobel_x(),
        K.identity(3),
    ]
    weight = np.stack([np.pad(k, ((0, 5 - len(k)), (0, 5 - len(k)))) for k in bank])[:, None]
    assert [r.kind for r in classify_layer(weight)] == [
        "low-pass",
        "all-pass/other",
        "high-pass",
        "low-pass",
        "band-pass",
        "all-pass/other",
    ]
    table = frequency_table(weight)
    assert "| low-pass | 2 | 0, 3 |" in table
    assert "| high-pass | 1 | 2 |" in table
    assert "| band-pass | 1 | 4 |" in table
    assert "| all-pass/other | 2 | 1, 5 |" in table
    assert table.count("\n| ") >= 4 + 6
    ranges = frequency_table(np.stack([K.box(3)] * 4 + [K.laplacian()])[:, None], details=False)
    assert "| low-pass | 4 | 0–3 |" in ranges and "kernel |" not in ranges
    with pytest.raises(ValueError, match="C_out"):
        frequency_table(np.ones((3, 3)))
