"""The compiled cross-entropy (class indices) against the NumPy reference and PyTorch."""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import loss_compiled

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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "options",
    [{}, {"reduction": "none", "label_smoothing": 0.2, "ignore_index": 3}, {"weight": True}],
)
def test_many_classes_match_numpy_and_pytorch(threads, dtype, options, monkeypatch):
    """A thousand classes and more: the rows' own exponential, forward and backward on the
    thread pool on two threads (odd sizes, a transposed input, logits far apart)."""
    monkeypatch.setattr(loss_compiled, "PARALLEL_SIZE", {"forward": 1 << 12, "backward": 1 << 12})
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((1003, 67)) * 20).astype(dtype).T  # (67, 1003), F-order
    logits[5, 7], logits[6] = 200.0, -800.0  # one far above its row, a row far below zero
    target = rng.integers(0, 1003, 67)
    target[::5] = 3
    if options.get("weight"):
        options = {"weight": rng.uniform(0.2, 2.0, 1003).astype(dtype)}
    compiled = run_ours("numba", logits, target, options)
    reference = run_ours("numpy", logits, target, options)
    for name, other in (("numpy", reference), ("torch", run_torch(logits, target, options))):
        for what, a, b in zip(("loss", "grad"), compiled, other, strict=True):
            assert a.dtype == dtype and a.shape == b.shape
            assert_rel_close(a, b, TOL[dtype], f"{what} vs {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_nonpositive_matches_numpy(dtype):
    """The rows' exponential against NumPy's: within two units in the last place, 0 below
    the dtype's cut-off (where exp is subnormal or underflows), NaN for NaN."""
    from numba import njit

    @njit
    def exps(v, constants, out):
        for i in range(v.size):
            out[i] = loss_compiled.exp_nonpositive(v[i], loss_compiled.unpack(constants))

    lowest = loss_compiled.EXP_CONSTANTS[np.dtype(dtype)][3]
    v = -np.concatenate([np.linspace(0, -lowest, 30001), [-lowest + 0.5, 1e4, np.inf, np.nan]])
    v = v.astype(dtype)
    out = np.empty_like(v)
    exps(v, loss_compiled.exp_constants(dtype), out)
    expected = np.exp(v.astype(np.float64))
    np.testing.assert_allclose(out[:-4], expected[:-4], rtol=2 * np.finfo(dtype).eps, atol=0)
    assert (out[-4:-1] == 0).all() and np.isnan(out[-1])


def test_rejects_a_target_out_of_range_on_the_thread_pool(threads):
    """The first bad row is named whichever thread found it."""
    assert loss_compiled.PARALLEL_SIZE["forward"] <= 70 * 1000
    target = np.zeros(70, np.int64)
    target[[9, 40]] = 1000, -3
    with kl.backends.kernels.using("numba"), pytest.raises(IndexError, match=r"target 1000 "):
        F.cross_entropy(kl.Tensor(np.zeros((70, 1000), np.float32)), target)
