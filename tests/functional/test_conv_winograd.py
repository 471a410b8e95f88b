"""Winograd convolution (conv_winograd.py), F(2x2, 3x3) and F(4x4, 3x3): its passes against
PyTorch on random shapes, its gradients against finite differences, and where ``conv2d``
routes to it."""

import types

import numpy as np
import pytest
import torch
from conv_runs import check_only_asked_gradients, run, torch_reference
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import conv_winograd
from kernelab.functional.conv_algorithms import Gemm, choose
from kernelab.functional.conv_direct_compiled import DirectCompiled
from kernelab.functional.conv_winograd import Winograd
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


class TwoByTwo(Winograd):
    """F(2x2, 3x3)."""

    tile = 2


class FourByFour(Winograd):
    """F(4x4, 3x3)."""

    tile = 4


TILES = [TwoByTwo, FourByFour]


@pytest.fixture(autouse=True, scope="module")
def tiny_layers_too():
    """The tests' small convolutions would run the GEMM's passes (MIN_FLOPS)."""
    before, conv_winograd.MIN_FLOPS = conv_winograd.MIN_FLOPS, 0
    yield
    conv_winograd.MIN_FLOPS = before


@pytest.fixture
def compiled_only(kernel_path):
    """The algorithm runs on numba whatever the path; once is enough."""
    if kernel_path == "numpy":
        pytest.skip("Winograd runs on the compiled path only; the NumPy path keeps the GEMM")


@st.composite
def cases(draw):
    """A stride-1 3x3 convolution: odd and even sizes, asymmetric padding (up to 3, past the
    kernel's reach), batch 1-3, 1-64 channels."""
    padding = tuple(tuple(draw(st.integers(0, 3)) for _ in range(2)) for _ in range(2))
    h = max(1, 3 - sum(padding[0])) + draw(st.integers(0, 9))
    w = max(1, 3 - sum(padding[1])) + draw(st.integers(0, 9))
    n = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c_in, h, w), (c_out, c_in, 3, 3), conv_geometry(3, 1, padding, 1, 1), dtype


@pytest.mark.usefixtures("compiled_only")
@pytest.mark.parametrize("algorithm", TILES)
@settings(max_examples=20, deadline=None)
@given(case=cases(), bias=st.booleans())
def test_every_pass_matches_torch(algorithm, case, bias):
    x_shape, w_shape, geometry, dtype = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    y, gx, gw, gy = run(algorithm, x, w, b, geometry)
    assert y.dtype == gx.dtype == gw.dtype == dtype
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(y, ty, TOL[dtype], "forward")
    assert_rel_close(gx, tgx, TOL[dtype], "input gradient")
    assert_rel_close(gw, tgw, TOL[dtype], "kernel gradient")


@pytest.mark.usefixtures("compiled_only")
@pytest.mark.parametrize("algorithm", TILES)
def test_float32_error_at_128_channels(algorithm):
    # the transforms' rounding adds up over C_in: the widest layers part furthest from PyTorch
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 128, 8, 9)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) / np.sqrt(9 * 128)).astype(np.float32)
    geometry = conv_geometry(3, 1, 1, 1, 1)
    y, gx, _, gy = run(algorithm, x, w, None, geometry, needs=(True, False, False))
    ty, tgx, _ = torch_reference(x, w, None, geometry, gy)
    assert_rel_close(y, ty, 2e-4, "forward")
    assert_rel_close(gx, tgx, 2e-4, "input gradient")


@pytest.mark.usefixtures("compiled_only")
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False)])
def test_computes_only_the_gradients_asked_for(needs):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    geometry = conv_geometry(3, 1, ((1, 0), (2, 1)), 1, 1)
    check_only_asked_gradients(Winograd, x, w, geometry, needs)


@pytest.mark.parametrize("tile", ["2", "4"])
@pytest.mark.parametrize("padding", [1, ((0, 2), (1, 0))])
def test_gradients_match_finite_differences(kernel_path, monkeypatch, padding, tile):
    monkeypatch.setattr(conv_winograd, "MIN_CHANNELS", 1)  # route this small layer to it
    monkeypatch.setenv("KERNELAB_WINOGRAD_TILE", tile)  # 4: the kernel gradient's too
    rng = np.random.default_rng(7)
    # 5 input channels: fewer go to the thin layers' own convolution
    x, w, b = rng.standard_normal((1, 5, 5, 4)), rng.standard_normal((3, 5, 3, 3)), np.ones(3)
    expected = Winograd if kernel_path == "numba" else Gemm
    assert choose(conv_geometry(3, 1, padding, 1, 1), w.shape) is expected
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, padding=padding), [x, w, b])


@pytest.mark.usefixtures("compiled_only")
def test_small_convolutions_run_the_gemm(monkeypatch):
    monkeypatch.setattr(conv_winograd, "MIN_FLOPS", 5e7)
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((1, 16, 8, 8)), rng.standard_normal((16, 16, 3, 3))
    geometry = conv_geometry(3, 1, 1, 1, 1)
    ctx = types.SimpleNamespace(needs_input_grad=(True, True, False))
    Winograd.forward(ctx, x.transpose(1, 0, 2, 3), w, None, geometry)
    assert ctx.small and hasattr(ctx, "direct")  # the GEMM's context
    y, gx, gw, gy = run(Winograd, x, w, None, geometry)
    ty, tgx, tgw = torch_reference(x, w, None, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert_rel_close(ours, theirs, 1e-9, what)


def test_the_larger_tile_is_opt_in(monkeypatch):
    monkeypatch.delenv("KERNELAB_WINOGRAD_TILE", raising=False)
    assert conv_winograd.default_tile() == 2
    monkeypatch.setenv("KERNELAB_WINOGRAD_TILE", "4")
    assert conv_winograd.default_tile() == 4


def test_choose_routes_plain_3x3_layers_on_the_compiled_path(kernel_path, monkeypatch):
    plain = conv_geometry(3, 1, 1, 1, 1)
    # the direct convolution's per-pass routing, which gives Winograd the input gradient
    assert (choose(plain, (64, 32, 3, 3)) is DirectCompiled) == (kernel_path == "numba")
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "0")  # without it, Winograd alone
    assert (choose(plain, (64, 32, 3, 3)) is Winograd) == (kernel_path == "numba")
    others = [
        (plain, (16, 8, 3, 3)),  # too few input channels
        (conv_geometry(3, 2, 1, 1, 1), (64, 32, 3, 3)),
        (conv_geometry(3, 1, 2, 2, 1), (64, 32, 3, 3)),
        (conv_geometry(3, 1, 1, 1, 2), (64, 16, 3, 3)),
        (conv_geometry(5, 1, 2, 1, 1), (64, 32, 5, 5)),
    ]
    for geometry, w_shape in others:
        assert choose(geometry, w_shape) is not Winograd, (geometry, w_shape)


def test_a_layer_through_the_api_matches_torch(kernel_path):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 16, 9, 10)).astype(np.float32)
    layer = kl.nn.Conv2d(16, 24, 3, padding=1)
    reference = torch.nn.Conv2d(16, 24, 3, padding=1)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.array))
        reference.bias.copy_(torch.tensor(layer.bias.array))
    out = layer(kl.Tensor(x, requires_grad=True))
    out.sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    expected = reference(xt)
    expected.sum().backward()
    assert_rel_close(out.array, expected.detach().numpy(), 2e-4, "forward")
    assert_rel_close(layer.weight.grad.array, reference.weight.grad.numpy(), 2e-4, "kernel")
