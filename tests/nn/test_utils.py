"""torch.nn.utils's gradient clipping and flat parameter vectors, against torch."""

import math

import numpy as np
import pytest
import torch

import kernelab as kl
from kernelab.core.tensor import Tensor
from kernelab.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(4, 3, 3, 3), (5, 7), (5,)]


def _pair(dtype=np.float64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in SHAPES:
        p = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
        p.grad = Tensor((scale * rng.standard_normal(shape)).astype(dtype))
        q = torch.tensor(p.array.copy(), requires_grad=True)
        q.grad = torch.from_numpy(p.grad.numpy().copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipped, and left alone (scaled by 1.0)
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _pair()
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-12)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_float32_skips_missing_grads_and_accepts_one_tensor():
    ours, theirs = _pair(np.float32, seed=1, scale=10.0)
    ours[1].grad, theirs[1].grad = None, None
    total = clip_grad_norm_(iter(ours), 2.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 2.0)
    assert total.dtype == np.float32 and ours[0].grad.dtype == np.float32
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-6)
    for p, q in [(ours[0], theirs[0]), (ours[2], theirs[2])]:
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-6)
    single = clip_grad_norm_(ours[0], 0.1, norm_type=math.inf)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1, norm_type=math.inf)
    np.testing.assert_allclose(single.array, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours[0].grad, theirs[0].grad.numpy(), rtol=1e-6)


def test_clip_grad_norm_in_place_and_no_grads():
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = Tensor(np.full(3, 4.0))
    grad = p.grad
    clip_grad_norm_([p], 1.0)
    assert p.grad is grad
    np.testing.assert_allclose(np.linalg.norm(grad), 1.0, rtol=1e-5)
    empty = clip_grad_norm_([Tensor(np.zeros(2), requires_grad=True)], 1.0)
    assert float(empty.array) == 0.0


def test_clip_grad_norm_nonfinite():
    ours, theirs = _pair()
    ours[0].grad[0, 0, 0, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    ours[0].grad[0, 0, 0, 0] = np.inf
    theirs[0].grad[0, 0, 0, 0] = math.inf
    total = clip_grad_norm_(ours, 1.0)  # as torch: no error, the grads are scaled by 0
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert float(total.array) == float(expected) == math.inf
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())


@pytest.mark.parametrize("clip_value", [0.1, 1.5])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = _pair()
    ours[2].grad, theirs[2].grad = None, None
    grad = ours[0].grad
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert ours[0].grad is grad
    for p, q in zip(ours[:2], theirs[:2], strict=True):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())


def test_parameters_to_vector_and_back_as_torch():
    from torch.nn.utils import parameters_to_vector as torch_to_vector
    from torch.nn.utils import vector_to_parameters as torch_from_vector

    ours, theirs = _pair(np.float32)
    vector, expected = parameters_to_vector(ours), torch_to_vector(theirs)
    np.testing.assert_array_equal(vector.array, expected.detach().numpy())
    assert vector.grad_fn.name() == expected.grad_fn.name() == "CatBackward0"
    (vector * kl.arange(vector.numel())).sum().backward()  # the gradient reaches each parameter
    (expected * torch.arange(expected.numel())).sum().backward()
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad.array, q.grad.numpy())
    new = np.arange(expected.numel(), dtype=np.float32)
    vector_to_parameters(Tensor(new), ours)
    torch_from_vector(torch.from_numpy(new.copy()), theirs)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.array, q.detach().numpy())
    with pytest.raises(TypeError, match="expected Tensor"):
        vector_to_parameters(new, ours)
    with pytest.raises(RuntimeError, match="too short"):
        vector_to_parameters(Tensor(new[:5]), ours)
