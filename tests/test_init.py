"""Initialisers against torch.nn.init (distributions, fans, gains) and SciPy's truncnorm."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from scipy import stats

import kernelab as kl
from kernelab.core.errors import ShapeError
from kernelab.core.tensor import Tensor
from kernelab.kernels import designed as K
from kernelab.kernels import init, initializers

SHAPE = (64, 32, 3, 3)  # 18432 draws; fan_in 288, fan_out 576
FAN_IN, FAN_OUT = 32 * 9, 64 * 9
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def ours(fn, *args, shape=SHAPE, dtype=np.float64, seed=0, **kwargs):
    t = Tensor(np.full(shape, np.nan, dtype=dtype))
    assert fn(t, *args, generator=seed, **kwargs) is t
    return t.array


def theirs(fn, *args, shape=SHAPE, seed=0, **kwargs):
    t = torch.full(shape, math.nan, dtype=torch.float64)
    fn(t, *args, generator=torch.Generator().manual_seed(seed), **kwargs)
    return t.numpy()


def assert_same_distribution(a, b, mean, std, lo=None, hi=None):
    """Two samples of one distribution: KS test, moments against the formula, exact bounds."""
    n = a.size
    assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue > 1e-3
    for sample in (a, b):
        assert abs(sample.mean() - mean) < 5 * std / math.sqrt(n)
        assert sample.std() == pytest.approx(std, rel=0.04)
        if lo is not None:
            assert sample.min() >= lo and sample.max() <= hi
            assert sample.min() < lo + 0.01 * (hi - lo) and sample.max() > hi - 0.01 * (hi - lo)


def uniform_std(bound):
    return bound / math.sqrt(3)


# ---- distributions against torch.nn.init
def test_uniform_and_normal():
    a, b = ours(init.uniform_, -0.3, 0.7), theirs(torch.nn.init.uniform_, -0.3, 0.7)
    assert_same_distribution(a, b, 0.2, 1 / math.sqrt(12), -0.3, 0.7)
    a, b = ours(init.normal_, 0.5, 2.0), theirs(torch.nn.init.normal_, 0.5, 2.0)
    assert_same_distribution(a, b, 0.5, 2.0)


@pytest.mark.parametrize(
    "mean, std, a, b",
    [
        (0.0, 1.0, -2.0, 2.0),  # torch's defaults: almost all mass inside, redraw normals
        (0.5, 2.0, -1.0, 1.5),
        (0.0, 1.0, 1.5, 3.0),  # 6% of the mass inside: the uniform-proposal path
        (0.0, 0.02, -0.01, 0.0),
    ],
)
def test_trunc_normal_against_torch_and_scipy(mean, std, a, b):
    ref = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    ours_ = ours(init.trunc_normal_, mean, std, a, b)
    theirs_ = theirs(torch.nn.init.trunc_normal_, mean, std, a, b)
    assert_same_distribution(ours_, theirs_, ref.mean(), ref.std(), a, b)


def test_trunc_normal_far_tail_and_infinite_bound():
    """Beyond torch (whose uniform proposal needs finite bounds): checked against SciPy."""
    for a, b in [(2.0, math.inf), (-math.inf, -1.0), (6.0, 7.0)]:
        ref = stats.truncnorm(a, b)
        sample = ours(init.trunc_normal_, 0.0, 1.0, a, b)
        assert sample.min() >= a and sample.max() <= b
        assert stats.kstest(sample.ravel(), ref.cdf).pvalue > 1e-3


def test_trunc_normal_bounds_hold_in_float32():
    sample = ours(init.trunc_normal_, 0.0, 1.0, -0.1, 0.1, dtype=np.float32)
    assert sample.min() >= np.float32(-0.1) and sample.max() <= np.float32(0.1)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(gain):
    std = gain * math.sqrt(2 / (FAN_IN + FAN_OUT))
    bound = math.sqrt(3) * std
    a, b = ours(init.xavier_uniform_, gain), theirs(torch.nn.init.xavier_uniform_, gain)
    assert_same_distribution(a, b, 0.0, std, -bound, bound)
    a, b = ours(init.xavier_normal_, gain), theirs(torch.nn.init.xavier_normal_, gain)
    assert_same_distribution(a, b, 0.0, std)


@pytest.mark.parametrize(
    "a, mode, nonlinearity, fan",
    [
        (0, "fan_in", "leaky_relu", FAN_IN),  # torch's defaults: He for ReLU
        (0.2, "fan_out", "leaky_relu", FAN_OUT),
        (0, "fan_in", "relu", FAN_IN),
        (0, "fan_out", "tanh", FAN_OUT),
        (math.sqrt(5), "fan_in", "leaky_relu", FAN_IN),
    ],
)
def test_kaiming(a, mode, nonlinearity, fan):
    gain = math.sqrt(2 / (1 + a**2)) if nonlinearity == "leaky_relu" else None
    gain = gain or {"relu": math.sqrt(2), "tanh": 5 / 3}[nonlinearity]
    std = gain / math.sqrt(fan)
    args = (a, mode, nonlinearity)
    x, y = ours(init.kaiming_uniform_, *args), theirs(torch.nn.init.kaiming_uniform_, *args)
    assert_same_distribution(x, y, 0.0, std, -math.sqrt(3) * std, math.sqrt(3) * std)
    x, y = ours(init.kaiming_normal_, *args), theirs(torch.nn.init.kaiming_normal_, *args)
    assert_same_distribution(x, y, 0.0, std)


def test_default_is_torchs_conv_default():
    """U(±1/√fan_in) is the distribution torch's Conv2d.reset_parameters draws."""
    ours_ = ours(initializers.get_initializer("default"))
    theirs_ = theirs(torch.nn.init.kaiming_uniform_, math.sqrt(5))
    bound = 1 / math.sqrt(FAN_IN)
    assert_same_distribution(ours_, theirs_, 0.0, uniform_std(bound), -bound, bound)


