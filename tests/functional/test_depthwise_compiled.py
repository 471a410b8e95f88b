"""The compiled depthwise convolution against PyTorch and against the NumPy algorithm it
stands in for, driven directly on channel-major arrays as ``conv2d`` drives them."""

import types

import numpy as np
import pytest
from conv_runs import check_only_asked_gradients, run, torch_reference
from gradcheck import assert_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelab.core import jit
from kernelab.functional.conv import input_gradient, pad
from kernelab.functional.conv_algorithms import Depthwise
from kernelab.functional.depthwise_compiled import DepthwiseCompiled
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


def check(algorithm, reference, x, w, b, geometry):
    """``algorithm`` against PyTorch and against the NumPy ``reference`` algorithm."""
    tol = TOL[x.dtype.type]
    y, gx, gw, gy = run(algorithm, x, w, b, geometry)
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert y.dtype == gx.dtype == gw.dtype == x.dtype
    assert_rel_close(y, ty, tol, "forward vs torch")
    assert_rel_close(gx, tgx, tol, "input gradient vs torch")
    assert_rel_close(gw, tgw, tol, "kernel gradient vs torch")
    ry, rgx, rgw, _ = run(reference, x, w, b, geometry)
    assert_rel_close(y, ry, tol, "forward vs NumPy")
    assert_rel_close(gx, rgx, tol, "input gradient vs NumPy")
    assert_rel_close(gw, rgw, tol, "kernel gradient vs NumPy")


def depthwise_case(draw):
    """A random depthwise configuration: shapes, stride, dilation, asymmetric padding."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (3, 1)]))
    dilation = draw(st.sampled_from([(1, 1), (2, 1), (1, 2)]))
    padding = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    c_in, mult, n = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(dilation[0] * (kh - 1) + 1, 11))
    width = draw(st.integers(dilation[1] * (kw - 1) + 1, 11))
    geometry = conv_geometry((kh, kw), stride, padding, dilation, c_in)
    return (n, c_in, h, width), (c_in * mult, 1, kh, kw), geometry


@settings(max_examples=30)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), bias=st.booleans())
def test_depthwise_compiled_matches_torch_and_numpy(data, dtype, bias):
    x_shape, w_shape, geometry = depthwise_case(data.draw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    check(DepthwiseCompiled, Depthwise, x, w, b, geometry)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False)])
def test_depthwise_compiled_computes_only_the_gradients_asked_for(stride, needs):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((6, 1, 3, 3))
    geometry = conv_geometry((3, 3), stride, 1, 1, 3)
    check_only_asked_gradients(DepthwiseCompiled, x, w, geometry, needs)


def test_depthwise_compiled_reads_channel_major_views():
    """No padding: xp is a transposed view of x, not a padded copy."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 10, 9)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 2)).astype(np.float32)
    check(DepthwiseCompiled, Depthwise, x, w, None, conv_geometry((3, 2), 1, 0, 1, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mult, padding", [(1, "same"), (2, ((0, 2), (1, 0)))])
def test_depthwise_compiled_reads_a_batch_first_gradient(dtype, mult, padding):
    """Through ``conv2d`` with a batch-first output gradient (read in place, not copied):
    input, kernel and bias gradients against PyTorch; the input's gradient is batch-first
    memory on the compiled path, which the input keeps as its ``.grad`` without a copy."""
    import torch

    import kernelab as kl
    import kernelab.nn.functional as F

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 9, 11)).astype(dtype)
    w = rng.standard_normal((4 * mult, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(4 * mult).astype(dtype)
    geometry = conv_geometry((3, 3), 1, padding, 1, 4)
    (top, bottom), (left, right) = geometry.padding
    gy = rng.standard_normal((3, 4 * mult, 9 + top + bottom - 2, 11 + left + right - 2))
    gy = gy.astype(dtype)
    tensors = [kl.tensor(a, requires_grad=True) for a in (x, w, b)]
    F.conv2d(*tensors, padding=padding, groups=4).backward(gy)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    xpt = torch.nn.functional.pad(xt, (left, right, top, bottom))
    torch.nn.functional.conv2d(xpt, wt, bt, groups=4).backward(torch.tensor(gy))
    for ours, theirs, what in zip(tensors, (xt, wt, bt), ("input", "kernel", "bias"), strict=True):
        assert_rel_close(ours.grad.array, theirs.grad.numpy(), TOL[dtype], what + " gradient")
    assert tensors[0].grad.array.flags.c_contiguous or not jit.active()


def test_depthwise_compiled_keeps_nan_and_inf_where_pytorch_does():
    """A NaN and an inf in the output gradient land in the input, kernel and bias gradients
    where PyTorch's land (a sum starts from its first term, never from a product with 0)."""
    x = np.ones((2, 2, 5, 5), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    b = np.ones(2, np.float32)
    geometry = conv_geometry((3, 3), 1, 1, 1, 2)
    ctx = types.SimpleNamespace(needs_input_grad=(True, True, True))
    DepthwiseCompiled.forward(ctx, pad(x.transpose(1, 0, 2, 3), geometry.padding), w, b, geometry)
    gy = np.ones((2, 2, 5, 5), np.float32)  # (C_out, N, OH, OW)
    gy[0, 1, 0, 0], gy[1, 0, 4, 4] = np.nan, np.inf
    gxp, gw = DepthwiseCompiled.backward(ctx, gy)
    _, tgx, tgw = torch_reference(x, w, b, geometry, gy.transpose(1, 0, 2, 3))
    gx = input_gradient(gxp, geometry, x.shape[2:])
    for ours, theirs in ((gx, tgx), (gw, tgw), (ctx.bias_gradient, gy.sum(axis=(1, 2, 3)))):
        assert (np.isnan(ours) == np.isnan(theirs)).all()
        assert (np.isposinf(ours) == np.isposinf(theirs)).all()
