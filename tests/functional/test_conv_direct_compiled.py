"""The direct convolution's generated micro-kernels (conv_direct_compiled.py): every pass
against plain loops, PyTorch and the NumPy GEMM, driven on channel-major arrays as ``conv2d``
drives them; its sums' order; when a process may use them (compiled or not).

Each generated kernel (dtype, kernel width, horizontal stride, tile width, the correlation's
horizontal dilation, the kernel gradient's block) compiles for 5-20 s on an empty cache, so
these tests share a few: kernel width 3 (the height varies), strides 1 and 2, tiles of 8
(outputs narrower than 14) and of 14 in one test, horizontal dilation 2 in one test, the
kernel gradient's wide block in one, three fresh tiles for 7x7 kernels in one: 15 kernels
in all (two more for the fresh kernel gradient's test with AVX-512), and one more compiled
in the background for the default mode's test.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conv_runs import check_only_asked_gradients, run, torch_reference
from gradcheck import assert_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import conv_direct_compiled as direct
from kernelab.functional import conv_direct_source, conv_winograd
from kernelab.functional.conv import pad
from kernelab.functional.conv_algorithms import Gemm, Pointwise, choose
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


@pytest.fixture(autouse=True)
def _direct_on(monkeypatch):
    """The direct passes whether or not their kernels are cached: compiled here if need be."""
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "1")


class EveryPass(direct.DirectCompiled):
    """Every pass direct where it can be (the input gradient needs stride 1)."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry):
        ctx.passes = direct.Passes(True, geometry.stride == (1, 1), True)
        return direct.DirectCompiled.run_forward(ctx, xp, w, b, geometry)


