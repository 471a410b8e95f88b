"""Fused ReLU → max pooling and batch norm → ReLU against the unfused ops and PyTorch.

Inputs come contiguous or channel-major ((C, N, H, W) memory, as after a convolution), with
odd sizes, batch 1, ties, NaN and windows of negative values only; gradients are also checked
against central differences in float64. Every test runs on both kernel paths (conftest).
"""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import fused

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


def channel_major(x: np.ndarray) -> np.ndarray:
    """The same values in (C, N, H, W) memory behind an (N, C, H, W) view."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def padding_cut_off(x: np.ndarray) -> np.ndarray:
    """The same values as a view into channel-major memory with a border of 1 around each
    plane (a convolution's input gradient with its padding cut off)."""
    n, c, h, w = x.shape
    padded = np.zeros((c, n, h + 2, w + 2), x.dtype)
    padded[:, :, 1:-1, 1:-1] = x.transpose(1, 0, 2, 3)
    return padded.transpose(1, 0, 2, 3)[:, :, 1:-1, 1:-1]


@st.composite
def inputs(draw, least=2):
    """(N, C, H, W) values of a dtype and layout: normal, 0/1/2 ties, with NaN, or negative
    windows (most values below 0), sides at least ``least``."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        draw(st.integers(least, least + 6)),
        draw(st.integers(least, least + 6)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = draw(st.sampled_from(["normal", "ties", "nan", "negative"]))
    x = rng.integers(0, 3, shape) - 1.0 if values == "ties" else rng.standard_normal(shape)
    if values == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    if values == "negative":
        x -= 2.5
    x = x.astype(dtype)
    return channel_major(x) if draw(st.booleans()) else x


def forward_backward(fn, x: np.ndarray, gy: np.ndarray, extra=()):
    """fn's output and the gradients of x and ``extra`` (kernelab arrays, made tensors)."""
    t = kl.Tensor(x, requires_grad=True)
    others = [kl.Tensor(a.copy(), requires_grad=True) for a in extra]
    y = fn(t, *others)
    y.backward(kl.Tensor(gy))
    return [y.array, t.grad.array] + [o.grad.array for o in others]


def torch_forward_backward(fn, x: np.ndarray, gy: np.ndarray, extra=()):
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, *extra)]
    y = fn(*tensors)
    y.backward(torch.from_numpy(np.ascontiguousarray(gy)))
    return [y.detach().numpy()] + [t.grad.numpy() for t in tensors]


def compare(ours, reference, dtype, what: str) -> None:
    assert len(ours) == len(reference), what
    names = ["output", "input gradient", "weight gradient", "bias gradient"]
    for a, b, name in zip(ours, reference, names[: len(ours)], strict=True):
        assert a.dtype == dtype, f"{what}: {name} dtype"
        assert_rel_close(a, b, TOL[np.dtype(dtype).type], f"{name} against {what}")


# ---- ReLU → max pooling


