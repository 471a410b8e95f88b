"""Compiled pooling kernels against the NumPy reference and PyTorch, on both memory layouts.

Inputs come contiguous or channel-major ((C, N, H, W) memory, as after a convolution), with
ties and NaN; results must equal the reference's, in the same memory layout, and PyTorch's.
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


@pytest.fixture
def kernel_path():
    """These tests run each path themselves, so they run once."""
    return None


def channel_major(x: np.ndarray) -> np.ndarray:
    """The same values in (C, N, H, W) memory behind an (N, C, H, W) view."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def max_pool_input(shape, values: str, dtype, layout: str, seed: int) -> np.ndarray:
    """Normal values, 0/1 ties, or normal values with 20% NaN, in either layout."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, shape) if values == "ties" else rng.standard_normal(shape)
    if values == "nan":
        x[rng.random(shape) < 0.2] = np.nan
    x = x.astype(dtype)
    return channel_major(x) if layout == "channel-major" else x


def is_channel_major(a: np.ndarray) -> bool:
    return a.strides[0] < a.strides[1]


def in_layout_of(a: np.ndarray, x: np.ndarray) -> bool:
    """a is dense in x's layout: (N, C, H, W) memory, or (C, N, H, W) when x is channel-major."""
    return (a.transpose(1, 0, 2, 3) if is_channel_major(x) else a).flags.c_contiguous


@st.composite
def inputs(draw, window=(1, 1)):
    """(N, C, H, W) values of a dtype and layout: normal, tied (0, 1, 2) or with NaN."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
        window[0] + draw(st.integers(0, 6)),
        window[1] + draw(st.integers(0, 6)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = draw(st.sampled_from(["normal", "ties", "nan"]))
    x = rng.integers(0, 3, shape) if values == "ties" else rng.standard_normal(shape)
    if values == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    x = x.astype(dtype)
    return channel_major(x) if draw(st.booleans()) else x


def run(fn, x: np.ndarray, gy: np.ndarray, path: str):
    """fn's output and input gradient on one kernel path."""
    with kernels.using(path):
        t = kl.Tensor(x, requires_grad=True)
        y = fn(t)
        y.backward(gy)
    return y.array, t.grad.array