def loop_forward(x, w, b, geometry):
    """The convolution pixel by pixel, in float64."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    xp = pad(x.astype(np.float64), geometry.padding)
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for n, o, i, j in np.ndindex(y.shape):
        window = xp[n, :, i * sh : i * sh + dh * (w.shape[2] - 1) + 1 : dh]
        window = window[:, :, j * sw : j * sw + dw * (w.shape[3] - 1) + 1 : dw]
        y[n, o, i, j] = (window * w[o]).sum() + (0 if b is None else b[o])
    return y


@st.composite
def cases(draw):
    """A convolution: kernel 1-7 x 3, stride, dilation, asymmetric padding, channel counts
    that are not multiples of the blocks, images narrower than a tile (all narrower than 14:
    tiles of 8)."""
    kh, kw = draw(st.integers(1, 7)), 3
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([(1, 1), (2, 1)]))  # horizontal: test_dilated_columns
    padding = tuple(tuple(draw(st.integers(0, 3)) for _ in range(2)) for _ in range(2))
    geometry = conv_geometry((kh, kw), stride, padding, dilation, 1)
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 19))
    eh, ew = geometry.window
    h = max(1, eh - sum(padding[0])) + draw(st.integers(0, 6))
    base = max(1, ew - sum(padding[1]))
    width = base + draw(st.integers(0, 13 - base - sum(padding[1])))  # padded: at most 13
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, c_in, h, width), (c_out, c_in, kh, kw), geometry, dtype


@settings(max_examples=15, deadline=None)
@given(case=cases(), bias=st.booleans())
def test_every_pass_matches_torch_and_the_gemm(case, bias):
    x_shape, w_shape, geometry, dtype = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    tol = TOL[dtype]
    y, gx, gw, gy = run(EveryPass, x, w, b, geometry)
    assert y.dtype == gx.dtype == gw.dtype == dtype
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(y, ty, tol, "forward vs torch")
    assert_rel_close(gx, tgx, tol, "input gradient vs torch")
    assert_rel_close(gw, tgw, tol, "kernel gradient vs torch")
    ry, rgx, rgw, _ = run(Gemm, x, w, b, geometry)
    assert_rel_close(y, ry, tol, "forward vs GEMM")
    assert_rel_close(gx, rgx, tol, "input gradient vs GEMM")
    assert_rel_close(gw, rgw, tol, "kernel gradient vs GEMM")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, width", [((1, 1), 26), ((2, 1), 11), ((1, 2), 23)])
def test_forward_matches_loops(dtype, stride, width):
    # outputs 27 wide (tiles of 14, the last overlapping), 12 (tiles of 8), stride 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, width)).astype(dtype)
    w, b = rng.standard_normal((17, 3, 4, 3)).astype(dtype), rng.standard_normal(17)
    geometry = conv_geometry((4, 3), stride, ((1, 0), (2, 1)), (2, 1), 1)
    y, _, _, _ = run(EveryPass, x, w, b.astype(dtype), geometry)
    assert_rel_close(y, loop_forward(x, w, b, geometry), TOL[dtype], "forward vs loops")


def test_dilated_columns_match_loops_and_torch():
    # the horizontal dilation is baked into the correlation's kernel: one more compiled, for
    # the forward and the input gradient alike (float64, tiles of 8)
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 7, 13)), rng.standard_normal((17, 3, 2, 3))
    b = rng.standard_normal(17)
    geometry = conv_geometry((2, 3), 1, ((1, 0), (2, 1)), (1, 2), 1)
    y, gx, gw, gy = run(EveryPass, x, w, b, geometry)
    assert_rel_close(y, loop_forward(x, w, b, geometry), 1e-9, "forward vs loops")
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(gx, tgx, 1e-9, "input gradient vs torch")
    assert_rel_close(gw, tgw, 1e-9, "kernel gradient vs torch")


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False)])
def test_computes_only_the_gradients_asked_for(needs):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((5, 3, 2, 3))
    geometry = conv_geometry((2, 3), 1, ((1, 0), (2, 1)), 1, 1)
    check_only_asked_gradients(EveryPass, x, w, geometry, needs)


def test_passes_left_to_the_gemm_match_torch():
    # stride 2: the input gradient is the GEMM's, the other passes direct
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((6, 4, 3, 3))
    geometry = conv_geometry(3, 2, 1, 1, 1)
    y, gx, gw, gy = run(EveryPass, x, w, None, geometry)
    ty, tgx, tgw = torch_reference(x, w, None, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert_rel_close(ours, theirs, 1e-9, what)


@pytest.mark.parametrize("direct_forward", [True, False])
def test_a_3x3_layer_mixes_the_direct_convolution_and_winograd(monkeypatch, direct_forward):
    # stride-1 3x3: every pass direct, each by Winograd when its direct kernel is not compiled
    # yet (here: the input gradient, and the forward or not)
    monkeypatch.setattr(conv_winograd, "MIN_FLOPS", 0)
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((2, 32, 6, 9)), rng.standard_normal((32, 32, 3, 3)), None
    geometry = conv_geometry(3, 1, ((1, 0), (2, 1)), 1, 1)
    assert direct.passes(geometry, w.shape) == (True, True, True)
    calls = []
    for module, name in ((direct, "correlate"), (conv_winograd, "correlate")):
        original = getattr(module, name)

        def spy(*args, original=original, module=module):
            calls.append(module.__name__.rsplit("_", 1)[1])
            return original(*args)

        monkeypatch.setattr(module, name, spy)

    class Routed(direct.DirectCompiled):
        @staticmethod
        def forward(ctx, xp, w, b, geometry):
            ctx.passes = direct.Passes(direct_forward, False, True)
            return direct.DirectCompiled.run_forward(ctx, xp, w, b, geometry)

    y, gx, gw, gy = run(Routed, x, w, b, geometry)
    first = "compiled" if direct_forward else "winograd"
    assert calls == [first, "winograd"]
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert_rel_close(ours, theirs, 1e-9, what)


@pytest.mark.parametrize("kw, sw", [(3, 1), (7, 1), (3, 2)])
def test_column_tiles_cover_the_row(kw, sw):
    tiles = direct.tiling(kw, sw, 1)
    columns, tails = tiles.columns, tiles.tails
    for ow in (8, 9, 14, 18, 28, 30, 31, 56):
        jb, starts, tail = direct.column_tiles(ow, tiles)
        covered = np.zeros(ow, int)
        for start in starts:
            covered[start : start + jb] += 1
        covered[ow - tail :] += 1 if tail else 0
        assert covered.all() and starts[-1] + jb == ow - tail and jb in columns
        if tail:  # a narrower last tile: no column computed twice
            assert tail in tails and (covered == 1).all()


@pytest.mark.parametrize(
    "width, stride", [(8, 1), (10, 1), (9, 2)], ids=["tail2", "tail4", "stride2"]
)
def test_tiles_loading_their_pixels_afresh_match_torch(monkeypatch, width, stride):
    """The fresh tiles (AVX2's for wide kernel rows) on any machine: 7x7 layers of 16 channels
    whose rows end in tails of 2 and 4 columns past the tiles of 6, and one of stride 2, their
    forward and (at stride 1, a correlation too) input gradient against PyTorch."""
    monkeypatch.setattr(
        direct,
        "tiling",
        lambda kw, sw, dw: direct.Tiling(direct.FRESH_COLUMNS, direct.FRESH_TAILS, True),
    )
    rng = np.random.default_rng(width)
    x, w, b = (rng.standard_normal(s) for s in ((2, 16, 9, width), (17, 16, 7, 7), (17,)))
    geometry = conv_geometry(7, stride, 3, 1, 1)
    y, gx, _, gy = run(EveryPass, x, w, b, geometry, needs=(True, False, False))
    ty, tgx, _ = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(y, ty, 1e-9, "forward")
    assert_rel_close(gx, tgx, 1e-9, "input gradient")


@pytest.mark.parametrize("width", [6, 10, 14])
@pytest.mark.parametrize("x_layout", ["batch-first", "channel-major"])
def test_rows_with_a_narrower_last_tile_match_torch(width, x_layout):
    """Widths that leave 2 columns past the tiles of 4 (AVX2: a tail tile of their own;
    AVX-512: tiles of 8 and 14): the forward and the stride-1 input gradient (a correlation
    too) of a 3x5 layer of 16 channels, x in either layout, against PyTorch."""
    rng = np.random.default_rng(width)
    x, w, b = (rng.standard_normal(s) for s in ((2, 16, 7, width), (18, 16, 3, 5), (18,)))
    geometry = conv_geometry((3, 5), 1, ((1, 1), (2, 2)), 1, 1)
    if x_layout == "channel-major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    ours = [kl.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, geometry.stride, geometry.padding, geometry.dilation)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    ty, tgx, tgw = torch_reference(np.ascontiguousarray(x), w, b, geometry, gy)
    assert_rel_close(y.array, ty, 1e-9, "forward")
    assert_rel_close(ours[0].grad, tgx, 1e-9, "input gradient")
    assert_rel_close(ours[1].grad, tgw, 1e-9, "kernel gradient")


@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_gradient_pairs_loading_afresh_match_torch(monkeypatch, stride):
    """The kernel gradient whose pairs load their pixels afresh (AVX2's where the accumulators
    fill the registers) on any machine: a 3x3 layer of 16 channels against PyTorch."""
    shape = (8, 2, stride, 3, True)  # float64 blocks of 8 channels, 2 input channels a block
    fresh = direct.compiled(
        conv_direct_source.kernel_gradient_name, conv_direct_source.kernel_gradient_source, shape
    )
    monkeypatch.setattr(direct, "gradient_kernel", lambda *args: fresh)
    rng = np.random.default_rng(stride)
    x, w, b = (rng.standard_normal(s) for s in ((3, 16, 11, 13), (17, 16, 3, 3), (17,)))
    geometry = conv_geometry(3, stride, 1, 1, 1)
    _, _, gw, gy = run(EveryPass, x, w, b, geometry, needs=(False, True, False))
    _, _, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(gw, tgw, 1e-9, "kernel gradient")


def test_generated_source_holds_scalar_accumulators():
    text = conv_direct_source.correlation_source(16, 8, 1, 1, 3)
    block = text.split("def correlate")[0]  # the block function, without the driver
    assert "a7_15 += x * w15" in block and "np.zeros" not in block and "np.empty" not in block
    compile(text, "<generated>", "exec")
    fresh = conv_direct_source.correlation_source(16, 6, 1, 1, 7, 4, fresh=True)
    assert "oq = opaque(o + u3)" in fresh and "x = xr[oq + u5]" in fresh
    assert "x = xr[o + u" not in fresh
    compile(fresh, "<generated>", "exec")
    pairs = conv_direct_source.kernel_gradient_source(16, 2, 1, 3, fresh=True)
    assert "x = x1_2[opaque(at)]" in pairs and "[j * 1]" not in pairs
    compile(pairs, "<generated>", "exec")


def test_the_input_gradient_frames_each_call_by_its_own_padding():
    # the same frame shape (8x11 inside a 3x3 kernel's frame), gy placed alike, then placed
    # one column shorter (right padding 0, not 1): a frame kept from the call before would
    # hold a stale column
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 16, 8, 11)), rng.standard_normal((16, 16, 3, 3))
    for seed, right in enumerate((1, 1, 0)):
        geometry = conv_geometry(3, 1, ((1, 1), (1, right)), 1, 1)
        _, gx, _, gy = run(EveryPass, x, w, None, geometry, seed=seed)
        _, tgx, _ = torch_reference(x, w, None, geometry, gy)
        assert_rel_close(gx, tgx, 1e-9, "input gradient vs torch")


def test_the_forward_adds_the_bias_after_the_sum():
    # float32 holds 1e8 to 8: 1e8 + 1 rounds back to 1e8, 1e8 + 72 is exact. A sum that
    # started from the bias would lose every term; from zero it is exact, as the GEMM's is.
    x, w = np.ones((1, 8, 5, 5), np.float32), np.ones((16, 8, 3, 3), np.float32)
    b = np.full(16, 1e8, np.float32)
    y, _, _, _ = run(EveryPass, x, w, b, conv_geometry(3, 1, 0, 1, 1), (False, False, False))
    assert np.all(y == np.float32(1e8 + 72))


def test_the_kernel_gradient_sums_each_sample_apart():
    # float32 holds 2**24 to 2: 2**24 + 1 rounds back to 2**24. Sample 0 sums to 2**24, the
    # others to 36 each; one running sum over the samples would drop the others' ones. 32
    # output channels: the wide block of two vectors.
    gy = np.ones((32, 4, 6, 6), np.float32)  # (C_out, N, OH, OW)
    gy[:, 0] = 0
    gy[:, 0, 0, 0] = 2**24
    xp = np.ones((5, 4, 8, 8), np.float32)  # (C_in, N, Hp, Wp)
    gw, _ = direct.kernel_gradient(gy, xp, conv_geometry(3, 1, 0, 1, 1))
    assert gw.shape == (32, 5, 3, 3) and np.all(gw == 2**24 + 3 * 36)
    wide = 32 if direct.VECTOR_BYTES == 64 else 16  # two AVX-512 vectors; AVX2's are narrower
    assert direct.gradient_block(np.float32, 32, 3) == wide
    for c_out in (16, 48):
        assert direct.gradient_block(np.float32, c_out, 3) == 16
    # AVX2: a 7x7 kernel row of two-vector blocks would outgrow the registers
    assert direct.gradient_block(np.float32, 64, 7) == (32 if direct.VECTOR_BYTES == 64 else 8)


def test_the_forward_sums_blocks_of_input_channels_apart():
    # float32 holds 2**24 to 2: one running sum of 2**24 and 575 ones stays 2**24. The first
    # block of 32 channels (K_BLOCK = 288 terms of a 3x3 kernel) does; the second block's
    # 288 ones are summed from zero, exactly, and then added.
    x, w = np.ones((1, 64, 3, 16), np.float32), np.ones((16, 64, 3, 3), np.float32)
    w[:, 0, 0, 0] = 2**24
    y, _, _, _ = run(EveryPass, x, w, None, conv_geometry(3, 1, 0, 1, 1), (False, False, False))
    assert conv_direct_source.K_BLOCK == 288 and np.all(y == 2**24 + 288)


def test_the_kernel_gradient_sums_blocks_of_rows_apart():
    # as above: rows 0-17 of the 16-wide output gradient (288 terms) are one block
    gy = np.ones((16, 1, 36, 16), np.float32)  # (C_out, N, OH, OW)
    gy[:, 0, 0, 0] = 2**24
    xp = np.ones((3, 1, 38, 18), np.float32)  # (C_in, N, Hp, Wp)
    gw, _ = direct.kernel_gradient(gy, xp, conv_geometry(3, 1, 0, 1, 1))
    assert np.all(gw == 2**24 + 288)


def test_partial_kernels_combine_pairwise():
    parts = np.array([2**24, 1, 1, 1, 1], np.float32).reshape(5, 1)
    assert direct.pairwise_sum(parts)[0] == 2**24 + 4  # one after the other: 2**24
    assert direct.pairwise_sum(parts[:1])[0] == 2**24


def test_choose_takes_the_direct_convolution_only_where_it_was_measured_faster(
    kernel_path, monkeypatch
):
    conv2 = conv_geometry(5, 1, 2, 1, 1)
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "0")
    assert choose(conv2, (64, 32, 5, 5)) is Gemm  # the off switch
    monkeypatch.delenv("KERNELAB_DIRECT_CONV")
    depthwise = conv_geometry(3, 1, 1, 1, 32)
    assert choose(depthwise, (32, 1, 3, 3)) is not direct.DirectCompiled
    grouped = conv_geometry(3, 1, 1, 1, 2)
    assert choose(grouped, (64, 16, 3, 3)) is Gemm
    expected = direct.DirectCompiled if kernel_path == "numba" else Gemm
    assert choose(conv2, (64, 32, 5, 5)) is expected
    assert choose(conv_geometry(1, 1, 0, 1, 1), (64, 32, 1, 1)) is Pointwise  # 1x1: its own
    assert choose(conv2, (8, 4, 5, 5)) is not direct.DirectCompiled  # thin layers: their own
    assert direct.passes(conv2, (64, 32, 5, 5)) == (True, True, True)
    assert direct.passes(conv_geometry(4, 1, 1, 1, 1), (64, 32, 4, 4)) == (True, True, True)
    assert direct.passes(conv_geometry(3, 1, 1, 1, 1), (64, 32, 3, 3)) == (True, True, True)
    assert direct.passes(conv_geometry(3, 1, 1, 1, 1), (16, 16, 3, 3)) == (True, True, True)
    wide = (128, 128, 3, 3)  # Winograd's forward from 128 channels
    assert direct.passes(conv_geometry(3, 1, 1, 1, 1), wide) == (False, False, True)
    assert direct.passes(conv_geometry(3, 2, 1, 1, 1), wide) == (True, True, True)  # strided
    assert direct.passes(conv_geometry(2, 1, 1, 1, 1), (64, 32, 2, 2)) == (True, True, True)
    assert direct.passes(conv_geometry(5, 4, 1, 1, 1), (64, 32, 5, 5)) == (True, False, True)
    dilated = conv_geometry(4, 1, 3, 2, 1)  # dilated, stride 1, from 4x4: every pass direct
    assert direct.passes(dilated, (64, 32, 4, 4)) == (True, True, True)
    assert direct.passes(conv_geometry(3, 1, 2, 2, 1), (64, 32, 3, 3)) == (True, True, True)
    assert direct.passes(conv_geometry(3, 1, 3, 3, 1), (64, 32, 3, 3)) == (True, True, True)
    assert direct.passes(conv_geometry(2, 1, 1, 2, 1), (64, 32, 2, 2)) == (True, True, True)
    every = direct.Passes(True, True, True)
    assert direct.usable(every, (32, 2, 18, 18), np.int64, conv2) == (False, False, False)
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "yes")
    with pytest.raises(ValueError, match="expected 0, 1 or auto, got 'yes'"):
        direct.passes(conv2, (64, 32, 5, 5))


# A layer's forward (4x1: 4 taps, direct), not differentiated, float64 (its kernel compiles
# fastest). Its forward runs, waits for any background compilation to end, and runs again.
AUTO = """
    import glob, os, time, types
    import numpy as np
    from kernelab.functional import conv_direct_compiled as direct
    from kernelab.functional.geometry import conv_geometry
    geometry = conv_geometry((4, 1), 1, 0, 1, 1)
    xp, w = np.ones((16, 2, 6, 8)), np.ones((16, 16, 4, 1))
    ctx = types.SimpleNamespace(needs_input_grad=(False, False, False))
    y = direct.DirectCompiled.forward(ctx, xp, w, None, geometry)
    first = tuple(ctx.passes)
    pending = os.path.join(os.environ["NUMBA_CACHE_DIR"], "generated", "*.compiling")
    started = bool(glob.glob(pending))
    for _ in range(600):  # a few seconds
        if not glob.glob(pending):
            break
        time.sleep(0.1)
    direct.DirectCompiled.forward(ctx, xp, w, None, geometry)
    print(first, tuple(ctx.passes), started, float(y.min()), float(y.max()), sep="|")
"""


def run_auto(cache) -> list[str]:
    """The AUTO program's printed values, run with this numba cache and the default mode."""
    environment = {k: v for k, v in os.environ.items() if k != "KERNELAB_DIRECT_CONV"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AUTO)],
        capture_output=True,
        text=True,
        env={**environment, "NUMBA_CACHE_DIR": str(cache), "KERNELAB_KERNELS": "numba"},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("|")


