"""The 1x1 convolution's own algorithm (conv_algorithms.Pointwise): per-sample products in the
batch-first layout, against PyTorch, at strides 1 and 2, from both layouts."""

import numpy as np
import pytest
from conv_runs import check_only_asked_gradients, run, torch_reference
from gradcheck import assert_rel_close

import kernelab as kl
import kernelab.functional as F
from kernelab.functional.conv_algorithms import Gemm, Pointwise, choose
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("channel_major", [False, True])
def test_every_pass_matches_torch(dtype, stride, channel_major):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 6)).astype(dtype)
    if channel_major:  # as a convolution's output: (C, N, H, W) memory
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    w, b = rng.standard_normal((4, 5, 1, 1)).astype(dtype), rng.standard_normal(4).astype(dtype)
    geometry = conv_geometry(1, stride, 0, 1, 1)
    y, gx, gw, gy = run(Pointwise, x, w, b, geometry)
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert ours.dtype == dtype
        assert_rel_close(ours, theirs, TOL[dtype], what)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False)])
@pytest.mark.parametrize("stride", [1, 2])
def test_computes_only_the_gradients_asked_for(needs, stride):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((5, 3, 1, 1))
    check_only_asked_gradients(Pointwise, x, w, conv_geometry(1, stride, 0, 1, 1), needs)


def test_a_layer_through_the_api_matches_torch():
    # batch-first gradients, the bias gradient from the batch-first output gradient
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 6, 5, 5)), rng.standard_normal((7, 6, 1, 1)), np.ones(7)
    xt, wt, bt = (kl.tensor(a, requires_grad=True) for a in (x, w, b))
    gy = rng.standard_normal((4, 7, 3, 3))
    F.conv2d(xt, wt, bt, stride=2).backward(gy)
    _, tgx, tgw = torch_reference(x, w, b, conv_geometry(1, 2, 0, 1, 1), gy)
    assert_rel_close(xt.grad.array, tgx, 1e-9, "input gradient")
    assert_rel_close(wt.grad.array, tgw, 1e-9, "kernel gradient")
    assert_rel_close(bt.grad.array, gy.sum(axis=(0, 2, 3)), 1e-9, "bias gradient")


def test_choose_takes_it_for_unpadded_1x1_kernels():
    assert choose(conv_geometry(1, 1, 0, 1, 1), (64, 32, 1, 1)) is Pointwise
    assert choose(conv_geometry(1, 2, 0, 1, 1), (64, 32, 1, 1)) is Pointwise
    assert choose(conv_geometry(1, 1, 1, 1, 1), (64, 32, 1, 1)) is not Pointwise  # padded
    assert choose(conv_geometry(1, 1, 0, 1, 2), (64, 16, 1, 1)) is Gemm  # groups
