"""The input gradient of strided and dilated convolutions by phases (conv_phases.py): against
PyTorch and the GEMM on random layers, its float32 error against the GEMM's, its phases'
algebra, and ``conv2d``'s routing of the layers it suits.

Each phase's correlation is a generated direct kernel (5-17 s to compile on an empty cache):
these tests keep outputs narrower than 14 (tiles of 8) and sub-kernels at most 3 wide, the
width test_conv_direct_compiled.py compiles; only the float64 layers at random take widths 1
and 2 as well: two more generated kernels, and the two small copies per dtype.
"""

import numpy as np
import pytest
from conv_runs import run, torch_reference
from gradcheck import assert_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelab.functional import conv_direct_compiled as direct
from kernelab.functional import conv_phases
from kernelab.functional.conv import pad
from kernelab.functional.conv_algorithms import Gemm, choose
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


@pytest.fixture(autouse=True)
def _direct_on(monkeypatch):
    """The direct kernels whether or not they are cached: compiled here if need be."""
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "1")


def phases_input_gradient(x, w, geometry, gy):
    """conv_phases.input_gradient (N, C_in, H, W) for x (N, C_in, H, W), gy (N, C_out, ...)."""
    xp = pad(x.transpose(1, 0, 2, 3), geometry.padding)  # (C_in, N, Hp, Wp)
    gy_c = np.ascontiguousarray(gy.transpose(1, 0, 2, 3))  # (C_out, N, OH, OW)
    gx = conv_phases.input_gradient(gy_c, w, geometry, xp.shape)  # (C_in, N, H, W)
    return gx.transpose(1, 0, 2, 3)


@st.composite
def layers(draw):
    """A strided or dilated layer: kernel 1-5 x 1-3, stride 1-3 and dilation 1-3 per axis
    (not both 1), padding 0-2 on each side, odd and even sizes, batch 1 or 2, channel counts
    that are not multiples of the blocks; outputs narrower than 14 (tiles of 8). float64:
    float32 below, on layers whose sub-kernels are 3 wide (no more compiled kernels)."""
    kernel = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if stride == dilation == (1, 1):
        stride = 2, draw(st.integers(1, 3))
    padding = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    geometry = conv_geometry(kernel, stride, padding, dilation, 1)
    eh, ew = geometry.window
    h = max(1, eh - sum(padding[0])) + draw(st.integers(0, 9))
    width = max(1, ew - sum(padding[1])) + draw(st.integers(0, 9))
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 19))
    return (n, c_in, h, width), (c_out, c_in) + kernel, geometry


@settings(max_examples=40, deadline=None)
@given(layer=layers())
def test_input_gradient_matches_torch_and_the_gemm(layer):
    x_shape, w_shape, geometry = layer
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    _, ref, _, gy = run(Gemm, x, w, None, geometry, (True, False, False))
    gx = phases_input_gradient(x, w, geometry, gy)
    assert gx.dtype == np.float64 and gx.shape == x.shape
    assert_rel_close(gx, torch_reference(x, w, None, geometry, gy)[1], 1e-9, "vs torch")
    assert_rel_close(gx, ref, 1e-9, "vs the GEMM")


def test_pixels_no_tap_reaches_get_zeros():
    # stride 2 and dilation 2: odd rows and columns receive nothing; a 1x1 kernel of stride
    # 3: two rows and columns of every three
    rng = np.random.default_rng(1)
    for kernel, stride, dilation in (((3, 2), 2, 2), (1, 3, 1)):
        geometry = conv_geometry(kernel, stride, 1, dilation, 1)
        x, w = (
            rng.standard_normal((2, 3, 9, 10)),
            rng.standard_normal((4, 3) + geometry.kernel_size),
        )
        _, _, _, gy = run(Gemm, x, w, None, geometry, (True, False, False))
        gx = phases_input_gradient(x, w, geometry, gy)
        assert_rel_close(gx, torch_reference(x, w, None, geometry, gy)[1], 1e-9, "vs torch")
        reached = np.zeros(x.shape[2:], bool)  # input pixels some tap reads
        (top, _), (left, _) = geometry.padding
        for i, j, p, q in np.ndindex(gy.shape[2:] + geometry.kernel_size):
            row, col = i * stride + p * dilation - top, j * stride + q * dilation - left
            if 0 <= row < x.shape[2] and 0 <= col < x.shape[3]:
                reached[row, col] = True
        assert not reached.all() and np.all(gx[:, :, ~reached] == 0)