def test_lecun_as_keras_defines_it():
    s = math.sqrt(1 / FAN_IN) / 0.87962566103423978  # Keras VarianceScaling, truncated normal
    a, b = ours(init.lecun_normal_), theirs(torch.nn.init.trunc_normal_, 0.0, s, -2 * s, 2 * s)
    assert_same_distribution(a, b, 0.0, math.sqrt(1 / FAN_IN), -2 * s, 2 * s)
    bound = math.sqrt(3 / FAN_IN)
    a, b = ours(init.lecun_uniform_), theirs(torch.nn.init.uniform_, -bound, bound)
    assert_same_distribution(a, b, 0.0, uniform_std(bound), -bound, bound)


def test_keras_aliases():
    assert init.glorot_uniform_ is init.xavier_uniform_
    assert init.glorot_normal_ is init.xavier_normal_
    assert init.he_uniform_ is init.kaiming_uniform_
    assert init.he_normal_ is init.kaiming_normal_


# ---- fans and gains
@pytest.mark.parametrize(
    "shape", [(8, 3, 3, 3), (16, 4, 5, 3), (10, 20), (6, 2, 7), (4, 1, 1, 1), (3, 2, 2, 2, 2)]
)
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fan_in_and_fan_out(Tensor(np.empty(shape))) == expected
    assert init._calculate_fan_in_and_fan_out(Tensor(np.empty(shape))) == expected


def test_fans_of_a_grouped_conv():
    conv = kl.nn.Conv2d(8, 16, (5, 3), groups=2)
    assert init.fan_in_and_fan_out(conv.weight) == (8 // 2 * 15, 16 * 15)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, received shape \(5,\)"):
        init.fan_in_and_fan_out(Tensor(np.empty(5)))


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        (name, None)
        for name in [
            "linear",
            "conv1d",
            "conv2d",
            "conv3d",
            "conv_transpose1d",
            "conv_transpose2d",
            "conv_transpose3d",
            "sigmoid",
            "tanh",
            "relu",
            "leaky_relu",
            "selu",
        ]
    ]
    + [("leaky_relu", 0.2), ("leaky_relu", 1), ("leaky_relu", 0.0), ("relu", 3.0)],
)
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


