"""The compiled cross-entropy (class indices) against the NumPy reference and PyTorch."""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


@pytest.fixture(autouse=True)
def _on_both_kernel_paths():
    """Each test here runs both paths itself, side by side."""
    yield


def run_ours(path, logits, target, options):
    x = kl.Tensor(logits, requires_grad=True)
    with kl.backends.kernels.using(path):
        loss = F.cross_entropy(x, target, **options)
        upstream = np.linspace(0.5, 1.5, loss.array.size).reshape(loss.array.shape)
        loss.backward(upstream.astype(loss.dtype))
    return loss.array, x.grad.array


def run_torch(logits, target, options):
    x = torch.tensor(np.ascontiguousarray(logits), requires_grad=True)
    weight = options.get("weight")
    options = options | {"weight": None if weight is None else torch.tensor(weight)}
    loss = torch.nn.functional.cross_entropy(x, torch.from_numpy(target), **options)
    loss.backward(torch.linspace(0.5, 1.5, loss.numel(), dtype=x.dtype).reshape(loss.shape))
    return loss.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 7),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    weighted=st.booleans(),
    ignore=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_numpy_and_pytorch(
    dtype, n, c, reduction, weighted, ignore, smoothing, transposed, seed
):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((c, n) if transposed else (n, c)) * 3).astype(dtype)
    logits = logits.T if transposed else logits  # (N, C) either way; transposed is F-order
    target = rng.integers(0, c, n)
    if ignore:
        target[::2] = 1 if c > 1 else -100  # ignore_index 1 is a real class here
    options = {"reduction": reduction, "label_smoothing": smoothing}
    options |= {"ignore_index": 1 if c > 1 else -100} if ignore else {}
    if weighted:
        options["weight"] = rng.uniform(0.2, 2.0, c).astype(dtype)
    compiled = run_ours("numba", logits, target, options)
    reference = run_ours("numpy", logits, target, options)
    nothing_kept = ignore and (target == options["ignore_index"]).all()
    if nothing_kept and reduction == "mean":  # the mean is NaN
        reference = (reference[0], np.zeros_like(logits))  # whose gradient is 0 in torch
    for name, other in (("numpy", reference), ("torch", run_torch(logits, target, options))):
        for what, a, b in zip(("loss", "grad"), compiled, other, strict=True):
            assert a.dtype == dtype and a.shape == b.shape
            assert_rel_close(a, b, TOL[dtype], f"{what} vs {name}")


def test_extreme_logits_follow_the_reference():
    logits = np.array([[1e4, 0.0, -1e4], [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0]])
    target = np.array([1, 2, 0])
    compiled = run_ours("numba", logits, target, {"reduction": "none"})
    with np.errstate(invalid="ignore"):  # the reference's inf − inf
        reference = run_ours("numpy", logits, target, {"reduction": "none"})
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_rejects_a_target_out_of_range():
    with kl.backends.kernels.using("numba"), pytest.raises(IndexError, match=r"target 5"):
        F.cross_entropy(kl.Tensor(np.zeros((3, 4))), np.array([0, 5, -100]))
