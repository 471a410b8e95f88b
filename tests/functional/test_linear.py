"""linear: gradients against central differences, values against PyTorch, clear errors."""

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


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_match_finite_differences(batch, bias):
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(batch + (5,)), rng.standard_normal((3, 5))]
    if bias:
        inputs.append(rng.standard_normal(3))
    check_gradients(lambda x, w, b=None: F.linear(x, w, b), inputs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    batch=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    in_features=st.integers(1, 12),
    out_features=st.integers(1, 12),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_pytorch(dtype, batch, in_features, out_features, bias, seed):
    rng = np.random.default_rng(seed)
    arrays = [
        rng.standard_normal(batch + (in_features,)).astype(dtype),
        rng.standard_normal((out_features, in_features)).astype(dtype),
    ]
    if bias:
        arrays.append(rng.standard_normal(out_features).astype(dtype))
    ours = [kl.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = F.linear(*ours), torch.nn.functional.linear(*theirs)
    assert y.dtype == dtype
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    gy = rng.uniform(0.5, 2.0, ty.shape).astype(dtype)  # no cancelling sum for the bias
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=False):
        assert a.grad.dtype == dtype
        assert_rel_close(a.grad, t.grad.numpy(), TOL[dtype], f"grad {name}")


def test_rejects_the_wrong_number_of_features():
    w = kl.Tensor(np.zeros((10, 3136), np.float32))
    with pytest.raises(
        ShapeError, match=r"expected input with 3136 features.*got shape \(8, 3200\)"
    ):
        F.linear(kl.Tensor(np.zeros((8, 3200), np.float32)), w)


def test_rejects_a_dtype_mix():
    w = kl.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="input dtype float64 differs from weight dtype float32"):
        F.linear(kl.Tensor(np.zeros((4, 3))), w)
    with pytest.raises(TypeError, match="bias dtype float64 differs from weight dtype float32"):
        F.linear(kl.Tensor(np.zeros((4, 3), np.float32)), w, kl.Tensor(np.zeros(2)))