@pytest.mark.parametrize(
    "rows, kernel, stride, dilation, before", [(28, 3, 2, 1, 1), (28, 3, 1, 2, 2), (11, 5, 3, 2, 2)]
)
def test_phases_cover_the_rows_once_and_their_taps_the_kernel(
    rows, kernel, stride, dilation, before
):
    out = (rows + 2 * before - dilation * (kernel - 1) - 1) // stride + 1
    step, phases, frames = conv_phases.axis_phases(rows, out, kernel, stride, dilation, before)
    covered = sorted(r for p in phases for r in range(p.first, rows, step))
    assert covered == list(range(rows))
    # every tap meets every sub-grid of the output gradient (rows i ≡ i₀ mod d') in one phase
    grids = dilation // np.gcd(stride, dilation)
    pairs = sorted(
        (t, frames[p.frame].grid.start)
        for p in phases
        if p.taps is not None
        for t in range(kernel)[p.taps]
    )
    assert pairs == [(t, i) for t in range(kernel) for i in range(grids)]
    assert all(p.lead >= 0 for p in phases) and len(frames) == grids


def relative_errors(ours, exact) -> tuple[float, float]:
    """(root mean square, max) of |ours − exact|, each over the same of |exact|."""
    error = ours - exact
    rms = np.sqrt(np.mean(error**2) / np.mean(exact**2))
    return rms, np.abs(error).max() / np.abs(exact).max()


@pytest.mark.parametrize("kernel, stride, dilation", [(6, 2, 1), ((6, 3), (2, 1), 1), (3, 1, 2)])
def test_float32_matches_torch_at_the_gemms_error(kernel, stride, dilation):
    # against PyTorch in float64, mean of 4 draws; 48 output channels (sums of 48 to 48·9
    # terms), weights scaled to unit-scale outputs. The largest error of one draw swings by
    # ±15% between the two (bench/CONV_DIRECT.md, "Phases"): the mean square error is the
    # steady measure
    geometry = conv_geometry(kernel, stride, 2, dilation, 1)
    errors = {"phases": [], "gemm": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((2, 8, 13, 13)).astype(np.float32)
        w = rng.standard_normal((48, 8) + geometry.kernel_size) / np.sqrt(48 * 36)
        w = w.astype(np.float32)
        _, gemm, _, gy = run(Gemm, x, w, None, geometry, (True, False, False), seed)
        wide = [a.astype(np.float64) for a in (x, w, gy)]
        exact = torch_reference(wide[0], wide[1], None, geometry, wide[2])[1]
        ours = phases_input_gradient(x, w, geometry, gy)
        assert ours.dtype == np.float32
        assert_rel_close(ours, exact, TOL[np.float32], "vs torch")
        for name, gx in (("phases", ours), ("gemm", gemm)):
            errors[name].append(relative_errors(gx, exact))
    (rms, largest), (gemm_rms, gemm_largest) = (np.mean(errors[k], axis=0) for k in errors)
    assert rms <= gemm_rms and largest <= 1.25 * gemm_largest, errors


class PhasesOnly(direct.DirectCompiled):
    """The input gradient by phases, the other passes the GEMM's (whose kernels are cheap to
    compile), through DirectCompiled's backward as conv2d runs it."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry):
        ctx.passes = direct.Passes(False, True, False)
        return direct.DirectCompiled.run_forward(ctx, xp, w, b, geometry)


def test_conv2d_routes_large_strided_kernels_here(kernel_path):
    # 6x6 of stride 2 (sub-kernels 3x3): the input gradient by phases on the compiled path
    # (DirectCompiled), the GEMM on NumPy's
    geometry = conv_geometry((6, 3), (2, 1), 2, 1, 1)
    assert conv_phases.suits(geometry) and not conv_phases.suits(conv_geometry(5, 2, 2, 1, 1))
    assert direct.passes(geometry, (16, 16, 6, 3)).input_gradient
    assert direct.passes(conv_geometry(4, 1, 3, 2, 1), (16, 16, 4, 4)).input_gradient
    assert not direct.passes(conv_geometry(3, 1, 2, 2, 1), (16, 16, 3, 3)).input_gradient
    assert not direct.passes(conv_geometry(3, 2, 1, 1, 1), (16, 16, 3, 3)).input_gradient
    expected = direct.DirectCompiled if kernel_path == "numba" else Gemm
    assert choose(geometry, (16, 16, 6, 3)) is expected
    kernels = conv_phases.kernels(geometry, (16, 2, 23, 16), np.float64)  # one width: 3
    assert [k.__name__ for k in kernels] == ["correlate_c8_j8_s1_k3"]
    wanted = direct.Passes(False, True, False)
    assert direct.usable(wanted, (16, 2, 23, 16), np.float64, geometry) == wanted
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 16, 19, 12)), rng.standard_normal((16, 16, 6, 3))
    _, gx, gw, gy = run(PhasesOnly, x, w, None, geometry)
    _, tgx, tgw = torch_reference(x, w, None, geometry, gy)
    assert_rel_close(gx, tgx, 1e-9, "input gradient")
    assert_rel_close(gw, tgw, 1e-9, "kernel gradient")
