"""The strided input gradient's generated micro-kernels (conv_strided_compiled.py): every
phase of a tile in one kernel, against PyTorch, called directly and through ``conv2d``.

Each kernel (dtype, tile width, horizontal stride, dilation and kernel width, the left
padding modulo the stride) compiles for about 8 s on an empty cache, so the random draws
vary only what the kernels take as arguments (kernel height, vertical stride and dilation,
top, bottom and right padding, channels, samples, layout, threads) around three horizontal
settings, and the layer tests share the first one: four kernels in all.
"""

import os

import numpy as np
import pytest
import torch
from conv_runs import torch_reference
from gradcheck import assert_rel_close
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.functional import conv_direct_compiled as direct
from kernelab.functional import conv_strided_compiled as strided
from kernelab.functional.conv_algorithms import choose
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (kernel width, horizontal stride, dilation, left paddings, widths): each one kernel, the
# widths chosen so that its tiles have one width (14, 6 and 8 columns)
HORIZONTAL = [
    (3, 2, 1, (1, 3, 5), tuple(range(9, 15))),  # the layer tests' kernel; gy cropped at 5
    (2, 3, 2, (1, 4), tuple(range(1, 7))),
    (5, 2, 1, (0, 2), (3, 8, 17, 20, 23, 24)),  # overlapping and overhanging last tiles
]


@pytest.fixture(autouse=True)
def _direct_on(monkeypatch):
    """The direct passes whether or not their kernels are cached: compiled here if need be."""
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "1")


@st.composite
def layers(draw):
    """(geometry, padded input shape, gy, w, batch_first, threads) with the horizontal
    settings of one of HORIZONTAL."""
    kw, sw, dw, lefts, widths = draw(st.sampled_from(HORIZONTAL))
    kh, sh, dh = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    top, bottom, right = (draw(st.integers(0, 3)) for _ in range(3))
    padding = ((top, bottom), (draw(st.sampled_from(lefts)), right))
    geometry = conv_geometry((kh, kw), (sh, sw), padding, (dh, dw), 1)
    width = draw(st.sampled_from(widths))
    window_h, window_w = geometry.window
    height = max(1, window_h - top - bottom) + draw(st.integers(0, 5))
    hp, wp = height + top + bottom, width + sum(padding[1])
    if wp < window_w:  # too narrow a frame for the kernel: widen it on the right
        padding = ((top, bottom), (padding[1][0], right + window_w - wp))
        geometry = conv_geometry((kh, kw), (sh, sw), padding, (dh, dw), 1)
        wp = window_w
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 20))
    oh, ow = geometry.output_size(hp, wp, padded=True)
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    gy = rng.standard_normal((c_out, n, oh, ow))
    if draw(st.booleans()):  # a view of batch-first memory, as autograd may hand it over
        gy = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    w = rng.standard_normal((c_out, c_in, kh, kw))
    return geometry, (c_in, n, hp, wp), gy, w, draw(st.booleans()), draw(st.sampled_from([1, 2]))


def torch_input_gradient(gy, w, geometry, padded_shape):
    """PyTorch's input gradient (C_in, N, H, W) of the unpadded input, from the padded one's."""
    c_in, n, hp, wp = padded_shape
    gyt = torch.tensor(np.ascontiguousarray(gy.transpose(1, 0, 2, 3)))
    gxp = torch.nn.grad.conv2d_input(
        (n, c_in, hp, wp), torch.tensor(w), gyt, geometry.stride, 0, geometry.dilation
    ).numpy()
    (top, bottom), (left, right) = geometry.padding
    return gxp[:, :, top : hp - bottom, left : wp - right].transpose(1, 0, 2, 3)


@given(layers())
def test_input_gradient_matches_torch(layer):
    geometry, padded_shape, gy, w, batch_first, threads = layer
    previous = kl.get_num_threads()
    kl.set_num_threads(threads)
    try:
        (top, bottom), (left, right) = geometry.padding
        size = padded_shape[2] - top - bottom, padded_shape[3] - left - right  # (H, W)
        gx = strided.input_gradient(gy, w, geometry, size, batch_first)
    finally:
        kl.set_num_threads(previous)
    memory = gx.transpose(1, 0, 2, 3) if batch_first else gx  # the layout asked for
    assert memory.flags.c_contiguous
    expected = torch_input_gradient(gy, w, geometry, padded_shape)
    assert_rel_close(gx, expected, 1e-9, "input gradient vs torch")


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("x_layout", ["batch-first", "channel-major"])
@pytest.mark.parametrize("stride, padding, dilation", [(2, 1, 1), (2, ((1, 2), (1, 0)), (2, 1))])
def test_conv2d_matches_torch(
    kernel_path, threads, dtype, tol, x_layout, stride, padding, dilation
):
    """A 3x3 layer of stride 2 runs its input gradient here on the compiled path (the GEMM's
    on the NumPy path); PyTorch's gradients in float64, the input batch-first or a
    channel-major view (the input gradient then comes back in that layout)."""
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in ((3, 16, 11, 11), (20, 16, 3, 3), (20,)))
    geometry = conv_geometry(3, stride, padding, dilation, 1)
    if kernel_path == "numba":
        assert choose(geometry, w.shape) is direct.DirectCompiled
        assert direct.passes(geometry, w.shape).input_gradient
    layout = x if x_layout == "batch-first" else x.transpose(1, 0, 2, 3).copy()
    ours = [
        kl.Tensor(a.astype(dtype), requires_grad=True)
        for a in (layout if x_layout == "batch-first" else layout.transpose(1, 0, 2, 3), w, b)
    ]
    y = F.conv2d(*ours, geometry.stride, geometry.padding, geometry.dilation)
    gy = rng.standard_normal(y.shape)
    y.backward(gy.astype(dtype))
    ty, tgx, tgw = torch_reference(x, w, b, geometry, gy)
    assert_rel_close(y.array, ty, tol, "output vs torch")
    assert_rel_close(ours[0].grad.array, tgx, tol, "input gradient vs torch")
    assert_rel_close(ours[1].grad.array, tgw, tol, "kernel gradient vs torch")


