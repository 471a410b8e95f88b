"""Dropout: what it keeps and scales, its gradient through a fixed mask, reproducibility."""

import numpy as np
import pytest
from gradcheck import check_gradients

import kernelab as kl
import kernelab.functional as F


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_gradient_through_a_fixed_mask(p):
    # A seed (not a Generator) gives the same mask on every call, so the function is fixed.
    x = np.random.default_rng(0).standard_normal((4, 6))
    check_gradients(lambda t: F.dropout(t, p, generator=123), [x])
    check_gradients(lambda t: F.dropout2d(t, p, generator=7), [x.reshape(2, 3, 2, 2)])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_a_fraction_one_minus_p_scaled_by_its_inverse(p, dtype):
    x = np.random.default_rng(1).random((200, 100)).astype(dtype) + 1  # no zeros of its own
    y = F.dropout(kl.Tensor(x), p, generator=2).array
    assert y.dtype == dtype
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    # The kept fraction is Binomial(20000, 1 − p)/20000: within 5 standard deviations.
    sd = np.sqrt(p * (1 - p) / x.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sd
    # Unbiased: the expected output is the input.
    assert abs(y.mean() / x.mean() - 1) < 0.05


def test_dropout2d_drops_whole_feature_maps():
    x = np.ones((8, 16, 3, 3), np.float32)
    y = F.dropout2d(kl.Tensor(x), 0.5, generator=3).array
    per_map = y.reshape(8, 16, 9)
    assert ((per_map == 0).all(axis=2) | (per_map == 2).all(axis=2)).all()
    assert 0 < (per_map == 0).all(axis=2).sum() < 8 * 16


def test_evaluation_p0_and_p1():
    x = kl.Tensor(np.random.default_rng(4).standard_normal((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.array, 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


def test_masks_are_reproducible_from_a_seed():
    x = kl.Tensor(np.ones((10, 10)))
    a = F.dropout(x, 0.5, generator=np.random.default_rng(5)).array
    b = F.dropout(x, 0.5, generator=np.random.default_rng(5)).array
    np.testing.assert_array_equal(a, b)
    kl.manual_seed(6)
    c = F.dropout(x, 0.5).array
    d = F.dropout(x, 0.5).array  # the default generator moved on
    kl.manual_seed(6)
    np.testing.assert_array_equal(F.dropout(x, 0.5).array, c)
    assert not np.array_equal(c, d)


def test_gradient_is_the_mask():
    x = kl.Tensor(np.random.default_rng(7).standard_normal((5, 5)), requires_grad=True)
    y = F.dropout(x, 0.3, generator=8)
    y.backward(np.ones((5, 5)))
    np.testing.assert_array_equal(x.grad, np.where(y.array != 0, 1 / 0.7, 0.0))
