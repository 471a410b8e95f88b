"""The Tensor: construction and dtypes as PyTorch, gradients, comparisons, repr."""

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_construction_follows_pytorch_dtypes():
    assert kl.tensor([1.0, 2.0]).dtype == kl.float32 == torch.tensor([1.0]).numpy().dtype
    assert kl.tensor([1, 2]).dtype == kl.int64
    assert kl.tensor([True]).dtype == kl.bool_
    assert kl.tensor(np.zeros(2)).dtype == kl.float64  # arrays keep theirs
    assert kl.tensor([1.0], dtype=kl.float64).dtype == kl.float64
    kl.set_default_dtype(kl.float64)
    assert kl.tensor([1.0]).dtype == kl.float64
    assert kl.get_default_dtype() == kl.float64


def test_tensor_copies_as_tensor_and_from_numpy_share():
    a = np.zeros(3, np.float32)
    t, shared, fresh = kl.as_tensor(a), kl.from_numpy(a), kl.tensor(a)
    a[0] = 5
    assert t.array[0] == 5 and shared.array[0] == 5 and fresh.array[0] == 0
    assert kl.as_tensor(a, dtype=kl.float64).dtype == kl.float64


def test_attributes():
    x = kl.tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3
    assert x.ndim == 2 == x.dim() and x.numel() == 6 and len(x) == 2
    assert x.device == "cpu" and x.is_leaf and x.grad_fn is None
    assert x[1, 2].item() == 5.0 and x.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.numpy() is x.array


def test_comparisons_and_arg_reductions_match_pytorch_and_carry_no_gradient():
    a = np.random.default_rng(0).integers(0, 4, (3, 4)).astype(np.float64)
    x = kl.Tensor(a, requires_grad=True)
    t = torch.from_numpy(a)
    for ours, theirs in [
        (x == 2, t == 2),
        (x != 2, t != 2),
        (x < 2, t < 2),
        (x <= 2, t <= 2),
        (x > 2, t > 2),
        (x >= 2, t >= 2),
    ]:
        assert not ours.requires_grad
        np.testing.assert_array_equal(ours.array, theirs.numpy())
    np.testing.assert_array_equal(x.argmax(1).array, t.argmax(1).numpy())
    np.testing.assert_array_equal(x.argmin(0, keepdim=True).array, t.argmin(0, True).numpy())
    assert x.argmax().item() == t.argmax().item()
    assert x.argmax().dtype == kl.int64


def test_numpy_array_on_the_left_defers_to_the_tensor():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], np.float32) * x
    assert isinstance(y, kl.Tensor) and y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_backward_needs_a_scalar_or_a_gradient():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        kl.tensor([1.0]).backward()
    (x * 2).backward(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 6.0])
    assert x.grad.dtype == np.float32


def test_gradients_accumulate_until_cleared():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [2 + 3, 4 + 3])
    x.grad = None
    x.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 1])


def test_detach_shares_values_but_not_the_graph():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = x.detach()
    z.array[0] = 7
    assert x.array[0] == 7
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_leaf_gradient_hook_runs_after_each_accumulation():
    x = kl.tensor([1.0], requires_grad=True)
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.clone()))
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert [s.tolist() for s in seen] == [[2.0], [5.0]]


def test_repr_reads_like_pytorch():
    assert repr(kl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(kl.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(kl.tensor([1.0], dtype=kl.float64)) == "tensor([1.], dtype=kernelab.float64)"
    x = kl.tensor([1.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2.], grad_fn=<MulBackward0>)"
    assert repr(kl.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(torch.tensor([1.0, 2.0])) == repr(kl.tensor([1.0, 2.0]))


def test_a_numpy_scalar_keeps_its_dtype_as_in_pytorch():
    for value in (np.float64(2.0), np.float32(2.0), np.int32(3), 2.0, [1.0], 3):
        assert str(kl.tensor(value).dtype) == str(torch.tensor(value).dtype).removeprefix("torch.")
