"""Activations and softmax: gradients against central differences, values against PyTorch."""

import warnings

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernelab as kl
import kernelab.functional as F

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def away_from_zero(shape, seed=0):
    """Normal values pushed at least 0.05 from 0, where relu and leaky_relu have a kink."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + np.sign(x) * 0.05


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2)])
def test_relu_gradient(shape):
    check_gradients(F.relu, [away_from_zero(shape)])


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5, 1.5])
def test_leaky_relu_gradient(slope):
    check_gradients(lambda x: F.leaky_relu(x, slope), [away_from_zero((3, 5))])


@pytest.mark.parametrize("fn", [F.sigmoid, F.tanh], ids=["sigmoid", "tanh"])
@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_sigmoid_and_tanh_gradients(fn, scale):
    x = np.random.default_rng(1).standard_normal((2, 3, 3)) * scale
    check_gradients(fn, [x])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 2, 2), -3)])
def test_softmax_gradients(fn, shape, dim):
    x = np.random.default_rng(2).standard_normal(shape) * 2
    check_gradients(lambda t: fn(t, dim=dim), [x])


ACTIVATIONS = {
    "relu": (F.relu, torch.relu),
    "leaky_relu": (
        lambda t: F.leaky_relu(t, 0.1),
        lambda t: torch.nn.functional.leaky_relu(t, 0.1),
    ),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softmax_last": (lambda t: F.softmax(t, dim=-1), lambda t: torch.softmax(t, dim=-1)),
    "softmax_first": (lambda t: F.softmax(t, dim=0), lambda t: torch.softmax(t, dim=0)),
    "log_softmax": (
        lambda t: F.log_softmax(t, dim=-1),
        lambda t: torch.log_softmax(t, dim=-1),
    ),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
        elements=st.floats(-1, 1),
    ),
    seed=st.integers(0, 2**16),
)
def test_matches_pytorch(dtype, x, seed):
    gy = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
    for name, (ours_fn, torch_fn) in ACTIVATIONS.items():
        # Saturated gradients (1 − y² or s·(g − Σ g·s) near 0) cancel to a few ulps of
        # y, so they are compared where they are not saturated; see test_extreme_logits.
        scaled = (x * 3).astype(dtype)
        ours = kl.Tensor(scaled.copy(), requires_grad=True)
        theirs = torch.tensor(scaled, requires_grad=True)
        y, ty = ours_fn(ours), torch_fn(theirs)
        assert y.dtype == dtype
        assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], f"{name} output")
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        assert ours.grad.dtype == dtype
        assert_rel_close(ours.grad, theirs.grad.numpy(), TOL[dtype], f"{name} gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_logits_stay_finite_and_quiet(dtype):
    x = np.array([[-1000.0, 0.0, 1000.0], [88.0, 89.0, -104.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or divide warnings
        s = F.sigmoid(kl.Tensor(x)).array
        p = F.softmax(kl.Tensor(x), dim=1).array
        logp = F.log_softmax(kl.Tensor(x), dim=1).array
    ts = torch.sigmoid(torch.from_numpy(x)).numpy()
    assert_rel_close(s, ts, TOL[dtype], "sigmoid")
    assert_rel_close(p, torch.softmax(torch.from_numpy(x), 1).numpy(), TOL[dtype], "softmax")
    assert np.isfinite(logp).all()
    assert_rel_close(logp, torch.log_softmax(torch.from_numpy(x), 1).numpy(), TOL[dtype], "log")
