"""reshape, flatten, transpose, permute, squeeze, cat, stack, expand, repeat and indexing:
gradients against central differences, values and gradients against PyTorch."""

import numpy as np
import pytest
import torch
from gradcheck import check_gradients

import kernelab as kl
import kernelab.functional as F
from kernelab.core.errors import ShapeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE_OPS = {
    "reshape": (lambda t: t.reshape(4, -1), lambda t: t.reshape(4, -1)),
    "reshape_tuple": (lambda t: t.reshape((3, 2, 4)), lambda t: t.reshape((3, 2, 4))),
    "view": (lambda t: t.view(24), lambda t: t.view(24)),
    "flatten": (lambda t: F.flatten(t), lambda t: torch.flatten(t)),
    "flatten_1": (lambda t: t.flatten(1), lambda t: t.flatten(1)),
    "flatten_0_1": (lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
    "transpose": (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
    "transpose_neg": (lambda t: t.transpose(-1, 1), lambda t: t.transpose(-1, 1)),
    "permute": (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "permute_tuple": (lambda t: t.permute((1, -1, 0)), lambda t: t.permute((1, -1, 0))),
    "T": (lambda t: t.reshape(6, 4).T, lambda t: t.reshape(6, 4).T),
    "squeeze": (
        lambda t: t.reshape(2, 1, 3, 4).squeeze(1),
        lambda t: t.reshape(2, 1, 3, 4).squeeze(1),
    ),
    "unsqueeze": (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
    "unsqueeze_neg": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "cat": (lambda t: kl.cat([t, t * 2], 2), lambda t: torch.cat([t, t * 2], 2)),
    "stack": (lambda t: kl.stack([t, t * 2], 1), lambda t: torch.stack([t, t * 2], 1)),
    "expand": (lambda t: t[:, :1].expand(-1, 3, 4), lambda t: t[:, :1].expand(-1, 3, 4)),
    "repeat": (lambda t: t.repeat(2, 1, 1, 2), lambda t: t.repeat(2, 1, 1, 2)),
}

# Each index applied to a (2, 3, 4) tensor, the same way in kernelab and PyTorch.
INDICES = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(None, 1),
    "step_slices": (slice(None), slice(None, None, 2), slice(1, None, 2)),
    "ellipsis": (Ellipsis, 2),
    "none": (None, 0, slice(1, 3)),
    "int_and_slice": (1, slice(1, 3), 0),
    "int_list": [1, 0],
    "repeated": [0, 0, 1, 0],
    "repeated_inner": (slice(None), [2, 2, 0]),
    "pairs": ([0, 1, 1], [2, 0, 2]),
    "pairs_repeated": ([1, 1, 1], [0, 0, 2], [3, 3, 3]),
    "array_2d": np.array([[0, 1], [1, 1]]),
    "bool_mask": np.array([True, False, True]).reshape(1, 3).repeat(2, 0),
    "bool_axis": (slice(None), np.array([False, True, True])),
    "mixed": (slice(None), [0, 2, 2], slice(1, 3)),
}


def torch_index(index):
    if isinstance(index, tuple):
        return tuple(torch_index(i) for i in index)
    if isinstance(index, (list, np.ndarray)):
        return torch.from_numpy(np.asarray(index))
    return index


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_op_gradients_and_parity(name):
    ours_fn, torch_fn = SHAPE_OPS[name]
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    check_gradients(ours_fn, [x])
    compare(ours_fn, torch_fn, x)


@pytest.mark.parametrize("name", list(INDICES))
def test_indexing_gradients_and_parity(name):
    index = INDICES[name]
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    check_gradients(lambda t: t[index], [x])
    compare(lambda t: t[index], lambda t: t[torch_index(index)], x)


def test_tensor_indices():
    x = kl.Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x[x > 5.5]
    np.testing.assert_array_equal(y.array, np.arange(6.0, 12.0))
    rows = kl.tensor([2, 2, 0])
    (y.sum() + x[rows].sum()).backward()
    expected = (np.arange(12).reshape(3, 4) > 5.5).astype(float)
    expected[2] += 2
    expected[0] += 1
    np.testing.assert_array_equal(x.grad, expected)


def compare(ours_fn, torch_fn, x, seed=2):
    for dtype in (np.float64, np.float32):
        a = x.astype(dtype)
        ours = kl.Tensor(a.copy(), requires_grad=True)
        theirs = torch.tensor(a, requires_grad=True)
        y, ty = ours_fn(ours), torch_fn(theirs)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.array, ty.detach().numpy())
        gy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        assert ours.grad.dtype == dtype
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-6, atol=0)


def test_errors_name_the_shapes():
    x = kl.Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ShapeError, match=r"reshape: cannot view shape \(2, 3, 4\) as \(5, -1\)"):
        x.reshape(5, -1)
    with pytest.raises(ShapeError, match=r"permute: \(0, 0, 1\) is not an ordering"):
        x.permute(0, 0, 1)
