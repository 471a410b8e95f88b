"""conv2d: im2col against plain loops, gradients against central differences and the
transposed-convolution identities, forward and backward against PyTorch."""

import warnings

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close, check_gradients, relative_error
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelab as kl
import kernelab.functional as F
from kernelab.core.errors import ShapeError
from kernelab.functional import conv_algorithms
from kernelab.functional.conv import pad
from kernelab.functional.conv_algorithms import col2im, im2col
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def naive_conv2d(x, w, b, stride, padding, dilation, groups):
    """y[n, o, i, j] = b[o] + Σ_{c,p,q} w[o, c, p, q] · xp[n, g·depth + c, i·sh + p·dh, j·sw + q·dw]

    with g the group of output channel o: four loops over pixels, three over the kernel.
    """
    (top, bottom), (left, right) = padding
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, hp, wp = xp.shape
    c_out, depth, kh, kw = w.shape
    oh = (hp - dh * (kh - 1) - 1) // sh + 1
    ow = (wp - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    per_group = c_out // groups
    for s in range(n):
        for o in range(c_out):
            first = (o // per_group) * depth
            for i in range(oh):
                for j in range(ow):
                    total = 0.0 if b is None else b[o]
                    for c in range(depth):
                        for p in range(kh):
                            for q in range(kw):
                                pixel = xp[s, first + c, i * sh + p * dh, j * sw + q * dw]
                                total += w[o, c, p, q] * pixel
                    y[s, o, i, j] = total
    return y


# (x shape, w shape, stride, padding ((t, b), (l, r)), dilation, groups)
LOOP_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((1, 2, 7, 7), (3, 2, 2, 4), (2, 1), ((1, 1), (2, 2)), (1, 1), 1),
    ((2, 4, 8, 6), (6, 2, 3, 2), (1, 2), ((0, 2), (1, 0)), (2, 1), 2),
    ((1, 3, 9, 9), (6, 1, 3, 3), (3, 2), ((1, 1), (1, 1)), (2, 3), 3),
    ((3, 1, 5, 5), (2, 1, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 3, 4, 5), (2, 3, 1, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # 1x2: not a 1x1 shortcut
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", LOOP_CASES)
def test_forward_matches_nested_loops(x_shape, w_shape, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = F.conv2d(kl.Tensor(x), kl.Tensor(w), kl.Tensor(b), stride, padding, dilation, groups)
    expected = naive_conv2d(x, w, b, stride, padding, dilation, groups)
    assert y.shape == expected.shape
    assert_rel_close(y.array, expected, 1e-12, "conv2d vs loops")


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", LOOP_CASES)
def test_im2col_columns_are_the_receptive_fields(
    x_shape, w_shape, stride, padding, dilation, groups
):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    geometry = conv_geometry(w_shape[2:], stride, padding, dilation, groups)
    xp = pad(x.transpose(1, 0, 2, 3), geometry.padding)  # channel-major (C, N, H, W)
    cols = im2col(xp, geometry)
    c, n, hp, wp = xp.shape
    kh, kw = geometry.kernel_size
    (sh, sw), (dh, dw) = stride, dilation
    oh, ow = geometry.output_size(*x_shape[2:])
    assert cols.shape == (c * kh * kw, n * oh * ow)
    for s in range(n):
        for ch in range(c):
            for p in range(kh):
                for q in range(kw):
                    for i in range(oh):
                        for j in range(ow):
                            row, col = (ch * kh + p) * kw + q, (s * oh + i) * ow + j
                            assert cols[row, col] == xp[ch, s, i * sh + p * dh, j * sw + q * dw]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", LOOP_CASES)
def test_col2im_is_the_adjoint_of_im2col(x_shape, w_shape, stride, padding, dilation, groups):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: what makes the input gradient exact.
    rng = np.random.default_rng(3)
    geometry = conv_geometry(w_shape[2:], stride, padding, dilation, groups)
    xp = pad(rng.standard_normal(x_shape), geometry.padding)
    cols = im2col(xp, geometry)
    c = rng.standard_normal(cols.shape)
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size(*x_shape[2:])
    c_in, n = xp.shape[:2]
    back = col2im(c.reshape((c_in, kh, kw, n, oh, ow)), xp.shape, geometry)
    assert np.isclose(np.sum(cols * c), np.sum(xp * back), rtol=1e-12)


GRAD_CASES = [
    # x shape, w shape, bias, stride, padding, dilation, groups
    ((2, 3, 5, 5), (4, 3, 3, 3), True, 1, 0, 1, 1),
    ((1, 2, 6, 5), (3, 2, 2, 3), True, (2, 1), 1, 1, 1),
    ((2, 2, 6, 6), (2, 2, 3, 2), False, 1, "same", (2, 1), 1),
    ((1, 4, 6, 5), (4, 2, 2, 2), True, 2, ((1, 0), (0, 2)), 1, 2),
    ((1, 2, 7, 7), (6, 1, 3, 3), True, (3, 2), "valid", (1, 2), 2),
    ((2, 1, 4, 4), (2, 1, 4, 4), True, 1, "same", 1, 1),
]


@pytest.mark.parametrize("x_shape, w_shape, bias, stride, padding, dilation, groups", GRAD_CASES)
def test_gradients_match_finite_differences(
    x_shape, w_shape, bias, stride, padding, dilation, groups
):
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        inputs.append(rng.standard_normal(w_shape[0]))

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    check_gradients(fn, inputs)


def rot180(w):
    return w[:, :, ::-1, ::-1]


@pytest.mark.parametrize(
    "x_shape, k, stride, padding, dilation",
    [
        ((2, 3, 7, 6), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
        ((1, 2, 8, 9), (2, 3), (1, 1), ((0, 1), (2, 0)), (2, 1)),
        ((2, 2, 9, 8), (3, 2), (2, 3), ((1, 2), (0, 1)), (1, 2)),
        ((1, 3, 10, 10), (3, 3), (3, 2), ((0, 0), (0, 0)), (2, 2)),
    ],
)
def test_input_gradient_is_full_convolution_with_rotated_kernel(
    x_shape, k, stride, padding, dilation
):
    rng = np.random.default_rng(5)
    c_out = 4
    x = kl.Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = kl.Tensor(rng.standard_normal((c_out, x_shape[1]) + k), requires_grad=True)
    y = F.conv2d(x, w, None, stride, padding, dilation)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)

    # Spread gy out by the stride (s − 1 zeros between elements), then a full convolution
    # with the rotated kernel, input and output channels swapped.
    (sh, sw), (dh, dw) = stride, dilation
    n, _, oh, ow = gy.shape
    spread = np.zeros((n, c_out, (oh - 1) * sh + 1, (ow - 1) * sw + 1))
    spread[:, :, ::sh, ::sw] = gy
    kernel = np.ascontiguousarray(rot180(w.array).transpose(1, 0, 2, 3))
    full_pad = (dh * (k[0] - 1), dw * (k[1] - 1))
    full = F.conv2d(kl.Tensor(spread), kl.Tensor(kernel), None, 1, full_pad, dilation).array
    # Rows/columns of the padded input that no window reached get no gradient.
    (top, bottom), (left, right) = padding
    hp, wp = x_shape[2] + top + bottom, x_shape[3] + left + right
    full = np.pad(full, ((0, 0), (0, 0), (0, hp - full.shape[2]), (0, wp - full.shape[3])))
    expected = full[:, :, top : hp - bottom, left : wp - right]
    assert_rel_close(x.grad, expected, 1e-12, "input gradient")

    # Kernel gradient: correlation of the padded input with the output gradient.
    xp = np.pad(x.array, ((0, 0), (0, 0), (top, bottom), (left, right)))
    gw = np.zeros(w.shape)
    for o in range(c_out):
        for c in range(x_shape[1]):
            for p in range(k[0]):
                for q in range(k[1]):
                    rows = slice(p * dh, p * dh + (oh - 1) * sh + 1, sh)
                    cols = slice(q * dw, q * dw + (ow - 1) * sw + 1, sw)
                    gw[o, c, p, q] = np.sum(gy[:, o] * xp[:, c, rows, cols])
    assert_rel_close(w.grad, gw, 1e-12, "kernel gradient")


def test_bias_gradient_with_a_frozen_kernel():
    """A bias that learns under a frozen kernel still gets Σ gy over samples and pixels."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    bias = kl.Tensor(rng.standard_normal(4), requires_grad=True)
    y = F.conv2d(kl.Tensor(x), kl.Tensor(w), bias, 1, 1)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    assert_rel_close(np.asarray(bias.grad), gy.sum(axis=(0, 2, 3)), 1e-12, "bias gradient")


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    if draw(st.booleans()):  # depthwise, with a channel multiplier
        c_in, c_out = groups, groups * draw(st.integers(1, 3))
    else:
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    form = draw(st.sampled_from(["int", "pair", "valid", "same", "asymmetric"]))
    steps = st.integers(1, 3)
    stride = (1, 1) if form == "same" else (draw(steps), draw(steps))
    if form == "int":
        padding = draw(st.integers(0, 3))
        pads = ((padding, padding), (padding, padding))
    elif form == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        pads = ((padding[0],) * 2, (padding[1],) * 2)
    elif form == "asymmetric":
        pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
        padding = pads
    else:
        padding, pads = form, ((0, 0), (0, 0))
    size = []
    for axis in range(2):
        window = dilation[axis] * (kernel[axis] - 1) + 1
        least = max(1, window - (0 if form == "same" else sum(pads[axis])))
        size.append(least + draw(st.integers(0, 4)))
    return {
        "x_shape": (draw(st.integers(1, 4)), c_in, size[0], size[1]),
        "w_shape": (c_out, c_in // groups) + kernel,
        "bias": draw(st.booleans()),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "seed": draw(st.integers(0, 2**16)),
    }


def torch_conv2d(x, w, b, stride, padding, dilation, groups):
    """PyTorch's conv; asymmetric padding by padding the input first."""
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (top, bottom), (left, right) = padding
        x = torch.nn.functional.pad(x, (left, right, top, bottom))
        padding = 0
    with warnings.catch_warnings():  # "same" with an even kernel: PyTorch pads a copy; fine
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups)


def run_both(config, dtype):
    rng = np.random.default_rng(config["seed"])
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    w = rng.standard_normal(config["w_shape"]).astype(dtype)
    b = rng.standard_normal(config["w_shape"][0]).astype(dtype) if config["bias"] else None
    settings = (config["stride"], config["padding"], config["dilation"], config["groups"])

    ours = [kl.Tensor(a.copy(), requires_grad=True) for a in (x, w, b) if a is not None]
    y = F.conv2d(ours[0], ours[1], ours[2] if b is not None else None, *settings)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    ty = torch_conv2d(theirs[0], theirs[1], theirs[2] if b is not None else None, *settings)

    # A positive upstream gradient: the bias gradient is a plain sum of it, which with mixed
    # signs can cancel to far below its terms, where float32 rounding alone differs.
    gy = rng.uniform(0.5, 2.0, ty.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    pairs = [("output", y.array, ty.detach().numpy())]
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=False):
        pairs.append((f"grad {name}", a.grad, t.grad.numpy()))
    return pairs


@settings(max_examples=60)
@given(conv_configs())
def test_matches_pytorch_float64(config):
    for what, ours, theirs in run_both(config, np.float64):
        assert ours.dtype == np.float64, what
        assert_rel_close(ours, theirs, TOL[np.float64], f"{what} {config}")


@settings(max_examples=60)
@given(conv_configs())
def test_matches_pytorch_float32(config):
    for what, ours, theirs in run_both(config, np.float32):
        assert ours.dtype == np.float32, what
        assert_rel_close(ours, theirs, TOL[np.float32], f"{what} {config}")


@pytest.mark.parametrize(
    "kernel, dilation",
    [((2, 2), (1, 1)), ((4, 3), (1, 1)), ((5, 2), (2, 3)), ((3, 6), (3, 1)), ((1, 1), (1, 1))],
)
def test_same_padding_keeps_the_size_and_matches_pytorch(kernel, dilation):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 2, 9, 8)), rng.standard_normal((3, 2) + kernel)
    y = F.conv2d(kl.Tensor(x), kl.Tensor(w), None, 1, "same", dilation)
    t = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), None, 1, "same", dilation
    )
    assert y.shape == (2, 3, 9, 8)
    assert relative_error(y.array, t.numpy()) <= 1e-12


