"""The thin-input convolution (conv_thin_compiled.py): its forward and kernel gradient against
PyTorch, the NumPy GEMM and central differences, driven on channel-major arrays as ``conv2d``
drives them."""

import numpy as np
import pytest
import torch
from conv_runs import run, torch_reference
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import conv_thin_compiled as thin
from kernelab.functional import conv_thin_source
from kernelab.functional.conv_algorithms import Gemm, choose
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True, scope="module")
def thin_kernels_run():
    """The thin kernels run, compiled if need be: on an empty cache they would otherwise leave
    their passes to the GEMM (see the module)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("KERNELAB_DIRECT_CONV", "1")
    yield
    patch.undo()


TOL = {np.float64: 1e-9, np.float32: 2e-4}


@st.composite
def cases(draw):
    """A thin convolution: 1-4 input channels, kernel 1-7 (non-square too), stride,
    dilation, asymmetric padding, output channels that are not multiples of the blocks,
    images narrower than a vector."""
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1), (3, 1)]))
    dilation = draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2)]))
    padding = tuple(tuple(draw(st.integers(0, 3)) for _ in range(2)) for _ in range(2))
    geometry = conv_geometry((kh, kw), stride, padding, dilation, 1)
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 21))
    eh, ew = geometry.window
    h = max(1, eh - sum(padding[0])) + draw(st.integers(0, 6))
    width = max(1, ew - sum(padding[1])) + draw(st.integers(0, 24))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c_in, h, width), (c_out, c_in, kh, kw), geometry, dtype


# one forward and one kernel gradient per dtype serve every case: four compiled kernels
@settings(max_examples=25, deadline=None)
@given(case=cases(), bias=st.booleans())
def test_matches_torch_and_the_numpy_gemm(case, bias):
    x_shape, w_shape, geometry, dtype = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    tol = TOL[dtype]
    y, gx, gw, gy = run(thin.ThinCompiled, x, w, b, geometry)
    assert y.dtype == gx.dtype == gw.dtype == dtype
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(y, ty, tol, "forward vs torch")
    assert_rel_close(gx, tgx, tol, "input gradient vs torch")
    assert_rel_close(gw, tgw, tol, "kernel gradient vs torch")
    with kl.backends.kernels.using("numpy"):
        ry, rgx, rgw, _ = run(Gemm, x, w, b, geometry)
    assert_rel_close(y, ry, tol, "forward vs the NumPy GEMM")
    assert_rel_close(gw, rgw, tol, "kernel gradient vs the NumPy GEMM")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_layers_match_torch(dtype):
    # the classic network's and the CIFAR networks' first layers at full size: the kernel
    # gradient sums 50,176 and 65,536 terms per weight
    rng = np.random.default_rng(3)
    for x_shape, w_shape, padding in (
        ((64, 1, 28, 28), (32, 1, 5, 5), 2),
        ((64, 3, 32, 32), (16, 3, 3, 3), 1),
    ):
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        geometry = conv_geometry(w_shape[2:], 1, padding, 1, 1)
        y, _, gw, gy = run(thin.ThinCompiled, x, w, b, geometry, (False, True, True))
        ty, _, tgw = torch_reference(x, w, b, geometry, gy)
        assert_rel_close(y, ty, TOL[dtype], "forward")
        assert_rel_close(gw, tgw, TOL[dtype] / 10, "kernel gradient")


def test_gradients_match_finite_differences(kernel_path):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((5, 3, 3, 2))
    b = rng.standard_normal(5)

    def conv(x, w, b):
        return F.conv2d(x, w, b, stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1))

    check_gradients(conv, [x, w, b])


def test_integer_inputs_run_the_gemm():
    x = np.arange(2 * 1 * 5 * 5).reshape(2, 1, 5, 5)
    w = np.ones((3, 1, 2, 2), np.int64)
    geometry = conv_geometry(2, 1, 0, 1, 1)
    y, _, _, _ = run(thin.ThinCompiled, x, w, None, geometry, (False, False, False))
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    np.testing.assert_array_equal(y, expected)


def test_choose_takes_it_for_thin_layers_on_the_compiled_path(kernel_path):
    thin_5x5 = conv_geometry(5, 1, 2, 1, 1)
    expected = thin.ThinCompiled if kernel_path == "numba" else Gemm
    assert choose(thin_5x5, (32, 1, 5, 5)) is expected
    assert choose(conv_geometry(3, 2, 1, 1, 1), (16, 4, 3, 3)) is expected
    assert choose(thin_5x5, (32, 5, 5, 5)) is Gemm  # five channels: not thin
    assert choose(conv_geometry(3, 1, 1, 1, 2), (8, 2, 3, 3)) is Gemm  # groups


def test_tap_table_finds_each_tap_in_the_planes():
    geometry = conv_geometry((3, 2), (2, 3), 0, (3, 2), 1)
    table = thin.taps(geometry, 2, ow=5)
    assert table.shape[1] % thin.BLOCK[1] == 0
    # tap (c=1, p=2, q=1): plane (c·kW + q)·sh + p·dh mod sh = 3·2 + 0, from row 3 on
    assert tuple(table[:, 1 * 6 + 2 * 2 + 1]) == (6, 3 * 5)


def test_generated_source_compiles():
    for text in (
        conv_thin_source.correlation_source(8, 16),
        conv_thin_source.kernel_gradient_source(4, 5),
    ):
        compile(text, "<generated>", "exec")
    assert "a3_4 += g3u * x" in conv_thin_source.kernel_gradient_source(4, 5)


def test_an_empty_batch():
    x, w = np.zeros((0, 2, 8, 8), np.float32), np.ones((4, 2, 3, 3), np.float32)
    geometry = conv_geometry(3, 1, 1, 1, 1)
    y, _, gw, _ = run(thin.ThinCompiled, x, w, None, geometry, (False, True, False))
    assert y.shape == (0, 4, 8, 8) and gw.shape == w.shape and not gw.any()


def test_kernels_not_ready_leave_their_passes_to_the_gemm(monkeypatch):
    """Without the kernels in the cache (auto mode) a layer runs the GEMM, bit for bit."""
    monkeypatch.setattr(thin.conv_generated, "ready", lambda kernel, args: False)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 1, 9, 11)), rng.standard_normal((6, 1, 3, 3))
    b = rng.standard_normal(6)
    geometry = conv_geometry(3, 1, 1, 1, 1)
    y, gx, gw, gy = run(thin.ThinCompiled, x, w, b, geometry)
    gemm_y, gemm_gx, gemm_gw, _ = run(Gemm, x, w, b, geometry)
    for ours, gemm in ((y, gemm_y), (gx, gemm_gx), (gw, gemm_gw)):
        np.testing.assert_array_equal(ours, gemm)


def test_in_auto_mode_a_layer_asks_whether_its_kernels_are_cached(monkeypatch):
    """Auto mode asks numba's cache for both kernels, with the arguments they are run with;
    cached or not, the layer's results are right."""
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "auto")
    asked = []
    ready = thin.conv_generated.ready

    def spy(kernel, args):
        asked.append(kernel.__name__)
        return ready(kernel, args)

    monkeypatch.setattr(thin.conv_generated, "ready", spy)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 1, 9, 11)), rng.standard_normal((6, 1, 3, 3))
    geometry = conv_geometry(3, 1, 1, 1, 1)
    y, _, gw, gy = run(thin.ThinCompiled, x, w, None, geometry)
    ty, _, tgw = torch_reference(x, w, None, geometry, gy)
    assert_rel_close(y, ty, TOL[np.float64], "forward")
    assert_rel_close(gw, tgw, TOL[np.float64], "kernel gradient")
    assert any(name.startswith("thin_correlate") for name in asked)
    assert any(name.startswith("thin_kernel_gradient") for name in asked)


def test_the_off_switch_keeps_the_gemm_whatever_the_cache_holds(monkeypatch):
    """``KERNELAB_DIRECT_CONV=0``: no generated kernel runs, though this layer's are compiled
    in this process; the layer computes the GEMM's numbers, to the bit."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 1, 9, 11)), rng.standard_normal((6, 1, 3, 3))
    geometry = conv_geometry(3, 1, 1, 1, 1)
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "1")
    run(thin.ThinCompiled, x, w, None, geometry)  # compiled now, in this process
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "0")
    ran, share = [], thin.conv_compiled.share

    def spy(kernel, *args):  # the GEMM's im2col and col2im run through it too
        ran.append(kernel.__name__)
        return share(kernel, *args)

    monkeypatch.setattr(thin.conv_compiled, "share", spy)
    off = run(thin.ThinCompiled, x, w, None, geometry)
    gemm = run(Gemm, x, w, None, geometry)
    assert not [name for name in ran if name.startswith("thin_")]
    for ours, theirs in zip(off[:3], gemm[:3], strict=True):
        np.testing.assert_array_equal(ours, theirs)
