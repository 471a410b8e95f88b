"""The compiled batch norm against the NumPy reference and PyTorch, in every memory layout."""

import math

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
LAYOUTS = ("contiguous", "channel_major", "strided")
# the inputs the parity tests draw: batch, channels, spatial axes and memory layout
INPUTS = dict(
    n=st.integers(1, 6),
    c=st.integers(1, 5),
    spatial=st.lists(st.integers(1, 5), max_size=2).map(tuple),
    layout=st.sampled_from(LAYOUTS),
)


@pytest.fixture(autouse=True)
def _on_both_kernel_paths():
    """Each test here runs both paths itself, side by side."""
    yield


def make_input(rng, shape, layout, dtype):
    """Values of ``shape`` (N, C, ...) in C-contiguous, channel-major or strided memory."""
    n, c = shape[:2]
    if layout == "channel_major":  # (C, N, ...) memory, as convolutions return
        memory = rng.standard_normal((c, n) + shape[2:]) * 3 + 2
        return np.swapaxes(memory.astype(dtype), 0, 1)
    if layout == "strided":  # every other sample of a larger batch: neither layout
        return (rng.standard_normal((2 * n,) + shape[1:]) * 3 + 2).astype(dtype)[::2]
    return (rng.standard_normal(shape) * 3 + 2).astype(dtype)


def run_ours(path, x, params, stats, gy, settings):
    """Output, running statistics and gradients of kernelab on one kernel path."""
    stats = tuple(s.copy() for s in stats)
    tensors = [kl.Tensor(a, requires_grad=True) for a in [x] + params]
    with kl.backends.kernels.using(path):
        y = F.batch_norm(tensors[0], *stats, *tensors[1:], **settings)
        y.backward(gy)
    return y.array, stats, [t.grad.array for t in tensors]


def run_torch(x, params, stats, gy, settings):
    """The same with torch.nn.functional.batch_norm."""
    stats = tuple(torch.tensor(s) for s in stats)
    tensors = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in [x] + params]
    y = torch.nn.functional.batch_norm(tensors[0], *stats, *tensors[1:], **settings)
    y.backward(torch.from_numpy(np.ascontiguousarray(gy)))
    return y.detach().numpy(), [s.numpy() for s in stats], [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    **INPUTS,
    training=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_numpy_and_pytorch(dtype, n, c, spatial, layout, training, affine, seed):
    n = max(n, math.ceil(8 / math.prod(spatial)))  # enough values per channel (see test_norm)
    rng = np.random.default_rng(seed)
    x = make_input(rng, (n, c) + spatial, layout, dtype)
    params = [rng.standard_normal(c).astype(dtype) for _ in range(2)] if affine else []
    stats = [rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]
    axes = (0,) + tuple(range(2, x.ndim))
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)
    gy = np.empty_like(x)  # the upstream gradient in the input's layout, as a ReLU passes it
    gy[...] = rng.uniform(0.5, 2.0, x.shape) + x_hat  # see test_norm: no cancellation
    settings = {"training": training, "momentum": 0.1, "eps": 1e-5}

    compiled = run_ours("numba", x, params, stats, gy, settings)
    reference = run_ours("numpy", x, params, stats, gy, settings)
    theirs = run_torch(x, params, stats, gy, settings)
    for other, name in ((reference, "numpy"), (theirs, "torch")):
        for what, ours, expected in zip(("output", "stats", "grads"), compiled, other, strict=True):
            for i, (a, b) in enumerate(zip(ours, expected, strict=True)):
                assert a.dtype == dtype
                assert_rel_close(a, b, TOL[dtype], f"{what} {i} vs {name}")
    if layout == "channel_major" and n > 1 and c > 1:
        for result in (compiled[0], compiled[2][0]):  # output and input gradient
            assert np.swapaxes(result, 0, 1).flags.c_contiguous