def test_by_default_a_process_runs_direct_only_what_an_earlier_one_compiled(tmp_path, kernel_path):
    if kernel_path == "numpy":
        pytest.skip("a process of its own on the compiled path: once is enough")
    # empty cache: the GEMM, compiled in the background meanwhile, and still the GEMM after
    # that, for the whole process
    first, again, started, low, high = run_auto(tmp_path)
    assert first == again == "(False, False, False)" and started == "True"
    assert low == high == "64.0"
    assert not list(tmp_path.rglob("*.compiling"))
    first, again, started, low, high = run_auto(tmp_path)  # the next process: direct
    assert first == again == "(True, False, False)" and started == "False"
    assert low == high == "64.0"


@pytest.mark.parametrize("x_layout", ["batch-first", "channel-major"])
@pytest.mark.parametrize("gy_layout", ["batch-first", "channel-major"])
@pytest.mark.parametrize(
    "stride, padding, dilation",
    [(2, 1, 1), (1, ((2, 1), (1, 0)), (3, 1)), ((3, 2), 0, (2, 1))],
)
def test_conv2d_reads_the_output_gradient_in_either_layout(
    kernel_path, x_layout, gy_layout, stride, padding, dilation
):
    """A layer of 16 channels runs ``DirectCompiled`` on the compiled path: its kernel
    gradient's repack reads gy as it comes and sums the bias gradient; 17 output channels,
    so the last block is partly zeros. PyTorch's gradients in every layout. Vertical strides
    and dilations only past 2: they are arguments, the horizontal ones more kernels."""
    rng = np.random.default_rng(7)
    x, w, b = (rng.standard_normal(s) for s in ((2, 16, 9, 10), (17, 16, 3, 3), (17,)))
    geometry = conv_geometry(3, stride, padding, dilation, 1)
    if kernel_path == "numba":
        assert choose(geometry, w.shape) is direct.DirectCompiled
    if x_layout == "channel-major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    ours = [kl.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, geometry.stride, geometry.padding, geometry.dilation)
    gy = rng.uniform(0.5, 2.0, y.shape)
    if gy_layout == "channel-major":
        gy = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y.backward(gy)
    _, tgx, tgw = torch_reference(np.ascontiguousarray(x), w, b, geometry, gy)
    assert_rel_close(ours[0].grad, tgx, 1e-9, "input gradient vs torch")
    assert_rel_close(ours[1].grad, tgw, 1e-9, "kernel gradient vs torch")
    assert_rel_close(ours[2].grad, gy.sum(axis=(0, 2, 3)), 1e-12, "bias gradient")


