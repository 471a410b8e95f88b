"""geometry: the "same" rule, output sizes and window counts against PyTorch on randomized
settings, the window helpers against their definition, and the error messages."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kernelab.core.errors import ShapeError
from kernelab.functional.geometry import (
    adaptive_bins,
    conv_geometry,
    normalize_padding,
    offsets,
    pool_geometry,
    pool_output_length,
    same_padding,
    window_coordinates,
    window_counts,
    windows,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

tF = torch.nn.functional
kernels = st.tuples(st.integers(1, 6), st.integers(1, 6))  # even sizes included
dilations = st.tuples(st.integers(1, 3), st.integers(1, 3))
strides = st.tuples(st.integers(1, 4), st.integers(1, 4))


def zeros(*shape):
    return torch.zeros(shape, dtype=torch.float64)


def test_valid_padding_and_pool_defaults_are_pytorchs():
    """Padding "valid" is none; a pool's window defaults to nn.MaxPool2d(3)'s: stride 3, no
    padding, no dilation."""
    assert normalize_padding("valid", (3, 2), (2, 1), (2, 2)) == ((0, 0), (0, 0))
    geometry = pool_geometry((1, 1, 9, 9), 3)
    pool = torch.nn.MaxPool2d(3)
    assert geometry.stride == (pool.stride,) * 2 and geometry.dilation == (pool.dilation,) * 2
    assert geometry.padding == ((pool.padding,) * 2,) * 2


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@given(kernel=kernels, dilation=dilations, h=st.integers(1, 9), w=st.integers(1, 9))
def test_same_padding_is_pytorchs_split(kernel, dilation, h, w):
    # PyTorch's own "same" equals a plain convolution of the input padded by our split
    rng = np.random.default_rng(h * 10 + w)
    x = torch.from_numpy(rng.standard_normal((1, 2, h, w)))
    k = torch.from_numpy(rng.standard_normal((3, 2) + kernel))
    (top, bottom), (left, right) = normalize_padding("same", kernel, (1, 1), dilation)
    assert (top, bottom) == same_padding(kernel[0], dilation[0])
    assert bottom - top in (0, 1) and top + bottom == dilation[0] * (kernel[0] - 1)
    theirs = tF.conv2d(x, k, padding="same", dilation=dilation)
    ours = tF.conv2d(tF.pad(x, (left, right, top, bottom)), k, dilation=dilation)
    assert (
        theirs.shape[2:] == (h, w) == conv_geometry(kernel, 1, "same", dilation).output_size(h, w)
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@st.composite
def conv_settings(draw):
    kernel, stride, dilation = draw(kernels), draw(strides), draw(dilations)
    padding = draw(
        st.one_of(
            st.integers(0, 3),
            st.tuples(st.integers(0, 3), st.integers(0, 3)),
            st.just("valid"),
            st.tuples(
                st.tuples(st.integers(0, 3), st.integers(0, 3)),
                st.tuples(st.integers(0, 3), st.integers(0, 3)),
            ),
        )
    )
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    return kernel, stride, padding, dilation, h, w


@given(settings=conv_settings())
def test_conv_output_size_matches_pytorch(settings):
    kernel, stride, padding, dilation, h, w = settings
    geometry = conv_geometry(kernel, stride, padding, dilation)
    (top, bottom), (left, right) = geometry.padding
    x = tF.pad(zeros(1, 1, h, w), (left, right, top, bottom))
    if min(x.shape[2:]) < 1 or min(np.subtract(x.shape[2:], geometry.window)) < 0:
        assert min(geometry.output_size(h, w)) < 1  # the window does not fit
        return
    expected = tF.conv2d(x, zeros(1, 1, *kernel), stride=stride, dilation=dilation).shape[2:]
    assert geometry.output_size(h, w) == tuple(expected)
    assert geometry.output_size(*x.shape[2:], padded=True) == tuple(expected)


@st.composite
def pool_settings(draw, dilation=True):
    kernel = draw(kernels)
    stride = draw(st.one_of(st.none(), strides))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = draw(dilations) if dilation else (1, 1)
    h, w = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    return (1, 1, h, w), kernel, stride, padding, dilation, draw(st.booleans())


@given(settings=pool_settings())
def test_pool_output_size_matches_pytorch_or_both_refuse(settings):
    shape, kernel, stride, padding, dilation, ceil_mode = settings
    try:
        expected = tF.max_pool2d(zeros(*shape), kernel, stride, padding, dilation, ceil_mode)
    except RuntimeError:  # PyTorch: "Output size is too small"
        with pytest.raises(ShapeError, match="is larger than the padded input"):
            pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
        return
    geometry = pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode)
    assert geometry.output_size(*shape[2:]) == tuple(expected.shape[2:])
    for axis in (0, 1):
        s = geometry.stride[axis]
        length = pool_output_length(
            shape[2 + axis], kernel[axis], s, dilation[axis], (padding[axis],) * 2, ceil_mode
        )
        assert length == expected.shape[2 + axis]
        # ceil_mode's extra cells are just what the last window needs
        last_end = (length - 1) * s + geometry.window[axis]
        padded = shape[2 + axis] + 2 * padding[axis]
        assert geometry.padded_size(*shape[2:])[axis] == max(padded, last_end)
        assert geometry.padding[axis][0] == padding[axis]


@given(settings=pool_settings(dilation=False), include_padding=st.booleans())
def test_window_counts_are_pytorchs_average_divisor(settings, include_padding):
    shape, kernel, stride, padding, _, ceil_mode = settings
    ones = torch.ones(shape, dtype=torch.float64)
    try:  # with divisor 1, PyTorch's average pool sums the ones inside the input
        inside = tF.avg_pool2d(ones, kernel, stride, padding, ceil_mode, divisor_override=1)
    except RuntimeError:
        return
    mean = tF.avg_pool2d(ones, kernel, stride, padding, ceil_mode, include_padding)
    divisor = (inside / mean)[0, 0].numpy()
    geometry = pool_geometry(shape, kernel, stride, padding, 1, ceil_mode)
    np.testing.assert_allclose(window_counts(geometry, shape[2:], include_padding), divisor)


@given(size=st.integers(1, 12), out=st.integers(1, 12))
def test_adaptive_bins_are_pytorchs(size, out):
    # pixel j of a one-hot row reaches output i with weight 1/len(bin i) when j is in bin i
    weights = tF.adaptive_avg_pool1d(torch.eye(size, dtype=torch.float64)[:, None], out)[:, 0]
    expected = np.zeros((size, out))
    for i, (start, stop) in enumerate(adaptive_bins(size, out)):
        expected[start:stop, i] = 1 / (stop - start)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [((3, 2), (1, 2), ((1, 0), (2, 1)), (2, 1)), ((2, 3), (3, 1), ((0, 1), (0, 0)), (1, 2))],
)
def test_window_helpers_follow_the_definition(kernel, stride, padding, dilation):
    # output (i, j) reads padded pixel (i·sh + p·dh, j·sw + q·dw) for kernel cell (p, q)
    geometry = conv_geometry(kernel, stride, padding, dilation)
    h, w = 7, 8
    xp = np.arange(np.prod(geometry.padded_size(h, w))).reshape((1, 1) + geometry.padded_size(h, w))
    oh, ow = geometry.output_size(h, w)
    (sh, sw), (dh, dw), (top, _), (left, _) = stride, dilation, *geometry.padding
    view = windows(xp, geometry)
    assert view.shape == (1, 1, oh, ow) + kernel
    for i in range(oh):
        for j in range(ow):
            rows, cols = window_coordinates(geometry, i, j)
            for p in range(kernel[0]):
                for q in range(kernel[1]):
                    pixel = xp[0, 0, i * sh + p * dh, j * sw + q * dw]
                    assert view[0, 0, i, j, p, q] == pixel
                    assert (rows[p] + top, cols[q] + left) == (i * sh + p * dh, j * sw + q * dw)
    for p, q, rows, columns in offsets(geometry, (oh, ow)):
        np.testing.assert_array_equal(xp[0, 0, rows, columns], view[0, 0, :, :, p, q])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: conv_geometry(3, stride=2, padding="same"), ValueError, r"needs stride 1, got"),
        (lambda: conv_geometry(3, padding="full"), ValueError, "must be 'valid', 'same'"),
        (lambda: conv_geometry(3, padding=((1, 0), (0, -1))), ValueError, "must not be negative"),
        (lambda: conv_geometry((3, 3, 3)), ValueError, "kernel_size must be an int or a pair"),
        (lambda: conv_geometry(3, stride=True), ValueError, "stride must be an int or a pair"),
        (lambda: conv_geometry(0), ValueError, r"kernel_size must be positive, got \(0, 0\)"),
        (lambda: conv_geometry(3, groups=0), ValueError, "groups must be a positive int"),
        (
            lambda: pool_geometry((1, 1, 8, 8), 2, padding=2, name="max_pool2d"),
            ValueError,
            r"max_pool2d: padding 2 must be at most half the kernel size \(2, 2\)",
        ),
        (
            lambda: pool_geometry((8, 8), 2, name="avg_pool2d"),
            ShapeError,
            r"avg_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(8, 8\)",
        ),
        (
            lambda: pool_geometry((1, 1, 4, 4), 3, dilation=2, name="max_pool2d"),
            ShapeError,
            r"max_pool2d: window 5x5 is larger than the padded input 4x4",
        ),
    ],
)
def test_errors_say_what_was_expected_and_received(call, error, message):
    with pytest.raises(error, match=message):
        call()
