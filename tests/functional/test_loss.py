"""Losses: gradients against central differences, values and gradients against PyTorch."""

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


def ce_case(shape, seed=0, probabilities=False, ignore=None, scale=2.0):
    """Logits of ``shape`` (N, C, ...) and targets: class indices or probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape) * scale
    if probabilities:
        target = rng.random(shape)
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
        if ignore is not None:
            target.flat[::3] = ignore
    return logits, target


CE_CASES = [
    # shape, keyword arguments, probability targets
    ((4, 3), {}, False),
    ((4, 3), {"reduction": "sum"}, False),
    ((4, 3), {"reduction": "none"}, False),
    ((5, 4), {"weight": [0.2, 1.0, 3.0, 0.5]}, False),
    ((5, 4), {"weight": [0.2, 1.0, 3.0, 0.5], "reduction": "sum"}, False),
    ((6, 3), {"ignore_index": -100}, "ignore"),
    ((6, 3), {"ignore_index": 1, "weight": [1.0, 2.0, 0.5]}, "ignore"),
    ((4, 5), {"label_smoothing": 0.1}, False),
    ((4, 5), {"label_smoothing": 0.3, "weight": [1.0, 2.0, 0.5, 1.5, 1.0]}, False),
    ((6, 3), {"label_smoothing": 0.2, "ignore_index": 0, "reduction": "none"}, "ignore"),
    ((3, 4), {}, True),
    ((3, 4), {"label_smoothing": 0.25, "weight": [1.0, 2.0, 0.5, 1.5]}, True),
    ((3, 4), {"reduction": "sum"}, True),
    ((2, 3, 3, 2), {}, False),
    ((2, 3, 2, 3), {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}, False),
    ((2, 3, 2, 2), {"reduction": "none"}, True),
    ((2, 4, 3), {"ignore_index": 2}, "ignore"),
]


def make_target(shape, kwargs, kind, seed=0):
    if kind == "ignore":
        return ce_case(shape, seed, ignore=kwargs.get("ignore_index", -100))
    return ce_case(shape, seed, probabilities=kind)


@pytest.mark.parametrize("shape, kwargs, kind", CE_CASES)
def test_cross_entropy_gradient(shape, kwargs, kind):
    logits, target = make_target(shape, kwargs, kind)
    check_gradients(lambda x: F.cross_entropy(x, kl.Tensor(target), **kwargs), [logits])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kwargs, kind", CE_CASES)
def test_cross_entropy_matches_pytorch(shape, kwargs, kind, dtype):
    logits, target = make_target(shape, kwargs, kind, seed=1)
    logits = logits.astype(dtype)
    if kind is True:
        target = target.astype(dtype)
    torch_kwargs = dict(kwargs)
    if "weight" in kwargs:
        torch_kwargs["weight"] = torch.tensor(kwargs["weight"], dtype=logits_dtype(dtype))
    compare(
        lambda x: F.cross_entropy(x, kl.Tensor(target), **kwargs),
        lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(target), **torch_kwargs),
        logits,
    )


def logits_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def compare(ours_fn, torch_fn, x, seed=0):
    dtype = x.dtype.type
    ours = kl.Tensor(x.copy(), requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, ty = ours_fn(ours), torch_fn(theirs)
    assert y.dtype == x.dtype and y.shape == tuple(ty.shape)
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "loss")
    gy = np.random.default_rng(seed).standard_normal(ty.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert ours.grad.dtype == x.dtype
    assert_rel_close(ours.grad, theirs.grad.numpy(), TOL[dtype], "gradient")


@st.composite
def ce_configs(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    kwargs = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.1, 0.35])),
    }
    if draw(st.booleans()):
        kwargs["weight"] = draw(st.lists(st.floats(0.1, 3.0), min_size=c, max_size=c))
    probabilities = draw(st.booleans())
    ignore = None
    if not probabilities and draw(st.booleans()):
        ignore = draw(st.sampled_from([-100, 0, c - 1]))
        kwargs["ignore_index"] = ignore
    return (n, c) + spatial, kwargs, probabilities, ignore, draw(st.integers(0, 2**16))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(config=ce_configs())
def test_cross_entropy_matches_pytorch_randomized(dtype, config):
    shape, kwargs, probabilities, ignore, seed = config
    # Logits of scale 1: a near-certain prediction's gradient p − 1 cancels to ~1e-4 and
    # float32 rounding of p alone then decides its leading digits (in PyTorch too).
    logits, target = ce_case(shape, seed, probabilities, ignore, scale=1.0)
    logits = logits.astype(dtype)
    if probabilities:
        target = target.astype(dtype)
    elif ignore is not None and kwargs["reduction"] == "mean" and (target == ignore).all():
        return  # every target ignored: 0/0, NaN in both (checked below)
    torch_kwargs = dict(kwargs)
    if "weight" in kwargs:
        torch_kwargs["weight"] = torch.tensor(kwargs["weight"], dtype=logits_dtype(dtype))
    compare(
        lambda x: F.cross_entropy(x, kl.Tensor(target), **kwargs),
        lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(target), **torch_kwargs),
        logits,
        seed,
    )


def test_cross_entropy_with_every_target_ignored_is_nan_like_pytorch():
    logits = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, -100)
    ours = F.cross_entropy(kl.Tensor(logits), kl.Tensor(target)).item()
    theirs = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))
    assert np.isnan(ours) and torch.isnan(theirs)


NLL_CASES = [
    ((4, 3), {}),
    ((4, 3), {"reduction": "sum"}),
    ((5, 4), {"weight": [0.2, 1.0, 3.0, 0.5], "reduction": "none"}),
    ((6, 3), {"ignore_index": 2, "weight": [1.0, 2.0, 0.5]}),
    ((2, 3, 2, 2), {}),
]


@pytest.mark.parametrize("shape, kwargs", NLL_CASES)
def test_nll_loss_gradient_and_parity(shape, kwargs):
    logits, target = ce_case(shape, seed=2, ignore=kwargs.get("ignore_index"))
    logp = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    check_gradients(lambda x: F.nll_loss(x, kl.Tensor(target), **kwargs), [logp])
    torch_kwargs = dict(kwargs)
    if "weight" in kwargs:
        torch_kwargs["weight"] = torch.tensor(kwargs["weight"], dtype=torch.float64)
    compare(
        lambda x: F.nll_loss(x, kl.Tensor(target), **kwargs),
        lambda x: torch.nn.functional.nll_loss(x, torch.from_numpy(target), **torch_kwargs),
        logp,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 2, 3, 2)])
def test_mse_loss_gradient_and_parity(shape, reduction):
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    # Both arguments are differentiable, as in PyTorch.
    check_gradients(lambda a, b: F.mse_loss(a, b, reduction), [x, t])
    for dtype in (np.float64, np.float32):
        target = t.astype(dtype)
        compare(
            lambda a, target=target: F.mse_loss(a, kl.Tensor(target), reduction),
            lambda a, target=target: torch.nn.functional.mse_loss(
                a, torch.from_numpy(target), reduction=reduction
            ),
            x.astype(dtype),
        )


def test_rejects_a_target_out_of_range():
    logits = kl.Tensor(np.zeros((3, 10), np.float32))
    with pytest.raises(
        IndexError, match=r"target 10 is out of range: expected class indices in \[0, 10\)"
    ):
        F.cross_entropy(logits, kl.Tensor(np.array([1, 10, 2])))
    with pytest.raises(IndexError, match=r"target -1 is out of range"):
        F.nll_loss(logits, kl.Tensor(np.array([1, -1, 2])))


def test_rejects_targets_of_the_wrong_shape():
    logits = kl.Tensor(np.zeros((3, 10), np.float32))
    with pytest.raises(
        ShapeError, match=r"expected class-index targets of shape \(3,\).*got \(4,\)"
    ):
        F.cross_entropy(logits, kl.Tensor(np.zeros(4, np.int64)))
    with pytest.raises(ShapeError, match=r"expected probability targets of shape \(3, 10\)"):
        F.cross_entropy(logits, kl.Tensor(np.zeros((3, 9), np.float32)))
    with pytest.raises(ShapeError, match=r"expected a class weight of shape \(10,\), got \(3,\)"):
        F.cross_entropy(logits, kl.Tensor(np.zeros(3, np.int64)), weight=np.ones(3))
    with pytest.raises(ShapeError, match=r"expected a target of the input's shape \(3, 10\)"):
        F.mse_loss(logits, kl.Tensor(np.zeros((10, 3), np.float32)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(logits, kl.Tensor(np.zeros(3, np.int64)), reduction="avg")