@pytest.mark.parametrize("layout", LAYOUTS)
def test_statistics_hold_when_the_mean_dwarfs_the_spread(layout):
    # One pass of plain Σx and Σx² would lose every digit of this variance in float32.
    rng = np.random.default_rng(0)
    x = (make_input(rng, (16, 3, 5, 5), layout, np.float64) - 2) * 1e-3 + 1e4
    x = x.astype(np.float32)
    stats = [np.zeros(3, np.float32), np.ones(3, np.float32)]
    gy = np.ones_like(x)
    settings = {"training": True, "momentum": 1.0, "eps": 1e-5}
    compiled = run_ours("numba", x, [], stats, gy, settings)
    x64 = x.astype(np.float64)
    var = x64.var(axis=(0, 2, 3), ddof=1)
    assert_rel_close(compiled[1][0], x64.mean(axis=(0, 2, 3)), 1e-6, "running mean")
    assert_rel_close(compiled[1][1], var, 1e-4, "running var")


def test_nan_propagates_like_the_reference():
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    x[1, 0, 2, 2] = np.nan
    stats = [np.zeros(2, np.float32), np.ones(2, np.float32)]
    settings = {"training": True, "momentum": 0.1, "eps": 1e-5}
    gy = np.ones_like(x)
    compiled = run_ours("numba", x, [], stats, gy, settings)
    reference = run_ours("numpy", x, [], stats, gy, settings)
    for a, b in zip([compiled[0], *compiled[1]], [reference[0], *reference[1]], strict=True):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine", ["weight", "bias"])
@pytest.mark.parametrize("layout", ["channel_major", "contiguous"])
def test_a_channel_per_task_with_weight_or_bias_alone(dtype, affine, layout):
    # the training passes a channel per task (normalise_channels, channel_gradients), in
    # either layout, with only one of the affine parameters, against PyTorch
    rng = np.random.default_rng(4)
    x = make_input(rng, (8, 16, 6, 7), layout, dtype)
    param = rng.standard_normal(16).astype(dtype)
    stats = [np.zeros(16, dtype), np.ones(16, dtype)]
    gy = make_input(rng, (8, 16, 6, 7), layout, dtype)
    settings = {"training": True, "momentum": 0.1, "eps": 1e-5}
    ours = kl.Tensor(x, requires_grad=True), kl.Tensor(param, requires_grad=True)
    y = F.batch_norm(
        ours[0], *stats, *((ours[1], None) if affine == "weight" else (None, ours[1])), **settings
    )
    y.backward(gy)
    theirs = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    tparam = torch.tensor(param, requires_grad=True)
    tstats = [torch.tensor(s) for s in (np.zeros(16, dtype), np.ones(16, dtype))]
    args = (tparam, None) if affine == "weight" else (None, tparam)
    ty = torch.nn.functional.batch_norm(theirs, *tstats, *args, **settings)
    ty.backward(torch.from_numpy(np.ascontiguousarray(gy)))
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    assert_rel_close(ours[0].grad.array, theirs.grad.numpy(), TOL[dtype], "input gradient")
    assert_rel_close(ours[1].grad.array, tparam.grad.numpy(), TOL[dtype], "parameter gradient")
    for a, b in zip(stats, tstats, strict=True):
        assert_rel_close(a, b.numpy(), TOL[dtype], "running statistics")