def test_routes_stride_two_from_four_taps():
    """Measured faster than the GEMM at stride 2 from 2x2 kernels, at stride 3 from 3x3."""
    wide = (64, 32)
    assert strided.routes(conv_geometry(3, 2, 1, 1, 1), wide + (3, 3))
    assert strided.routes(conv_geometry(2, 2, 0, 1, 1), wide + (2, 2))
    assert strided.routes(conv_geometry(3, (2, 1), 1, 2, 1), wide + (3, 3))
    assert strided.routes(conv_geometry(3, 3, 1, 1, 1), wide + (3, 3))
    assert not strided.routes(conv_geometry(2, 3, 1, 1, 1), wide + (2, 2))
    assert not strided.routes(conv_geometry(5, 4, 1, 1, 1), wide + (5, 5))
    assert not strided.routes(conv_geometry(3, 1, 1, 1, 1), wide + (3, 3))
    assert not strided.routes(conv_geometry((1, 3), 2, 1, 1, 1), wide + (1, 3))
    assert not strided.routes(conv_geometry(3, 2, 1, 1, 2), (64, 16, 3, 3))


@pytest.mark.parametrize("sw", [1, 2, 3])
@pytest.mark.parametrize("width", [1, 5, 8, 13, 14, 16, 28, 29, 32])
def test_tiles_cover_the_row_from_multiples_of_the_stride(sw, width):
    jb, starts = strided.tiles(width, sw)
    assert jb % sw == 0 and all(start % sw == 0 for start in starts)
    covered = np.zeros(max(width, int(starts[-1]) + jb), bool)
    for start in starts:
        covered[start : start + jb] = True
    assert covered[:width].all() and int(starts[-1]) < width


def test_each_tile_column_reads_the_kernel_columns_of_its_phase():
    """3x3 at stride 2, left padding 1: even columns of the tile get kernel column 1, odd
    ones columns 0 and 2, from gy columns one apart (column 1 from the one column 0 reads)."""
    taps = strided.reach(4, 2, 1, 3, 1)
    assert sorted((t, q) for q, t, _ in taps) == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 0), (3, 2)]
    frame = {(q, t): k for q, t, k in taps}
    assert frame[0, 1] == frame[2, 1] + 1 and frame[1, 0] == frame[2, 1]


def test_generated_source_is_cached_once_per_setting():
    source = strided.source(16, 14, 2, 1, 3, 1)
    assert "a13_15" in source and "a14_0" not in source  # JB·CB scalar accumulators
    assert strided.kernel(np.float32, 28, 2, 1, 3, 1) is strided.kernel(np.float32, 28, 2, 1, 3, 3)
    jb = strided.tiles(28, 2)[0]  # 14 with AVX-512, 4 with AVX2's narrower registers
    assert jb == (14 if strided.VECTOR_BYTES == 64 else 4)
    assert os.path.basename(strided.kernel(np.float32, 28, 2, 1, 3, 1).path).startswith(
        f"kernelab_generated_strided_gradient_c16_j{jb}_s2_d1_k3_r1"
    )


def test_the_sums_run_in_blocks_of_at_most_c_out_terms():
    """Blocks of C_out over the most kernel offsets that reach a pixel: 3x3 at stride 2
    reaches a pixel 4 times, 3x3 at stride 2 and dilation 2 up to 9 times."""
    assert strided.most_taps(3, 2, 1) == 2 and strided.most_taps(3, 2, 2) == 3
    assert strided.most_taps(1, 2, 1) == 1 and strided.most_taps(5, 3, 2) == 2


@pytest.mark.parametrize("layout", ["channel-major", "batch-first", "strided", "read-only"])
def test_gy_is_read_in_place_or_copied_into_one_array_type(layout):
    rng = np.random.default_rng(3)
    gy = rng.standard_normal((4, 3, 5, 6))  # (C_out, N, OH, OW)
    if layout == "batch-first":
        gy = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "strided":
        gy = np.repeat(gy, 2, axis=3)[..., ::2]
    elif layout == "read-only":
        gy.flags.writeable = False
    flat, (sample, channel) = strided.flat_samples(gy)
    assert flat.ndim == 1 and flat.flags.c_contiguous and flat.flags.writeable
    for c, s in np.ndindex(4, 3):
        start = s * sample + c * channel
        np.testing.assert_array_equal(flat[start : start + 30].reshape(5, 6), gy[c, s])
    if layout in ("channel-major", "batch-first"):
        assert np.shares_memory(flat, gy)
