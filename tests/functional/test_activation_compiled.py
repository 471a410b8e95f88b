"""Compiled activations and dropout against the NumPy reference and PyTorch, on any layout.

Inputs come contiguous, channel-major ((C, N, H, W) memory behind an (N, C, H, W) view) or as
a strided slice, with NaN and exact zeros; outputs and gradients must match the reference and
PyTorch and keep the input's memory layout.
"""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.backends import kernels

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


ACTIVATIONS = {
    "relu": (F.relu, torch.relu),
    "leaky_relu": (
        lambda t: F.leaky_relu(t, 0.2),
        lambda t: torch.nn.functional.leaky_relu(t, 0.2),
    ),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
}


@pytest.fixture
def kernel_path():
    """These tests run each path themselves, so they run once."""
    return None


@st.composite
def inputs(draw):
    """Values of a dtype in one of three layouts, with NaN and zeros mixed in."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=4, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) * 3
    x[rng.random(shape) < 0.1] = 0.0
    x[rng.random(shape) < 0.05] = np.nan
    x = x.astype(dtype)
    layout = draw(st.sampled_from(["contiguous", "channel_major", "slice"]))
    if layout == "channel_major":
        return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if layout == "slice":
        return np.repeat(x, 2, axis=3)[..., ::2]  # the same values, not dense
    return x


def run(fn, x, gy, path):
    with kernels.using(path):
        t = kl.Tensor(x, requires_grad=True)
        y = fn(t)
        y.backward(gy)
    return y.array, t.grad.array


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(x=inputs(), seed=st.integers(0, 2**16))
def test_activation(name, x, seed):
    fn, torch_fn = ACTIVATIONS[name]
    gy = np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)
    (y, gx), (y_ref, gx_ref) = run(fn, x, gy, "numba"), run(fn, x, gy, "numpy")
    t = torch.tensor(x, requires_grad=True)
    ty = torch_fn(t)
    ty.backward(torch.from_numpy(gy))
    tol = TOL[x.dtype.type]
    for ours, ref, theirs, what in ((y, y_ref, ty, "output"), (gx, gx_ref, t.grad, "gradient")):
        assert ours.dtype == x.dtype, what
        if x.transpose(1, 0, 2, 3).flags.c_contiguous:  # channel-major stays channel-major
            assert ours.transpose(1, 0, 2, 3).flags.c_contiguous, f"{what}: memory layout"
        assert_rel_close(ours, ref, tol, f"{what} against the NumPy path")
        assert_rel_close(ours, theirs.detach().numpy(), tol, f"{what} against PyTorch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_keeps_no_mask_without_a_gradient(dtype):
    x = kl.Tensor(np.array([-1.0, np.nan, 0.0, 2.0], dtype))
    with kernels.using("numba"):
        y = F.relu(x)
    assert y.node is None
    np.testing.assert_array_equal(y.array, [0.0, np.nan, 0.0, 2.0])


@pytest.mark.parametrize("dropout", [F.dropout, F.dropout2d])
@given(x=inputs(), p=st.sampled_from([0.1, 0.5, 0.9, 1.0]), seed=st.integers(0, 2**16))
def test_dropout_draws_the_same_mask_on_both_paths(dropout, x, p, seed):
    gy = np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)

    def fn(t):
        return dropout(t, p, generator=seed)

    (y, gx), (y_ref, gx_ref) = run(fn, x, gy, "numba"), run(fn, x, gy, "numpy")
    assert y.dtype == gx.dtype == x.dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gx, gx_ref)
    # PyTorch's own draws differ: check the rule instead, x/(1 − p) where kept, 0 elsewhere
    kept = (gx != 0).astype(x.dtype)
    mask = kept / np.asarray(1 - p, x.dtype) if p < 1 else kept
    expected = torch.from_numpy(np.ascontiguousarray(x)) * torch.from_numpy(mask)
    assert_rel_close(y, expected.numpy(), TOL[x.dtype.type], "output")


@pytest.mark.parametrize("shape", [(), (0, 3), (2, 3)])
@pytest.mark.parametrize(
    "fn", [F.relu, F.sigmoid, F.tanh, lambda t: F.dropout(t, 0.3, generator=1)]
)
def test_scalars_and_empty_arrays_keep_their_shape(shape, fn):
    x = kl.Tensor(np.full(shape, -0.5), requires_grad=True)
    with kernels.using("numba"):
        y = fn(x)
        y.backward(np.ones(shape))
    assert y.shape == x.grad.shape == shape


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["contiguous", "channel_major"])
def test_activation_shared_between_threads(name, layout, threads):
    """Arrays big enough to be shared between the threads (640K elements), with NaN, ±inf
    and ±0, match the NumPy path and PyTorch, zeros to the sign."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((40, 16, 32, 32)) * 3).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    picked = rng.random(x.shape) < 0.05
    x[picked] = rng.choice(specials, picked.sum())
    if layout == "channel_major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    if "relu" in name:  # an infinite gradient stops where ReLU's does (numba's tanh and
        gy[rng.random(x.shape) < 0.01] = np.inf  # exp saturate a step apart from NumPy's)
    fn, torch_fn = ACTIVATIONS[name]
    (y, gx), (y_ref, gx_ref) = run(fn, x, gy, "numba"), run(fn, x, gy, "numpy")
    t = torch.tensor(x, requires_grad=True)
    ty = torch_fn(t)
    ty.backward(torch.from_numpy(gy))
    for ours, ref, theirs, what in ((y, y_ref, ty, "output"), (gx, gx_ref, t.grad, "gradient")):
        zeros = ref == 0  # ±0 as the reference gives it
        np.testing.assert_array_equal(np.signbit(ours[zeros]), np.signbit(ref[zeros]), what)
        assert_rel_close(ours, ref, TOL[np.float32], f"{what} against the NumPy path")
        assert_rel_close(ours, theirs.detach().numpy(), TOL[np.float32], f"{what} vs PyTorch")


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_dropout_shared_between_threads(p, threads):
    """A big array (640K elements) on the team gives the NumPy path's output and gradient."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 16, 32, 32)).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan
    gy = rng.standard_normal(x.shape).astype(np.float32)

    def fn(t):
        return F.dropout(t, p, generator=3)

    (y, gx), (y_ref, gx_ref) = run(fn, x, gy, "numba"), run(fn, x, gy, "numpy")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gx, gx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel_major"])
def test_relu_gradient_read_from_a_padded_view(dtype, layout, threads):
    """A gradient that is the inside of a padded array (as a convolution's input gradient
    is) is read where it lies, in either layout, on one thread or shared."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((24, 16, 30, 30)).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    padded = rng.standard_normal((24, 16, 32, 32)).astype(dtype)
    if layout == "channel_major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
        padded = np.ascontiguousarray(padded.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gy = padded[:, :, 1:-1, 1:-1]
    gx, gx_ref = run(F.relu, x, gy, "numba")[1], run(F.relu, x, gy, "numpy")[1]
    np.testing.assert_array_equal(gx, gx_ref)
    assert gx.transpose(1, 0, 2, 3).flags.c_contiguous == (layout == "channel_major")
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).backward(torch.from_numpy(np.ascontiguousarray(gy)))
    np.testing.assert_array_equal(gx, t.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channel_major"])
def test_relu_streamed_output_at_any_alignment(dtype, offset, layout, threads):
    """A ReLU output kept for a backward from 1 MB on is written a cache line at a time past
    the caches, the elements before the first line and after the last one by one: an input
    whose memory starts ``offset`` elements into a line (so the output's lines and the
    input's differ), of a random size, gives PyTorch's output and gradient and the NumPy
    path's, NaN, ±inf and ±0 included."""
    rng = np.random.default_rng(10 + offset)
    shape = (int(rng.integers(33, 40)), 9, 31, int(rng.integers(25, 33)))  # 2.3-3.5 MB
    size = int(np.prod(shape))
    memory = (rng.standard_normal(size + offset) * 3).astype(dtype)
    picked = rng.random(memory.size) < 0.05
    memory[picked] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0]), picked.sum())
    x = memory[offset:].reshape(shape)  # dense, its first element anywhere in a line
    if layout == "channel_major":
        x = memory[offset:].reshape((shape[1], shape[0]) + shape[2:]).transpose(1, 0, 2, 3)
    gy = rng.standard_normal(shape).astype(dtype)
    (y, gx), (y_ref, gx_ref) = run(F.relu, x, gy, "numba"), run(F.relu, x, gy, "numpy")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))
    np.testing.assert_array_equal(gx, gx_ref)
    t = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    torch.relu(t).backward(torch.from_numpy(gy))
    np.testing.assert_array_equal(y, torch.relu(t).detach().numpy())
    np.testing.assert_array_equal(gx, t.grad.numpy())
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous == (layout == "channel_major")