def check(fn, torch_fn, x: np.ndarray, seed: int, exact: bool) -> None:
    """Compiled against the NumPy path (values, dtype, layout) and against PyTorch."""
    expected = torch_fn(torch.tensor(x, requires_grad=True))
    gy = np.random.default_rng(seed).standard_normal(expected.shape).astype(x.dtype)
    gy = channel_major(gy) if is_channel_major(x) else gy
    (y, gx), (y_ref, gx_ref) = run(fn, x, gy, "numba"), run(fn, x, gy, "numpy")
    tol = TOL[x.dtype.type]
    for ours, ref, what in ((y, y_ref, "output"), (gx, gx_ref, "input gradient")):
        assert ours.dtype == x.dtype, what
        assert in_layout_of(ours, x), f"{what}: memory layout"
        if exact:
            np.testing.assert_array_equal(ours, ref, err_msg=what)
        else:
            assert_rel_close(ours, ref, tol, what)
    assert_rel_close(y, expected.detach().numpy(), tol, "output against PyTorch")
    if np.isinf(y).any():
        return  # a window of padding only: no input for PyTorch to route its gradient to
    t = torch.tensor(x, requires_grad=True)
    torch_fn(t).backward(torch.from_numpy(np.ascontiguousarray(gy)))
    assert_rel_close(gx, t.grad.numpy(), tol, "input gradient against PyTorch")


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_max_pool(data, seed):
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    kwargs = {
        "kernel_size": kernel,
        "stride": data.draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * 2))),
        "padding": (data.draw(st.integers(0, kernel[0] // 2)), data.draw(st.integers(0, 1))),
        "dilation": (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))),
        "ceil_mode": data.draw(st.booleans()),
    }
    kwargs["padding"] = (kwargs["padding"][0], min(kwargs["padding"][1], kernel[1] // 2))
    window = tuple(d * (k - 1) + 1 for d, k in zip(kwargs["dilation"], kernel, strict=True))
    x = data.draw(inputs(window))
    # overlapping windows add gradients in another order than the reference: not bit-equal
    stride = kernel if kwargs["stride"] is None else kwargs["stride"]
    disjoint = min(np.subtract(stride, window)) >= 0
    check(
        lambda t: F.max_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.max_pool2d(t, **kwargs),
        x,
        seed,
        exact=disjoint,
    )


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_max_pool_without_a_graph(data, seed):
    """The maxima alone: NumPy's strided ones, or the 2x2 kernel compiled without arg-max."""
    x = data.draw(inputs((3, 3)))
    kwargs = data.draw(
        st.sampled_from(
            [{"kernel_size": 3, "stride": stride, "padding": 1} for stride in (1, 2, 3)]
            + [{"kernel_size": 2}]
        )
    )
    with kernels.using("numba"), kl.no_grad():
        y = F.max_pool2d(kl.Tensor(x), **kwargs).array
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), **kwargs).numpy()
    np.testing.assert_array_equal(y, expected)


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_avg_pool(data, seed):
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    kwargs = {
        "kernel_size": kernel,
        "stride": data.draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * 2))),
        "padding": (data.draw(st.integers(0, kernel[0] // 2)), data.draw(st.integers(0, 1))),
        "ceil_mode": data.draw(st.booleans()),
        "count_include_pad": data.draw(st.booleans()),
        "divisor_override": data.draw(st.one_of(st.none(), st.integers(1, 5))),
    }
    kwargs["padding"] = (kwargs["padding"][0], min(kwargs["padding"][1], kernel[1] // 2))
    check(
        lambda t: F.avg_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.avg_pool2d(t, **kwargs),
        data.draw(inputs(kernel)),
        seed,
        exact=False,
    )


@given(
    data=st.data(),
    output_size=st.one_of(st.just(1), st.tuples(st.integers(1, 4), st.integers(1, 4))),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool(data, output_size, seed):
    check(
        lambda t: F.adaptive_avg_pool2d(t, output_size),
        lambda t: torch.nn.functional.adaptive_avg_pool2d(t, output_size),
        data.draw(inputs()),
        seed,
        exact=False,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["normal", "ties", "nan"])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
@pytest.mark.parametrize("size", [(6, 8), (7, 9)])
def test_max_pool_2x2_stride_2(dtype, values, layout, size):
    """The 2x2, stride 2 kernels (written out cell by cell): ties go to the first cell, NaN to
    the last NaN, and an odd last row and column (in no window) get no gradient."""
    x = max_pool_input((2, 3) + size, values, dtype, layout, seed=7)
    check(
        lambda t: F.max_pool2d(t, 2),
        lambda t: torch.nn.functional.max_pool2d(t, 2),
        x,
        seed=8,
        exact=True,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["normal", "ties", "nan"])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
@pytest.mark.parametrize(("size", "padding", "ceil_mode"), [((9, 8), 1, False), ((8, 11), 0, True)])
def test_max_pool_3x3_stride_2(dtype, values, layout, size, padding, ceil_mode):
    """The 3x3, stride 2 kernel (nine cells written out, the borders by the general loop):
    ties go to the first cell, NaN to the last NaN, as in the reference, bit for bit."""
    x = max_pool_input((2, 3) + size, values, dtype, layout, seed=13)
    kwargs = {"kernel_size": 3, "stride": 2, "padding": padding, "ceil_mode": ceil_mode}
    check(
        lambda t: F.max_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.max_pool2d(t, **kwargs),
        x,
        seed=14,
        exact=False,  # overlapping windows add gradients in another order
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
@pytest.mark.parametrize(("size", "divisor_override"), [((6, 8), None), ((7, 9), 3)])
def test_avg_pool_2x2_stride_2(dtype, layout, size, divisor_override):
    """The 2x2, stride 2 kernels: sums in the reference's order (so equal to it), and an odd
    last row and column (in no window) get no gradient."""
    x = np.random.default_rng(11).standard_normal((2, 3) + size).astype(dtype)
    x = channel_major(x) if layout == "channel-major" else x
    kwargs = {"kernel_size": 2, "divisor_override": divisor_override}
    check(
        lambda t: F.avg_pool2d(t, **kwargs),
        lambda t: torch.nn.functional.avg_pool2d(t, **kwargs),
        x,
        seed=12,
        exact=True,
    )


@pytest.mark.parametrize("path", ["numba", "numpy"])
@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 3}])
def test_max_pool_non_finite_gradient_stays_at_the_arg_max(path, kwargs):
    """An inf or NaN output gradient reaches its window's arg-max only; the other pixels get
    0, as in PyTorch (not inf·0 = NaN)."""
    x = np.random.default_rng(9).standard_normal((1, 2, 6, 6))
    expected = torch.nn.functional.max_pool2d(torch.tensor(x, requires_grad=True), **kwargs)
    gy = np.ones(expected.shape)
    gy[0, 0, 0, 0], gy[0, 1, 1, 1] = np.inf, np.nan
    with kernels.using(path):
        t = kl.Tensor(x, requires_grad=True)
        F.max_pool2d(t, **kwargs).backward(gy)
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(theirs, **kwargs).backward(torch.from_numpy(gy))
    np.testing.assert_array_equal(t.grad.array, theirs.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_gradient_read_from_a_padded_view(dtype):
    """An output gradient as a convolution's input gradient comes: a channel-major view with
    the padding cut off (gaps between rows and planes), read in place."""
    rng = np.random.default_rng(10)
    x = channel_major(rng.standard_normal((2, 3, 8, 6)).astype(dtype))
    padded = rng.standard_normal((3, 2, 4 + 4, 3 + 4)).astype(dtype)  # (C, N, OH + 4, OW + 4)
    gy = padded[:, :, 2:-2, 2:-2].transpose(1, 0, 2, 3)  # (N, C, OH, OW) view
    (_, gx), (_, gx_ref) = (
        run(lambda t: F.max_pool2d(t, 2), x, gy, "numba"),
        run(lambda t: F.max_pool2d(t, 2), x, gy, "numpy"),
    )
    np.testing.assert_array_equal(gx, gx_ref)
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2).backward(torch.from_numpy(np.ascontiguousarray(gy)))
    np.testing.assert_array_equal(gx, t.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major"])
def test_global_avg_pool_shared_between_threads(dtype, layout, threads):
    """64x40 planes of 10x10 (256K elements, 4 chunks of planes) on the team."""
    x = max_pool_input((64, 40, 10, 10), "normal", dtype, layout, seed=5)
    check(
        lambda t: F.adaptive_avg_pool2d(t, 1),
        lambda t: torch.nn.AdaptiveAvgPool2d(1)(t),
        x,
        5,
        False,
    )