@pytest.mark.parametrize("nonlinearity, param", [("gelu", None), ("leaky_relu", True)])
def test_calculate_gain_errors_like_torch(nonlinearity, param):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError, match=repr(param) if param else "gelu"):
        init.calculate_gain(nonlinearity, param)


def test_normal_and_uniform_refuse_what_torch_refuses():
    t = Tensor(np.zeros((2, 3), np.float32))
    for fill, args in ((init.normal_, (0.0, -1.0)), (init.uniform_, (1.0, 0.0))):
        with pytest.raises(ValueError, match=r"expected (std >= 0|a <= b)"):
            fill(t, *args)
        with pytest.raises(RuntimeError):
            getattr(torch.nn.init, fill.__name__)(torch.zeros(2, 3), *args)


def test_kaiming_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'fan_in' or 'fan_out', received 'fan'"):
        ours(init.kaiming_uniform_, 0, "fan")


# ---- structured initialisers
@pytest.mark.parametrize("shape", [(4, 3, 3, 3), (50, 2, 2, 2), (6, 6), (5, 3, 7)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape, gain):
    w = ours(init.orthogonal_, gain, shape=shape).reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-12)
    t = theirs(torch.nn.init.orthogonal_, gain, shape=shape).reshape(rows, cols)
    reference = t @ t.T if rows <= cols else t.T @ t
    np.testing.assert_allclose(gram, reference, atol=1e-12)  # same property torch guarantees


