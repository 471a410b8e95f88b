"""Pooling: gradients against central differences, forward and backward against PyTorch."""

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

tF = torch.nn.functional
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def distinct(shape, seed=0):
    """Values at least 0.1 apart, so ±eps never changes which one is the maximum."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 1.0


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 2, 6, 6), {"kernel_size": 2}),
        ((1, 3, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
        ((1, 2, 7, 7), {"kernel_size": (2, 3), "stride": (1, 2), "dilation": (2, 1)}),
        ((2, 1, 7, 8), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        ((1, 2, 8, 7), {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2}),
    ],
)
def test_max_pool_gradients_match_finite_differences(shape, kwargs):
    check_gradients(lambda x: F.max_pool2d(x, **kwargs), [distinct(shape)])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 2, 6, 6), {"kernel_size": 2}),
        ((1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
        ((1, 2, 7, 8), {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0), "ceil_mode": True}),
        ((1, 1, 6, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}),
    ],
)
def test_avg_pool_gradients_match_finite_differences(shape, kwargs, count_include_pad):
    x = np.random.default_rng(1).standard_normal(shape)
    check_gradients(lambda x: F.avg_pool2d(x, count_include_pad=count_include_pad, **kwargs), [x])


@pytest.mark.parametrize(
    "shape, output_size",
    [((2, 3, 5, 5), 1), ((1, 2, 7, 7), 3), ((1, 2, 5, 5), 3), ((1, 1, 7, 5), (3, 2))],
)
def test_adaptive_avg_pool_gradients_match_finite_differences(shape, output_size):
    x = np.random.default_rng(2).standard_normal(shape)
    check_gradients(lambda x: F.adaptive_avg_pool2d(x, output_size), [x])


def pool_input_size(draw, kernel, padding, dilation=(1, 1)):
    size = []
    for axis in range(2):
        window = dilation[axis] * (kernel[axis] - 1) + 1
        size.append(max(1, window - 2 * padding[axis]) + draw(st.integers(0, 5)))
    return size


@st.composite
def max_pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = pool_input_size(draw, kernel, padding, dilation)
    kwargs = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": draw(st.booleans()),
    }
    return (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w), kwargs


@st.composite
def avg_pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h, w = pool_input_size(draw, kernel, padding)
    kwargs = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
        "divisor_override": draw(st.one_of(st.none(), st.integers(1, 5))),
    }
    return (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w), kwargs


def compare_with_torch(ours_fn, torch_fn, x, seed):
    dtype = x.dtype.type
    ours = kl.Tensor(x.copy(), requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, ty = ours_fn(ours), torch_fn(theirs)
    assert y.dtype == x.dtype
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    if not torch.isfinite(ty).all():
        return  # a dilated window that sees only padding: -inf, and no input to route to
    gy = np.random.default_rng(seed).standard_normal(ty.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert ours.grad.dtype == x.dtype
    assert_rel_close(ours.grad, theirs.grad.numpy(), TOL[dtype], "input gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(config=max_pool_configs(), seed=st.integers(0, 2**16))
def test_max_pool_matches_pytorch(dtype, config, seed):
    shape, kwargs = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare_with_torch(
        lambda t: F.max_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.max_pool2d(t, **kwargs),
        x,
        seed,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(config=avg_pool_configs(), seed=st.integers(0, 2**16))
def test_avg_pool_matches_pytorch(dtype, config, seed):
    shape, kwargs = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare_with_torch(
        lambda t: F.avg_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.avg_pool2d(t, **kwargs),
        x,
        seed,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    output_size=st.one_of(
        st.integers(1, 4),
        st.tuples(st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.integers(1, 5))),
    ),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool_matches_pytorch(dtype, h, w, output_size, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(dtype)
    compare_with_torch(
        lambda t: F.adaptive_avg_pool2d(t, output_size),
        lambda t: torch.nn.functional.adaptive_avg_pool2d(t, output_size),
        x,
        seed,
    )


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda t: F.max_pool2d(t, 2), lambda t: tF.max_pool2d(t, 2)),
        (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: tF.max_pool2d(t, 3, 2, 1)),
        (lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: tF.avg_pool2d(t, 3, 2, 1)),
        (lambda t: F.adaptive_avg_pool2d(t, 4), lambda t: tF.adaptive_avg_pool2d(t, 4)),
    ],
)
def test_channel_major_input_matches_pytorch(ours, theirs):
    """An input in (C, N, H, W) memory, as a convolution returns it, pools as any other."""
    rng = np.random.default_rng(4)
    memory = rng.standard_normal((3, 2, 6, 6))  # (C, N, H, W)
    x = kl.Tensor(memory.transpose(1, 0, 2, 3), requires_grad=True)  # (N, C, H, W) view
    assert x.array.strides[0] < x.array.strides[1]
    t = torch.tensor(memory.transpose(1, 0, 2, 3), requires_grad=True)
    y, ty = ours(x), theirs(t)
    gy = rng.standard_normal(ty.shape)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert_rel_close(y.array, ty.detach().numpy(), 1e-12, "output")
    assert_rel_close(np.asarray(x.grad), t.grad.numpy(), 1e-12, "input gradient")


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = kl.Tensor(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 1, "padding": 1},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {"kernel_size": 2, "stride": 1, "dilation": 2},
    ],
)
def test_max_pool_ties_route_like_pytorch(kwargs):
    # Few distinct values: most windows hold several maxima, and overlapping windows add up.
    x = np.random.default_rng(3).integers(0, 3, (2, 3, 7, 7)).astype(np.float64)
    compare_with_torch(
        lambda t: F.max_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.max_pool2d(t, **kwargs),
        x,
        seed=4,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}]
)
def test_max_pool_gradient_goes_to_the_nan_like_pytorch(kwargs, dtype):
    """A window holding NaN outputs NaN and routes its gradient to a NaN, never to the first
    or the largest number: here after a larger number, before one, and two in one window."""
    x = np.random.default_rng(5).standard_normal((2, 2, 4, 6)).astype(dtype)
    x[0, 0, 0, 0], x[0, 0, 1, 1] = 9.0, np.nan  # the last cell of a 2x2 window, after a 9
    x[0, 1, 0, 3], x[0, 1, 1, 2] = np.nan, np.nan  # two in one 2x2 window
    x[1, 0, 2, 4], x[1, 0, 3, 5] = np.nan, 9.0  # the first cell, before a 9
    ours = kl.Tensor(x.copy(), requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, expected = F.max_pool2d(ours, **kwargs), torch.nn.functional.max_pool2d(theirs, **kwargs)
    np.testing.assert_array_equal(y.array, expected.detach().numpy())  # NaN where torch has it
    gy = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    expected.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(np.asarray(ours.grad), theirs.grad.numpy(), rtol=TOL[dtype], atol=0)


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}]
)
def test_max_pool_without_a_graph_matches_pytorch(kwargs):
    # Without a graph the arg-max is skipped; the maxima must not change, NaN included.
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    x[0, 1, 2, 3] = np.nan
    with kl.no_grad():
        y = F.max_pool2d(kl.Tensor(x), **kwargs)
    np.testing.assert_array_equal(
        y.array, torch.nn.functional.max_pool2d(torch.from_numpy(x), **kwargs).numpy()
    )


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_integer_max_pool_with_padding_matches_pytorch(dtype):
    """Padding holds the dtype's lowest value (integers have no -inf), never a window's max."""
    x = np.random.default_rng(11).integers(0, 100, (2, 3, 5, 6)).astype(dtype)
    ours = kl.Tensor(x.copy(), requires_grad=False)
    y = F.max_pool2d(ours, 3, 2, 1)
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y.array, expected.numpy())


def test_pool_rejects_bad_input():
    x = kl.Tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d: expected a 4-D input.*got shape \(4, 4\)"):
        F.max_pool2d(kl.Tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="padding 2 must be at most half the kernel size"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ShapeError, match=r"avg_pool2d: window 5x5 is larger than.*4x4"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match="output_size must be positive"):
        F.adaptive_avg_pool2d(x, 0)