@pytest.mark.parametrize(
    "w_shape, stride, padding, groups",
    [((4, 3, 3, 3), 1, "same", 1), ((4, 3, 1, 1), 1, 0, 1), ((6, 2, 2, 3), 2, 1, 3)],
)
def test_one_sample_per_chunk_changes_nothing(monkeypatch, w_shape, stride, padding, groups):
    # The GEMM path builds the columns a few samples at a time (one sample here); outputs and
    # all three gradients must still be PyTorch's.
    monkeypatch.setattr(conv_algorithms, "CHUNK_BYTES", 1)
    config = {
        "x_shape": (3, w_shape[1] * groups, 7, 6),
        "w_shape": w_shape,
        "bias": True,
        "stride": stride,
        "padding": padding,
        "dilation": 1,
        "groups": groups,
        "seed": 7,
    }
    for what, ours, theirs in run_both(config, np.float64):
        assert_rel_close(ours, theirs, TOL[np.float64], f"{what} {config}")


# ---- bad input: a clear error, before any computation


def conv_args(x_shape=(2, 3, 8, 8), w_shape=(4, 3, 3, 3), dtype=np.float32):
    return kl.Tensor(np.zeros(x_shape, dtype)), kl.Tensor(np.zeros(w_shape, dtype))


def test_rejects_input_that_is_not_4d():
    x, w = conv_args(x_shape=(3, 8, 8))
    with pytest.raises(ShapeError, match=r"expected a 4-D input.*got shape \(3, 8, 8\).*x\[None\]"):
        F.conv2d(x, w)