def pool_settings(data) -> dict:
    """2x2 at stride 2 (the compiled kernels' case) or other undilated windows."""
    if data.draw(st.booleans()):
        return {"kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": False}
    kernel = data.draw(st.integers(1, 3))
    return {
        "kernel_size": kernel,
        "stride": data.draw(st.integers(1, 3)),
        "padding": data.draw(st.integers(0, kernel // 2)),
        "ceil_mode": data.draw(st.booleans()),
    }


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_relu_max_pool_matches_unfused_and_pytorch(data, seed):
    kwargs = pool_settings(data)
    x = data.draw(inputs(least=3))
    expected_shape = torch.nn.functional.max_pool2d(torch.from_numpy(x), **kwargs).shape
    gy = np.random.default_rng(seed).standard_normal(tuple(expected_shape)).astype(x.dtype)
    ours = forward_backward(lambda t: fused.relu_max_pool2d(t, **kwargs), x, gy)
    unfused = forward_backward(lambda t: F.max_pool2d(F.relu(t), **kwargs), x, gy)
    reference = torch_forward_backward(
        lambda t: torch.nn.functional.max_pool2d(torch.relu(t), **kwargs), x, gy
    )
    compare(ours, unfused, x.dtype, "the unfused ops")
    compare(ours, reference, x.dtype, "PyTorch")


def test_relu_max_pool_ties_nan_and_negative_windows():
    """First maximum of a tie, the last NaN, relu'(0) = 0 and windows ≤ 0 sending nothing."""
    x = np.array(
        [
            [
                [[1.0, 1.0, -1.0, -2.0, 0.0, -3.0], [0.5, 1.0, -0.5, -1.0, -1.0, 0.0]],
                [
                    [np.nan, 2.0, 3.0, np.nan, -np.inf, np.inf],
                    [1.0, np.nan, np.nan, -1.0, 0.0, 1.0],
                ],
            ]
        ]
    )  # (1, 2, 2, 6)
    gy = np.arange(1.0, 7.0).reshape(1, 2, 1, 3)
    for values in (x, channel_major(np.repeat(x, 2, axis=0))):
        g = np.repeat(gy, values.shape[0], axis=0)
        ours = forward_backward(lambda t: fused.relu_max_pool2d(t, 2), values, g)
        reference = torch_forward_backward(
            lambda t: torch.nn.functional.max_pool2d(torch.relu(t), 2), values, g
        )
        np.testing.assert_array_equal(ours[0], reference[0])
        np.testing.assert_array_equal(ours[1], reference[1])


@pytest.mark.parametrize("values", ["normal", "ties", "nan"])
def test_relu_max_pool_without_a_graph(values):
    """The maxima alone (compiled without arg-max), NaN and the ReLU's 0 as PyTorch's."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 3, 7, 6)) if values == "ties" else rng.standard_normal((2, 3, 7, 6))
    if values == "nan":
        x[rng.random(x.shape) < 0.2] = np.nan
    x = channel_major(x.astype(np.float32))
    with kl.no_grad():
        y = fused.relu_max_pool2d(kl.Tensor(x), 2)
    expected = torch.nn.functional.max_pool2d(torch.relu(torch.from_numpy(x)), 2)
    np.testing.assert_array_equal(y.array, expected.numpy())


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2}])
def test_relu_max_pool_gradients_match_finite_differences(kwargs):
    # distinct values at least 0.01 apart and from 0: no step of ±1e-6 crosses a kink
    rng = np.random.default_rng(1)
    x = (rng.permutation(2 * 2 * 5 * 5) - 40.5).reshape(2, 2, 5, 5) * 0.05
    check_gradients(lambda t: fused.relu_max_pool2d(t, **kwargs), [x])


# ---- batch norm → ReLU


def batch_norm_args(c: int, dtype, affine: bool, seed: int):
    rng = np.random.default_rng(seed)
    stats = [rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]
    params = [(rng.standard_normal(c) + 1).astype(dtype), rng.standard_normal(c).astype(dtype)]
    return stats, params if affine else []


@given(
    x=inputs(least=1),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.sampled_from([0.1, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_relu_matches_unfused_and_pytorch(x, training, affine, momentum, seed):
    if training and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        x = np.concatenate([x, x + 1])  # training needs two values per channel
    (mean, var), params = batch_norm_args(x.shape[1], x.dtype, affine, seed)
    gy = np.random.default_rng(seed + 1).standard_normal(x.shape).astype(x.dtype)
    gy = [gy, channel_major(gy), padding_cut_off(gy)][seed % 3]
    runs = []
    for fn in (fused.batch_norm_relu, lambda *a, **k: F.relu(F.batch_norm(*a, **k))):
        stats = [mean.copy(), var.copy()]

        def fn_of(t, *p, fn=fn, stats=stats):
            return fn(t, *stats, *p, training=training, momentum=momentum)

        runs.append((forward_backward(fn_of, x, gy, params), stats))
    stats = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]

    def torch_fn(t, *p):
        w, b = p if p else (None, None)
        return torch.relu(torch.nn.functional.batch_norm(t, *stats, w, b, training, momentum))

    reference = torch_forward_backward(torch_fn, x, gy, params)
    (ours, our_stats), (unfused, unfused_stats) = runs
    compare(ours, unfused, x.dtype, "the unfused ops")
    if np.isnan(x).any():  # PyTorch's batch statistics of NaN: NaN everywhere, as ours
        reference = [np.where(np.isnan(r), np.nan, r) for r in reference]
    compare(ours, reference, x.dtype, "PyTorch")
    for a, b, c in zip(our_stats, unfused_stats, stats, strict=True):
        assert_rel_close(a, b, TOL[x.dtype.type], "running statistics against the unfused")
        assert_rel_close(a, c.numpy(), TOL[x.dtype.type], "running statistics against PyTorch")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_gradients_match_finite_differences(training):
    rng = np.random.default_rng(3)
    x = channel_major(rng.standard_normal((3, 2, 3, 2)) * 2 + 0.5)
    (mean, var), params = batch_norm_args(2, np.float64, True, 4)

    def fn(t, w, b):
        return fused.batch_norm_relu(t, mean.copy(), var.copy(), w, b, training=training)

    with kl.no_grad():  # no output within a step of the kink
        y = fn(*(kl.Tensor(a) for a in [x] + params)).array
        z = F.batch_norm(kl.Tensor(x), mean.copy(), var.copy(), *params, training).array
    assert np.abs(z).min() > 1e-3 and (y == 0).any() and (y > 0).any()
    check_gradients(fn, [x] + params)


def test_fused_kernels_run_on_the_compiled_path(monkeypatch, kernel_path):
    """The bench's cases (2x2 pooling, training batch norm on channel-major memory) take the
    compiled twins when the compiled path runs."""
    called = []
    names = {"relu_max_pool", "relu_max_pool_grad", "batch_norm_relu", "batch_norm_relu_grad"}
    twin = pytest.importorskip("kernelab.functional.fused_compiled")
    for name in names:
        function = getattr(twin, name)
        monkeypatch.setattr(twin, name, lambda *a, f=function, n=name: called.append(n) or f(*a))
    x = channel_major(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    mean, var = np.zeros(3), np.ones(3)
    y = fused.batch_norm_relu(kl.Tensor(x, requires_grad=True), mean, var, training=True)
    fused.relu_max_pool2d(y, 2).sum().backward()
    assert set(called) == (set() if kernel_path == "numpy" else names)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_relu_passes_no_gradient_at_zero(dtype):
    """Each channel's values are symmetric about their mean, which normalises to exactly 0:
    relu'(0) = 0 there, as in PyTorch."""
    base = np.array([-1.5, -0.5, 0.0, 0.5, 1.5, 0.0])
    x = channel_major(np.stack([base, 2 * base]).T.reshape(3, 2, 1, 2).astype(dtype))
    gy = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    (mean, var), params = batch_norm_args(2, dtype, True, 0)
    params[1][:] = 0  # no shift: the mean's output is 0

    def fn(t, w, b):
        return fused.batch_norm_relu(t, mean.copy(), var.copy(), w, b, training=True)

    ours = forward_backward(fn, x, gy, params)
    assert (ours[0] == 0).sum() >= 4
    reference = torch_forward_backward(
        lambda t, w, b: torch.relu(
            torch.nn.functional.batch_norm(t, None, None, w, b, training=True)
        ),
        x,
        gy,
        params,
    )
    compare(ours, reference, x.dtype, "PyTorch")


# ---- ReLU after batch norm, as two ops: one backward pass when nothing needs the between


def numpy_of(t) -> np.ndarray:
    return t.array.copy() if isinstance(t, kl.Tensor) else t.detach().numpy().copy()


def relu_of_batch_norm_step(x, gy, params, lib, between=None, twice=False, retain=False):
    """``relu(batch_norm(x))`` in training, then backward of gy (``between`` sees the batch
    norm's output first; ``twice``: it is used again, in a sum); gradients of x and params."""
    t = lib.tensor(x, requires_grad=True)
    p = [lib.tensor(a.copy(), requires_grad=True) for a in params]
    functional = kl.nn.functional if lib is kl else torch.nn.functional
    y = functional.batch_norm(t, None, None, *p, training=True)
    if between is not None:
        between(y)
    z = lib.relu(y)
    z = z + y * y if twice else z
    z.backward(lib.from_numpy(np.ascontiguousarray(gy)), retain_graph=retain)
    if retain:  # a second backward through the same graph adds as much again
        z.backward(lib.from_numpy(np.ascontiguousarray(gy)))
    return [numpy_of(g) for g in [t.grad, *(q.grad for q in p)]], y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_after_batch_norm_runs_in_batch_norms_backward(
    monkeypatch, kernel_path, dtype, threads
):
    """On the compiled path the ReLU's own backward does not run; gradients as PyTorch's,
    at one and two threads."""
    rng = np.random.default_rng(6)
    x = channel_major(rng.standard_normal((4, 3, 5, 6)).astype(dtype))
    gy = padding_cut_off(rng.standard_normal(x.shape).astype(dtype))
    _, params = batch_norm_args(3, dtype, True, 7)
    ran = []
    twin = pytest.importorskip("kernelab.functional.fused_compiled")
    act = pytest.importorskip("kernelab.functional.activation_compiled")
    for module, name in ((twin, "relu_after_batch_norm_grad"), (act, "relu_grad")):
        function = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, f=function, n=name: ran.append(n) or f(*a))
    ours, _ = relu_of_batch_norm_step(x, gy, params, kl)
    reference, _ = relu_of_batch_norm_step(x, gy, params, torch)
    compare(ours, reference, dtype, "PyTorch")
    assert ran == ([] if kernel_path == "numpy" else ["relu_after_batch_norm_grad"])


@pytest.mark.parametrize("case", ["hook", "retain_grad", "used twice", "retain_graph"])
def test_relu_after_batch_norm_keeps_what_sees_the_gradient_between(case):
    """A hook or retain_grad on batch norm's output sees its gradient, a second use adds
    to it, and retain_graph lets a second backward run: all as in PyTorch."""
    rng = np.random.default_rng(8)
    x = channel_major(rng.standard_normal((3, 2, 4, 5)))
    gy = rng.standard_normal(x.shape)
    _, params = batch_norm_args(2, np.float64, True, 9)
    results = []
    for lib in (kl, torch):
        seen = []

        def between(y, seen=seen):
            if case == "hook":
                y.register_hook(lambda g: seen.append(numpy_of(g)))
            elif case == "retain_grad":
                y.retain_grad()

        twice, retain = case == "used twice", case == "retain_graph"
        grads, y = relu_of_batch_norm_step(x, gy, params, lib, between, twice, retain)
        if case == "retain_grad":
            seen.append(numpy_of(y.grad))
        results.append((grads, seen))
    (ours, our_seen), (reference, their_seen) = results
    compare(ours, reference, np.float64, "PyTorch")
    assert len(our_seen) == len(their_seen) == (case in ("hook", "retain_grad"))
    for a, b in zip(our_seen, their_seen, strict=True):
        assert_rel_close(a, b, TOL[np.float64], "the gradient between")


def test_relu_after_batch_norm_gives_the_gradient_between_when_asked():
    """``autograd.grad`` of batch norm's output, and backward(inputs=) naming it, get it."""
    rng = np.random.default_rng(10)
    x = channel_major(rng.standard_normal((3, 2, 4, 5)))
    gy = rng.standard_normal(x.shape)
    tt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.batch_norm(tt, None, None, training=True)
    torch.relu(yt).backward(torch.from_numpy(gy), inputs=[yt])
    t = kl.tensor(x, requires_grad=True)
    y = F.batch_norm(t, None, None, training=True)
    (gz,) = kl.autograd.grad(F.relu(y), [y], kl.tensor(gy))
    assert_rel_close(gz.array, yt.grad.numpy(), TOL[np.float64], "autograd.grad")
    y = F.batch_norm(t, None, None, training=True)
    F.relu(y).backward(kl.tensor(gy), inputs=[y])
    assert_rel_close(y.grad.array, yt.grad.numpy(), TOL[np.float64], "backward(inputs=)")
    assert t.grad is None


# ---- ReLU's backward of a gradient in two parts


def residual_step(x, lib, weights, between=None, third=False):
    """z = relu(x·2) feeds a padded 3x3 convolution and a shortcut (and a third branch),
    summed; the gradient of x (and what ``between`` saw of z's)."""
    t = lib.tensor(x, requires_grad=True)
    z = lib.relu(t * 2)
    if between is not None:
        between(z)
    conv = (kl.nn.functional if lib is kl else torch.nn.functional).conv2d
    out = conv(z, lib.tensor(weights), padding=1) * 3 + z
    out = out + z * z if third else out
    (out * lib.tensor(np.arange(out.numel()).reshape(out.shape) % 7 - 3.0)).sum().backward()
    return numpy_of(t.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_adds_two_gradient_parts_in_its_backward(monkeypatch, kernel_path, dtype):
    """A residual block's output gets a convolution's input gradient (a view inside its
    padding) and the shortcut's: on the compiled path ReLU adds them in its own pass."""
    rng = np.random.default_rng(11)
    x = channel_major(rng.standard_normal((3, 4, 6, 5)).astype(dtype))
    weights = rng.standard_normal((4, 4, 3, 3)).astype(dtype)
    twin = pytest.importorskip("kernelab.functional.fused_compiled")
    ran = []
    function = twin.relu_grad_of_sum

    def recorded(*args):
        ran.append(function(*args))
        return ran[-1]

    monkeypatch.setattr(twin, "relu_grad_of_sum", recorded)
    ours = residual_step(x, kl, weights)
    reference = residual_step(x, torch, weights)
    assert_rel_close(ours, reference, TOL[np.dtype(dtype).type], "input gradient")
    assert [r is not None for r in ran] == ([] if kernel_path == "numpy" else [True])


@pytest.mark.parametrize("case", ["hook", "retain_grad", "three parts"])
def test_relu_of_two_parts_keeps_what_sees_their_sum(case):
    """A hook or retain_grad on ReLU's output sees the whole sum; a third part is added."""
    rng = np.random.default_rng(12)
    x = channel_major(rng.standard_normal((2, 3, 5, 5)))
    weights = rng.standard_normal((3, 3, 3, 3))
    results = []
    for lib in (kl, torch):
        seen, kept = [], []

        def between(z, seen=seen, kept=kept):
            if case == "hook":
                z.register_hook(lambda g: seen.append(numpy_of(g)))
            elif case == "retain_grad":
                z.retain_grad()
                kept.append(z)

        grad = residual_step(x, lib, weights, between, third=case == "three parts")
        results.append((grad, seen + [numpy_of(z.grad) for z in kept]))
    (ours, our_seen), (reference, their_seen) = results
    assert_rel_close(ours, reference, TOL[np.float64], "input gradient")
    assert len(our_seen) == len(their_seen) == (case != "three parts")
    for a, b in zip(our_seen, their_seen, strict=True):
        assert_rel_close(a, b, TOL[np.float64], "the sum of the parts")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_relu_adds_two_gradient_parts_in_its_backward(
    monkeypatch, kernel_path, dtype, threads
):
    """A fused batch norm and ReLU whose output feeds a padded convolution and a shortcut
    takes the two parts of its output gradient into its one pass, as PyTorch's values (at
    one and two threads)."""
    rng = np.random.default_rng(13)
    x = channel_major(rng.standard_normal((3, 4, 6, 5)).astype(dtype))
    weights = rng.standard_normal((4, 4, 3, 3)).astype(dtype)
    (mean, var), params = batch_norm_args(4, dtype, True, 14)
    twin = pytest.importorskip("kernelab.functional.fused_compiled")
    parts = []
    function = twin.batch_norm_relu_grad

    def recorded(ctx, g, g2=None):
        parts.append(g2 is not None)
        return function(ctx, g, g2)

    monkeypatch.setattr(twin, "batch_norm_relu_grad", recorded)
    results = [
        batch_norm_relu_residual_step(x, lib, weights, mean, var, params) for lib in (kl, torch)
    ]
    compare(*results, dtype, "PyTorch")
    assert parts == ([] if kernel_path == "numpy" else [True])


def batch_norm_relu_residual_step(x, lib, weights, mean, var, params):
    """z = relu(batch norm of x in training) feeds a padded 3x3 convolution and a shortcut,
    summed; the gradients of x and of the batch norm's weight and bias."""
    t = lib.tensor(x, requires_grad=True)
    p = [lib.tensor(a.copy(), requires_grad=True) for a in params]
    if lib is kl:
        z = fused.batch_norm_relu(t, mean.copy(), var.copy(), *p, training=True)
    else:
        stats = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
        z = torch.relu(torch.nn.functional.batch_norm(t, *stats, *p, training=True))
    conv = (F if lib is kl else torch.nn.functional).conv2d
    out = conv(z, lib.tensor(weights), padding=1) * 3 + z
    (out * lib.tensor(np.arange(out.numel()).reshape(out.shape) % 5 - 2.0)).sum().backward()
    return [numpy_of(v.grad) for v in (t, *p)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_passes_shared_between_threads(dtype):
    """Inputs large enough (8 channels of 16K values, 32 planes of 4K) for the fused passes
    to be claimed by the threads of core/team.py in chunks: PyTorch's numbers, and batch
    norm → ReLU's the same to the bit as on one thread (the residual steps' convolutions
    sum in another order on two threads)."""
    rng = np.random.default_rng(15)
    x = channel_major(rng.standard_normal((4, 8, 64, 64)).astype(dtype))
    gy = padding_cut_off(rng.standard_normal(x.shape).astype(dtype))
    weights = rng.standard_normal((8, 8, 3, 3)).astype(dtype) / 8
    (mean, var), params = batch_norm_args(8, dtype, True, 16)
    previous = kl.get_num_threads()
    try:
        kl.set_num_threads(1)
        alone = relu_of_batch_norm_step(x, gy, params, kl)[0]
        kl.set_num_threads(2)
        shared = relu_of_batch_norm_step(x, gy, params, kl)[0]
        residual = residual_step(x, kl, weights)
        two_parts = batch_norm_relu_residual_step(x, kl, weights, mean, var, params)
    finally:
        kl.set_num_threads(previous)
    for one, two in zip(alone, shared, strict=True):
        np.testing.assert_array_equal(one, two)
    compare(shared, relu_of_batch_norm_step(x, gy, params, torch)[0], dtype, "PyTorch")
    assert_rel_close(residual, residual_step(x, torch, weights), TOL[np.dtype(dtype).type], "sum")
    reference = batch_norm_relu_residual_step(x, torch, weights, mean, var, params)
    compare(two_parts, reference, dtype, "PyTorch")
