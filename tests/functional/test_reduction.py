"""amax, max, var, std, norm, argsort and all: values and gradients against PyTorch."""

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Each reduction of a (3, 4) tensor holding ties, written the same way for kernelab (lib = kl)
# and PyTorch (lib = torch).
OPS = {
    "amax": lambda lib, a: lib.amax(a, 1),
    "amax_all": lambda lib, a: lib.amax(a, (0, 1)),
    "max_dim": lambda lib, a: lib.max(a, 0).values,
    "var": lambda lib, a: lib.var(a, 1),
    "var_biased": lambda lib, a: lib.var(a, 0, unbiased=False),
    "var_correction": lambda lib, a: lib.var(a, 1, correction=2),
    "std": lambda lib, a: lib.std(a, 0, keepdim=True),
    "norm": lambda lib, a: a.norm(),
    "norm_inf": lambda lib, a: a.norm(float("inf")),
    "norm_inf_dim": lambda lib, a: a.norm(float("inf"), dim=1),
    "norm_dim": lambda lib, a: a.norm(2, dim=1, keepdim=True),
    "norm_1": lambda lib, a: a.norm(1, dim=0),
}


def ties():
    a = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    a[0, 1] = a[0, 3] = 2.0  # a tie for the row's and the whole tensor's maximum
    a[2, 0] = -3.0  # the largest magnitude
    return a


@pytest.mark.parametrize("name", list(OPS))
def test_values_and_gradients_match_pytorch(name):
    a = ties()
    ours, theirs = kl.Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = OPS[name](kl, ours), OPS[name](torch, theirs)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(np.asarray(ours.grad), theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.float64])
def test_argsort_descending_matches_pytorch(dtype):
    x = np.array([[1, 0, 2, 0, 1], [0, 0, 1, 1, 2]]).astype(dtype)
    ours = kl.argsort(kl.Tensor(x), descending=True, stable=True)
    theirs = torch.argsort(torch.from_numpy(x), descending=True, stable=True)
    np.testing.assert_array_equal(ours.array, theirs.numpy())


def test_all_and_any_match_pytorch():
    x = np.array([[1.0, 0.0, 2.0], [3.0, 1.0, 4.0]])
    for fn in ("all", "any"):
        for dim in (None, 1):
            args = () if dim is None else (dim,)
            ours = getattr(kl, fn)(kl.Tensor(x), *args)
            theirs = getattr(torch, fn)(torch.from_numpy(x), *args)
            np.testing.assert_array_equal(ours.array, theirs.numpy())