@pytest.mark.parametrize("x_layout", ["batch-first", "channel-major"])
def test_each_thread_frames_the_samples_it_meets(threads, x_layout):
    """The passes frame the unpadded input a sample at a time in each thread's buffer: 3
    samples of 5 float64 blocks (40 channels) split into runs that start inside a sample;
    padding 3 on a 3x3 kernel cuts a row and a column of the output gradient's frame."""
    rng = np.random.default_rng(11)
    x, w, b = (rng.standard_normal(s) for s in ((3, 16, 7, 9), (40, 16, 3, 3), (40,)))
    if x_layout == "channel-major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    geometry = conv_geometry(3, 1, ((3, 1), (0, 3)), 1, 1)
    y, gx, gw, gy = run(EveryPass, x, w, b, geometry)
    ty, tgx, tgw = torch_reference(np.ascontiguousarray(x), w, b, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert_rel_close(ours, theirs, 1e-9, what)


def test_threads_claim_every_task_once(threads):
    """11 samples: the correlations' tasks (a sample each) and the kernel gradient's runs of
    samples (RUNS, each with its own partial) are claimed by whichever
    thread is free; each is computed once, and the bias gradient summed once per sample."""
    rng = np.random.default_rng(12)
    x, w, b = (rng.standard_normal(s) for s in ((11, 16, 7, 9), (40, 16, 3, 3), (40,)))
    geometry = conv_geometry(3, 1, ((3, 1), (0, 3)), 1, 1)
    y, gx, gw, gy = run(EveryPass, x, w, b, geometry)
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    for ours, theirs, what in ((y, ty, "forward"), (gx, tgx, "input"), (gw, tgw, "kernel")):
        assert_rel_close(ours, theirs, 1e-9, what)
    gy_c = np.ascontiguousarray(gy.transpose(1, 0, 2, 3))  # (C_out, N, OH, OW)
    _, gb = direct.kernel_gradient(gy_c, x.transpose(1, 0, 2, 3), geometry, bias=True)
    assert_rel_close(gb, gy.sum(axis=(0, 2, 3)), 1e-12, "bias gradient")


def test_one_and_two_threads_give_the_same_numbers_every_run():
    """The passes' tasks, claimed by whichever thread is free, fix the order of every sum:
    each output pixel is one task's, each run of samples sums into its own partial kernel, the
    partials added in order. So float32 results are the same to the bit at one thread and at
    two, run after run (40 output channels: the correlations split samples into parts)."""
    rng = np.random.default_rng(13)
    shapes = ((6, 32, 12, 10), (40, 32, 3, 3), (40,))
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    geometry = conv_geometry(3, 1, 1, 1, 1)
    previous = kl.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 2, 1, 2, 2):
            kl.set_num_threads(threads)
            results.append(run(EveryPass, x, w, b, geometry))
    finally:
        kl.set_num_threads(previous)
    ty, tgx, tgw = torch_reference(x, w, b, geometry, results[0][3])
    for ours, theirs, what in zip(
        results[0], (ty, tgx, tgw), ("forward", "input", "kernel"), strict=False
    ):
        assert_rel_close(ours, theirs, TOL[np.float32], what)
    for again in results[1:]:
        for ours, first in zip(again, results[0], strict=True):
            assert np.array_equal(ours, first)