def inference(path, x, weight, bias, stats):
    """kernelab's evaluation output with no gradient wanted, on one kernel path."""
    with kl.backends.kernels.using(path), kl.inference_mode():
        return F.batch_norm(kl.Tensor(x), *stats, weight, bias, training=False).array


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    **INPUTS,
    affine=st.sampled_from(["both", "weight", "bias", "none"]),
    seed=st.integers(0, 2**16),
)
def test_inference_matches_numpy_and_pytorch(dtype, n, c, spatial, layout, affine, seed):
    # the evaluation forward with no gradient wanted (scale and shift from one compiled
    # call), with either affine parameter or none
    rng = np.random.default_rng(seed)
    x = make_input(rng, (n, c) + spatial, layout, dtype)
    weight = rng.standard_normal(c).astype(dtype) if affine in ("both", "weight") else None
    bias = rng.standard_normal(c).astype(dtype) if affine in ("both", "bias") else None
    stats = [rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]
    compiled, reference = (
        inference("numba", x, weight, bias, stats),
        inference("numpy", x, weight, bias, stats),
    )
    as_torch = [None if a is None else torch.tensor(a.astype(dtype)) for a in (weight, bias)]
    theirs = torch.nn.functional.batch_norm(
        torch.tensor(np.ascontiguousarray(x)),
        *(torch.tensor(s.astype(dtype)) for s in stats),
        *as_torch,
        training=False,
    )
    assert compiled.dtype == dtype
    assert_rel_close(compiled, reference, TOL[dtype], "output vs numpy")
    assert_rel_close(compiled, theirs.numpy(), TOL[dtype], "output vs torch")
    if layout == "channel_major" and n > 1 and c > 1:
        assert np.swapaxes(compiled, 0, 1).flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["channel_major", "contiguous"])
def test_training_passes_shared_between_threads_give_one_threads_numbers(dtype, layout):
    # 12 channels of 13-18K values: the training passes, a channel per task, are claimed by
    # the threads of core/team.py in chunks; the numbers are one thread's to the bit
    rng = np.random.default_rng(8)
    shape = (8, 12, int(rng.integers(40, 48)), int(rng.integers(40, 48)))
    x = make_input(rng, shape, layout, dtype)
    params = [rng.standard_normal(12).astype(dtype) for _ in range(2)]
    stats = [rng.standard_normal(12).astype(dtype), (rng.random(12) + 0.5).astype(dtype)]
    gy = make_input(rng, shape, layout, dtype)
    settings = {"training": True, "momentum": 0.1, "eps": 1e-5}
    previous = kl.get_num_threads()
    try:
        results = []
        for count in (1, 2):
            kl.set_num_threads(count)
            y, running, grads = run_ours("numba", x, params, stats, gy, settings)
            results.append([y, *running, *grads])
    finally:
        kl.set_num_threads(previous)
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)
    y, running, grads = run_torch(x, params, stats, gy, settings)
    for ours, theirs in zip(results[1], [y, *running, *grads], strict=True):
        assert_rel_close(ours, theirs, TOL[dtype], "against PyTorch")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["channel_major", "contiguous"])
def test_evaluation_pass_shared_between_threads(dtype, layout, threads):
    # big enough (150K values) for the evaluation's scale-and-shift pass, forward and
    # backward, to be shared by the threads of core/team.py; a random shape around that
    rng = np.random.default_rng(5)
    shape = (int(rng.integers(7, 10)), 3, int(rng.integers(75, 90)), int(rng.integers(75, 90)))
    x = make_input(rng, shape, layout, dtype)
    params = [rng.standard_normal(3).astype(dtype) for _ in range(2)]
    stats = [rng.standard_normal(3).astype(dtype), (rng.random(3) + 0.5).astype(dtype)]
    gy = make_input(rng, shape, layout, dtype)
    settings = {"training": False, "momentum": 0.1, "eps": 1e-5}
    ours = run_ours("numba", x, params, stats, gy, settings)
    theirs = run_torch(x, params, stats, gy, settings)
    assert_rel_close(ours[0], theirs[0], TOL[dtype], "output")
    for i, (a, b) in enumerate(zip(ours[2], theirs[2], strict=True)):
        assert_rel_close(a, b, TOL[dtype], f"gradient {i}")
    assert_rel_close(inference("numba", x, *params, stats), theirs[0], TOL[dtype], "inference")
    if layout == "channel_major":
        assert np.swapaxes(ours[0], 0, 1).flags.c_contiguous
