"""clamp, where, maximum, minimum, masked_fill and the comparisons: values and gradients
against PyTorch, gradients against central differences."""

import numpy as np
import pytest
import torch
from gradcheck import check_gradients

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Each op on two (3, 4) tensors a and b, written the same way for kernelab (lib = kl) and
# PyTorch (lib = torch). a holds the clamp bounds ±0.5 exactly: their gradient passes.
OPS = {
    "clamp": lambda lib, a, b: a.clamp(-0.5, 0.5),
    "clamp_min": lambda lib, a, b: a.clamp(min=-0.2),
    "clamp_max": lambda lib, a, b: lib.clamp(a, max=0.3),
    "where": lambda lib, a, b: lib.where(a > b, a, b * 2),
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "minimum": lambda lib, a, b: lib.minimum(a, b),
    "masked_fill": lambda lib, a, b: a.masked_fill(b > 0, 1.5),
}
COMPARISONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def operands():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (2, 3, 4))
    a[0, :2] = -0.5, 0.5  # on the clamp bounds
    b[1] = a[1]  # ties
    return a, b


@pytest.mark.parametrize("name", list(OPS))
def test_values_and_gradients_match_pytorch(name):
    op = OPS[name]
    a, b = operands()
    ours = [kl.Tensor(x.copy(), requires_grad=True) for x in (a, b)]
    theirs = [torch.tensor(x, requires_grad=True) for x in (a, b)]
    y, ty = op(kl, *ours), op(torch, *theirs)
    np.testing.assert_array_equal(y.array, ty.detach().numpy())
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for mine, torchs in zip(ours, theirs, strict=True):
        expected = np.zeros_like(gy) if torchs.grad is None else torchs.grad.numpy()
        got = np.zeros_like(gy) if mine.grad is None else np.asarray(mine.grad)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["clamp", "where", "maximum"])
def test_gradients_match_finite_differences(name):
    a, b = operands()
    a[0, :2] = -0.6, 0.4  # away from the kinks, where the derivative is one-sided
    b[1] += 0.1
    if name == "clamp":  # the bounds are constants: a is the only input
        check_gradients(lambda x: OPS[name](kl, x, None), [a])
    else:
        check_gradients(lambda x, y: OPS[name](kl, x, y), [a, b])


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_comparisons_match_pytorch(name):
    a, b = operands()
    y = COMPARISONS[name](kl.Tensor(a), kl.Tensor(b))
    t = COMPARISONS[name](torch.from_numpy(a), torch.from_numpy(b))
    assert y.dtype == kl.bool
    np.testing.assert_array_equal(y.array, t.numpy())


def test_where_refuses_a_float_condition_as_pytorch_does():
    a, b = operands()
    with pytest.raises(RuntimeError):
        torch.where(torch.from_numpy(a), torch.from_numpy(a), torch.from_numpy(b))
    with pytest.raises(RuntimeError, match="where"):
        kl.where(kl.Tensor(a), kl.Tensor(a), kl.Tensor(b))