def test_rejects_a_channel_mismatch():
    x, w = conv_args(x_shape=(2, 1, 8, 8))
    with pytest.raises(
        ShapeError, match=r"expected input with 3 channels.*got shape \(2, 1, 8, 8\)"
    ):
        F.conv2d(x, w)


def test_rejects_channels_not_divisible_by_groups():
    x, w = conv_args(x_shape=(1, 6, 8, 8), w_shape=(4, 3, 3, 3))
    with pytest.raises(ShapeError, match="4 output channels are not divisible by groups=3"):
        F.conv2d(x, w, groups=3)


def test_rejects_a_kernel_larger_than_the_padded_input():
    x, w = conv_args(x_shape=(1, 3, 4, 4), w_shape=(2, 3, 5, 5))
    with pytest.raises(ShapeError, match=r"kernel window 5x5.*larger than the padded input 4x4"):
        F.conv2d(x, w)
    x, w = conv_args(x_shape=(1, 3, 6, 6), w_shape=(2, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"kernel window 7x7.*dilation \(3, 3\).*6x6"):
        F.conv2d(x, w, dilation=3)
    assert F.conv2d(x, w, padding=1, dilation=3).shape == (1, 2, 2, 2)


def test_rejects_a_bias_of_the_wrong_shape():
    x, w = conv_args()
    with pytest.raises(ShapeError, match=r"expected a bias of shape \(4,\), got \(3,\)"):
        F.conv2d(x, w, kl.Tensor(np.zeros(3, np.float32)))


def test_rejects_a_dtype_mix():
    x, _ = conv_args(dtype=np.float64)
    _, w = conv_args(dtype=np.float32)
    with pytest.raises(TypeError, match="input dtype float64 differs from kernel dtype float32"):
        F.conv2d(x, w)
    x, w = conv_args()
    with pytest.raises(TypeError, match="bias dtype float64 differs from kernel dtype float32"):
        F.conv2d(x, w, kl.Tensor(np.zeros(4)))


def test_rejects_same_padding_with_a_stride():
    x, w = conv_args()
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1, got stride \(2, 2\)"):
        F.conv2d(x, w, stride=2, padding="same")


@pytest.mark.parametrize("padding", [-1, (0, -2), ((0, 1), (-1, 0))])
def test_rejects_negative_padding(padding):
    x, w = conv_args()
    with pytest.raises(ValueError, match="padding must not be negative"):
        F.conv2d(x, w, padding=padding)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stride": 0}, "stride must be positive"),
        ({"dilation": (1, 0)}, "dilation must be positive"),
        ({"padding": "full"}, "padding must be 'valid', 'same'"),
        ({"stride": 1.5}, "stride must be an int or a pair"),
    ],
)
def test_rejects_bad_settings(kwargs, message):
    x, w = conv_args()
    with pytest.raises(ValueError, match=message):
        F.conv2d(x, w, **kwargs)


@pytest.mark.parametrize("w_shape", [(8, 6, 3, 3), (8, 6, 1, 1), (6, 1, 3, 3), (8, 2, 5, 5)])
def test_an_empty_batch_gives_empty_outputs_and_zero_kernel_gradients_as_pytorch(w_shape):
    groups = 6 if w_shape[1] == 1 else 1
    x_np = np.zeros((0, 6 if groups > 1 else w_shape[1], 7, 7), np.float32)
    w_np = np.random.default_rng(0).standard_normal(w_shape).astype(np.float32)
    x, w = kl.tensor(x_np, requires_grad=True), kl.tensor(w_np, requires_grad=True)
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    y = F.conv2d(x, w, padding=1, groups=groups)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1, groups=groups)
    assert tuple(y.shape) == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.shape == tx.grad.shape
    np.testing.assert_array_equal(w.grad.array, tw.grad.numpy())
