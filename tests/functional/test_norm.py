"""batch_norm: gradients against central differences, values and running statistics against
PyTorch, in training and evaluation."""

import math

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.core.errors import ShapeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 3, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(shape, affine, training):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 1
    mean, var = rng.standard_normal(c), rng.random(c) + 0.5
    inputs = [x] + ([rng.standard_normal(c) + 1, rng.standard_normal(c)] if affine else [])

    def fn(x, w=None, b=None):
        # Fresh running statistics per call: in training they are updated in place.
        return F.batch_norm(x, mean.copy(), var.copy(), w, b, training, 0.1, 1e-5)

    check_gradients(fn, inputs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    n=st.integers(2, 5),
    c=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.sampled_from([0.1, 0.5, 1.0, 0.0]),
    seed=st.integers(0, 2**16),
)
def test_matches_pytorch(dtype, n, c, spatial, training, affine, momentum, seed):
    # The input gradient is g projected off the constants and x̂: with few values per channel
    # little is left of it (with 2, y = ±1 and nothing), and rounding decides its digits.
    n = max(n, math.ceil(8 / math.prod(spatial)))  # at least 8 values per channel
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c) + spatial) * 3 + 2).astype(dtype)
    params = [rng.standard_normal(c).astype(dtype) for _ in range(2)] if affine else []
    mean, var = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    ours_stats, torch_stats = (mean.copy(), var.copy()), tuple(map(torch.tensor, (mean, var)))

    ours = [kl.Tensor(a.copy(), requires_grad=True) for a in [x] + params]
    theirs = [torch.tensor(a, requires_grad=True) for a in [x] + params]
    settings = {"training": training, "momentum": momentum, "eps": 1e-5}
    y = F.batch_norm(ours[0], *ours_stats, *ours[1:], **settings)
    ty = torch.nn.functional.batch_norm(theirs[0], *torch_stats, *theirs[1:], **settings)
    assert y.dtype == dtype
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    for what, a, t in zip(("running mean", "running var"), ours_stats, torch_stats, strict=True):
        assert a.dtype == dtype
        assert_rel_close(a, t.numpy(), TOL[dtype], what)
    # Upstream gradient: positive (the bias gradient sums it) plus x̂ itself (the weight
    # gradient is Σ g·x̂, and x̂ sums to 0): neither can cancel to far below its terms, where
    # float32 rounding alone would decide the digits.
    axes = (0,) + tuple(range(2, x.ndim))
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)
    gy = (rng.uniform(0.5, 2.0, x.shape) + x_hat).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for what, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=False):
        assert a.grad.dtype == dtype
        assert_rel_close(a.grad, t.grad.numpy(), TOL[dtype], f"grad {what}")


def test_training_without_running_statistics_matches_pytorch():
    x = np.random.default_rng(1).standard_normal((5, 3, 2, 2))
    y = F.batch_norm(kl.Tensor(x), None, None, training=True)
    t = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)
    assert_rel_close(y.array, t.numpy(), 1e-12, "output")


def test_rejects_bad_input():
    stats = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(kl.Tensor(np.zeros((1, 3))), *stats, training=True)
    with pytest.raises(ShapeError, match=r"expected input \(N, C, \.\.\.\), got shape \(3,\)"):
        F.batch_norm(kl.Tensor(np.zeros(3)), *stats)
    with pytest.raises(ValueError, match="evaluation needs running_mean"):
        F.batch_norm(kl.Tensor(np.zeros((2, 3))), None, None, training=False)
