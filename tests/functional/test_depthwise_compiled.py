"""The compiled depthwise convolution against PyTorch and against the NumPy algorithm it
stands in for, driven directly on channel-major arrays as ``conv2d`` drives them."""

import numpy as np
import pytest
from conv_runs import check_only_asked_gradients, run, torch_reference
from gradcheck import assert_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st

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