@pytest.mark.parametrize(
    "shape, groups",
    [((6, 4, 3, 3), 1), ((4, 6, 5, 5), 1), ((8, 2, 3, 3), 2), ((6, 1, 3, 3), 3), ((4, 4, 4, 4), 1)],
)
def test_dirac_is_torchs_and_an_identity_convolution(shape, groups):
    w = Tensor(np.ones(shape, np.float32))
    init.dirac_(w, groups)
    expected = torch.nn.init.dirac_(torch.ones(shape), groups)
    np.testing.assert_array_equal(w.array, expected.numpy())
    if shape[2] % 2:  # odd kernels with "same" padding: every kept channel passes through
        x = torch.randn(2, shape[1] * groups, 7, 6, generator=torch.Generator().manual_seed(0))
        y = TF.conv2d(x, torch.from_numpy(w.array), padding=shape[2] // 2, groups=groups)
        per_group = shape[0] // groups
        for o in range(shape[0]):
            g, d = divmod(o, per_group)
            if d < shape[1]:
                torch.testing.assert_close(y[:, o], x[:, g * shape[1] + d])
            else:
                assert not y[:, o].any()


def test_dirac_and_eye_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        init.dirac_(Tensor(np.empty((6, 2, 3, 3))), 4)
    with pytest.raises(ValueError, match="3-, 4- or 5-D"):
        init.dirac_(Tensor(np.empty((6, 2))))
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(Tensor(np.empty((6, 2, 3, 3))))


def test_eye_and_constants():
    w = Tensor(np.empty((3, 5), np.float32))
    np.testing.assert_array_equal(init.eye_(w).array, torch.nn.init.eye_(torch.empty(3, 5)))
    assert w.dtype == np.float32
    np.testing.assert_array_equal(init.zeros_(w).array, 0)
    np.testing.assert_array_equal(init.ones_(w).array, 1)
    np.testing.assert_array_equal(init.constant_(w, 0.1).array, np.float32(0.1))


# ---- dtype, in place, generator
RANDOM = [
    (init.uniform_, ()),
    (init.normal_, ()),
    (init.trunc_normal_, ()),
    (init.xavier_uniform_, ()),
    (init.xavier_normal_, ()),
    (init.kaiming_uniform_, ()),
    (init.kaiming_normal_, ()),
    (init.lecun_normal_, ()),
    (init.lecun_uniform_, ()),
    (init.orthogonal_, ()),
]


@pytest.mark.parametrize("fn, args", RANDOM)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_and_dtype_preserved(fn, args, dtype):
    t = Tensor(np.zeros((8, 4, 3, 3), dtype))
    array = t.array
    assert fn(t, *args, generator=0) is t
    assert t.array is array and t.dtype == dtype and np.all(np.isfinite(array)) and array.any()


@pytest.mark.parametrize("fn, args", RANDOM)
def test_generator_determinism(fn, args):
    shape = (8, 4, 3, 3)
    same = ours(fn, *args, shape=shape, seed=7), ours(fn, *args, shape=shape, seed=7)
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], ours(fn, *args, shape=shape, seed=8))
    from_rng = ours(fn, *args, shape=shape, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(same[0], from_rng)
    draws = []
    for _ in range(2):
        kl.manual_seed(3)
        t = Tensor(np.empty(shape))
        draws.append(fn(t, *args).array.copy())
    np.testing.assert_array_equal(*draws)


# ---- kernel_
def test_kernel_copies_one_kernel_everywhere():
    w = kl.nn.Conv2d(3, 4, 3).weight
    init.kernel_(w, K.sobel_x())
    assert w.array.shape == (4, 3, 3, 3) and w.dtype == np.float32
    np.testing.assert_array_equal(w.array, np.broadcast_to(K.sobel_x(), (4, 3, 3, 3)))
    init.kernel_(w, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # a nested list is one kernel
    np.testing.assert_array_equal(w.array, np.broadcast_to(K.sobel_x(), (4, 3, 3, 3)))


@pytest.mark.parametrize("as_array", [False, True])
def test_kernel_cycles_a_bank_across_output_channels(as_array):
    bank = [K.sobel_x(), K.sobel_y(), K.laplacian()]
    w = Tensor(np.empty((7, 2, 3, 3)))
    init.kernel_(w, np.stack(bank) if as_array else bank)
    for o in range(7):
        for c in range(2):
            np.testing.assert_array_equal(w.array[o, c], bank[o % 3])


def test_kernel_scale_by_depth_matches_one_channel_response():
    image = torch.randn(1, 1, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    single = TF.conv2d(image, torch.from_numpy(K.gaussian(5, 1.0))[None, None])
    w = Tensor(np.empty((1, 3, 5, 5)))
    init.kernel_(w, K.gaussian(5, 1.0), scale_by_depth=True)
    grey_rgb = image.expand(1, 3, 9, 9)
    torch.testing.assert_close(TF.conv2d(grey_rgb, torch.from_numpy(w.array)), single)
    init.kernel_(w, K.gaussian(5, 1.0))
    torch.testing.assert_close(TF.conv2d(grey_rgb, torch.from_numpy(w.array)), 3 * single)


def test_kernel_errors_name_expected_and_received():
    w = Tensor(np.empty((8, 3, 3, 3)))
    with pytest.raises(
        ShapeError,
        match=r"expected kernels of shape \(3, 3\).*received kernel 1 "
        r"of shape \(5, 5\)",
    ):
        init.kernel_(w, [K.sobel_x(), K.sobel_x(5)])
    with pytest.raises(ShapeError, match=r"received shape \(2, 3, 3, 3\)"):
        init.kernel_(w, np.zeros((2, 3, 3, 3)))
    with pytest.raises(ShapeError, match=r"received shape \(0,\)"):
        init.kernel_(w, [])
    with pytest.raises(ShapeError, match=r"conv weight .* received shape \(8, 3\)"):
        init.kernel_(Tensor(np.empty((8, 3))), K.sobel_x())


# ---- registry
def test_every_initializer_runs_and_keeps_dtype():
    needs = {"constant": ":0.5"}
    for name in initializers.INITIALIZERS:
        shape = (5, 7) if name == "eye" else (8, 4, 3, 3)
        w = Tensor(np.full(shape, np.nan, np.float32))
        out = initializers.get_initializer(name + needs.get(name, ""))(w, 0)
        assert out is w and w.dtype == np.float32 and np.all(np.isfinite(w.array)), name


def test_initializer_names():
    expected = {
        *("zeros", "ones", "constant", "normal", "uniform", "trunc_normal", "default"),
        *("glorot_uniform", "xavier_uniform", "glorot_normal", "xavier_normal"),
        *("he_uniform", "kaiming_uniform", "he_normal", "kaiming_normal"),
        *("lecun_normal", "lecun_uniform", "orthogonal", "dirac"),
        *("sobel", "gabor", "gaussian", "laplacian", "edges"),
    }
    assert expected <= set(initializers.INITIALIZERS)
    designed = {"sobel", "gabor", "gaussian", "laplacian", "edges"}
    assert designed == initializers.HAND_DESIGNED  # the banks the command line applies to one layer


def test_parameterised_initializers():
    w = Tensor(np.empty(SHAPE))
    initializers.get_initializer("constant:0.1")(w)
    np.testing.assert_array_equal(w.array, 0.1)
    initializers.get_initializer("normal:0.01")(w, 0)
    assert w.array.std() == pytest.approx(0.01, rel=0.03) and abs(w.array.mean()) < 1e-3
    initializers.get_initializer("uniform:-0.1:0.1")(w, 0)
    assert w.array.min() >= -0.1 and w.array.max() <= 0.1 and w.array.min() < -0.099
    initializers.get_initializer("trunc_normal:0.02:-0.03:0.03")(w, 0)
    assert w.array.min() >= -0.03 and w.array.max() <= 0.03
    initializers.get_initializer("he_normal")(w, 0)
    assert w.array.std() == pytest.approx(math.sqrt(2 / FAN_IN), rel=0.03)
    initializers.get_initializer("kaiming_uniform:2.0")(w, 0)
    assert w.array.max() <= math.sqrt(2 / 5) * math.sqrt(3 / FAN_IN)
    first = initializers.get_initializer("glorot_uniform")(Tensor(np.empty(SHAPE)), 4).array
    second = initializers.get_initializer("Xavier-Uniform")(Tensor(np.empty(SHAPE)), 4).array
    np.testing.assert_array_equal(first, second)


def test_hand_designed_banks():
    w = Tensor(np.empty((5, 2, 3, 3)))
    initializers.get_initializer("sobel")(w)
    for o in range(5):
        np.testing.assert_array_equal(w.array[o, 1], SOBEL if o % 2 == 0 else SOBEL.T)
    initializers.get_initializer("edges")(w)
    assert np.allclose(w.array.sum(axis=(2, 3)), 0)  # every edge kernel is zero-sum
    initializers.get_initializer("gaussian:1.0")(w)
    np.testing.assert_allclose(w.array.sum(axis=(2, 3)), 1.0)
    initializers.get_initializer("laplacian:8")(w)
    np.testing.assert_array_equal(w.array[3, 0], [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    big = Tensor(np.empty((10, 1, 7, 5)))
    initializers.get_initializer("gabor")(big)
    assert len({big.array[o, 0].tobytes() for o in range(8)}) == 8  # 8 orientations
    np.testing.assert_array_equal(big.array[8], big.array[0])
    initializers.get_initializer("laplacian")(Tensor(np.empty((2, 1, 5, 5))))
    grouped = Tensor(np.empty((8, 2, 3, 3)))
    initializers.get_initializer("dirac:2")(grouped)
    np.testing.assert_array_equal(grouped.array, torch.nn.init.dirac_(torch.empty(8, 2, 3, 3), 2))


@pytest.mark.parametrize(
    "name, words",
    [
        ("glorot", "unknown initializer 'glorot'; expected one of: default, zeros"),
        ("constant", "missing parameters; expected constant:val"),
        ("normal:small", "std must be a number within ±1,000,000, received 'small'"),
        ("normal:1:0:3", r"too many parameters; expected normal\[:std\[:mean\]\]"),
    ],
)
def test_registry_errors(name, words):
    with pytest.raises(ValueError, match=words):
        initializers.get_initializer(name)


def test_bank_errors_at_impossible_sizes():
    with pytest.raises(ValueError, match="odd"):
        initializers.get_initializer("sobel")(Tensor(np.empty((2, 1, 4, 4))))
    with pytest.raises(ShapeError, match="conv weight"):
        initializers.get_initializer("sobel")(Tensor(np.empty((2, 9))))
