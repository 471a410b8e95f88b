"""Layers: PyTorch's default initialisation, forward parity, train/eval semantics, and clear
errors for bad input that name the layer, what it expected and what it got."""

import math

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close
from scipy import stats

import kernelab as kl
from kernelab import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---- default initialisation: PyTorch's U(−1/√fan_in, 1/√fan_in)


@pytest.mark.parametrize(
    "args, fan_in",
    [
        ((1, 32, 5), 25),
        ((32, 64, 5), 32 * 25),
        ((6, 12, (3, 2)), 6 * 6),
        ((6, 12, 3, 1, 0, 1, 3), 2 * 9),  # groups=3: each kernel sees 2 channels
        ((8, 16, 3, 1, 0, 1, 8), 9),  # depthwise
    ],
)
def test_conv_init_bounds_equal_pytorch(args, fan_in):
    ours, theirs = nn.Conv2d(*args, generator=0), torch.nn.Conv2d(*args)
    bound = 1 / math.sqrt(fan_in)
    # PyTorch's bound, from its own fan-in computation (kaiming_uniform_ with a=√5).
    torch_fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)
    assert torch_fan_in == fan_in
    for name in ("weight", "bias"):
        w, tw = getattr(ours, name).array, getattr(theirs, name).detach().numpy()
        assert w.shape == tw.shape and w.dtype == tw.dtype == np.float32
        assert np.abs(w).max() <= np.float32(bound)
        assert np.abs(tw).max() <= np.float32(bound)


def test_init_distribution_matches_pytorch():
    torch.manual_seed(0)
    ours = nn.Conv2d(64, 128, 3, generator=1).weight.array.ravel()  # 73,728 values
    theirs = torch.nn.Conv2d(64, 128, 3).weight.detach().numpy().ravel()
    bound = 1 / math.sqrt(64 * 9)
    # U(−b, b): mean 0, variance b²/3, and the extremes reach the bound.
    for w in (ours, theirs):
        n = w.size
        assert abs(w.mean()) < 5 * bound / math.sqrt(3 * n)
        assert abs(w.var() / (bound**2 / 3) - 1) < 0.03
        assert w.max() > 0.999 * bound and w.min() < -0.999 * bound
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert stats.kstest(ours, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3


def test_linear_init_matches_pytorch():
    torch.manual_seed(0)
    ours, theirs = nn.Linear(3136, 10, generator=2), torch.nn.Linear(3136, 10)
    bound = 1 / math.sqrt(3136)
    for w in (ours.weight.array, theirs.weight.detach().numpy()):
        assert np.abs(w).max() <= np.float32(bound)
        assert abs(w.var() / (bound**2 / 3) - 1) < 0.05
    assert (
        stats.ks_2samp(ours.weight.array.ravel(), theirs.weight.detach().numpy().ravel()).pvalue
        > 1e-3
    )
    assert ours.bias.shape == (10,) and np.abs(ours.bias.array).max() <= np.float32(bound)


def test_init_is_reproducible_from_a_generator():
    a, b = nn.Conv2d(3, 4, 3, generator=5), nn.Conv2d(3, 4, 3, generator=5)
    np.testing.assert_array_equal(a.weight.array, b.weight.array)
    kl.manual_seed(3)
    c = nn.Linear(4, 4)
    kl.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(4, 4).weight.array, c.weight.array)


def test_batchnorm_init_matches_pytorch():
    ours, theirs = nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy())


# ---- layers against PyTorch's


def conv_settings():
    return [
        {"in_channels": 3, "out_channels": 6, "kernel_size": 3},
        {"in_channels": 3, "out_channels": 6, "kernel_size": (2, 4), "stride": 2, "padding": 1},
        {"in_channels": 4, "out_channels": 8, "kernel_size": 4, "padding": "same", "dilation": 2},
        {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 4, "bias": False},
        {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": "valid"},
    ]


@pytest.mark.parametrize("kwargs", conv_settings())
def test_conv_layer_matches_pytorch(kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(**kwargs).double()
    ours = nn.Conv2d(**kwargs, dtype=kl.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert ours.weight.shape == tuple(theirs.weight.shape)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal((2, kwargs["in_channels"], 9, 8))
    xt = torch.tensor(x, requires_grad=True)
    y, ty = ours(kl.Tensor(x)), theirs(xt)
    assert_rel_close(y.array, ty.detach().numpy(), 1e-10, "output")
    y.sum().backward()
    ty.sum().backward()
    assert_rel_close(ours.weight.grad, theirs.weight.grad.numpy(), 1e-10, "weight grad")


def test_conv_layer_normalises_its_arguments():
    conv = nn.Conv2d(3, 6, (3, 5), stride=2, padding=((1, 0), (2, 1)), dilation=(1, 2), groups=3)
    assert conv.kernel_size == (3, 5) and conv.stride == (2, 2) and conv.dilation == (1, 2)
    assert conv.padding == ((1, 0), (2, 1))
    assert conv.weight.shape == (6, 1, 3, 5)
    same = nn.Conv2d(1, 1, 4, padding="same", dilation=3)
    assert same.padding == "same" and same.geometry.padding == ((4, 5), (4, 5))


LAYERS = [
    ("ReLU", (), {}),
    ("LeakyReLU", (0.2,), {}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("Softmax", (), {"dim": 1}),
    ("LogSoftmax", (), {"dim": -1}),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("MaxPool2d", (2,), {"dilation": 2, "stride": 1}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}),
    ("AvgPool2d", (2,), {"ceil_mode": True, "divisor_override": 3}),
    ("AdaptiveAvgPool2d", ((3, None),), {}),
    ("Flatten", (), {}),
    ("Flatten", (0, 2), {}),
    ("Identity", (), {}),
]


@pytest.mark.parametrize("name, args, kwargs", LAYERS)
def test_parameterless_layers_match_pytorch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 6))
    xt = torch.tensor(x, requires_grad=True)
    xk = kl.Tensor(x.copy(), requires_grad=True)
    y, ty = ours(xk), theirs(xt)
    assert_rel_close(y.array, ty.detach().numpy(), 1e-10, "output")
    gy = np.random.default_rng(2).standard_normal(y.shape)
    if name != "Identity":
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        assert_rel_close(xk.grad, xt.grad.numpy(), 1e-10, "gradient")
    if name not in ("Sigmoid", "Tanh", "Identity", "AvgPool2d"):
        assert repr(ours) == repr(theirs)


def test_softmax_without_dim_picks_pytorch_legacy_axis():
    for shape in [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 2)]:
        x = np.random.default_rng(3).standard_normal(shape)
        with pytest.warns(UserWarning):
            t = torch.nn.Softmax()(torch.from_numpy(x))
        assert_rel_close(nn.Softmax()(kl.Tensor(x)).array, t.numpy(), 1e-12, str(shape))


@pytest.mark.parametrize(
    "name, kwargs, target",
    [
        ("CrossEntropyLoss", {"label_smoothing": 0.1, "weight": [1.0, 2.0, 0.5]}, "index"),
        ("CrossEntropyLoss", {"reduction": "sum", "ignore_index": 1}, "index"),
        ("CrossEntropyLoss", {}, "probability"),
        ("NLLLoss", {"reduction": "none"}, "index"),
        ("MSELoss", {"reduction": "sum"}, "same"),
    ],
)
def test_loss_layers_match_pytorch(name, kwargs, target):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3))
    t = {
        "index": rng.integers(0, 3, 4),
        "probability": rng.dirichlet(np.ones(3), 4),
        "same": rng.standard_normal((4, 3)),
    }[target]
    torch_kwargs = dict(kwargs)
    if "weight" in kwargs:
        torch_kwargs["weight"] = torch.tensor(kwargs["weight"], dtype=torch.float64)
    ours = getattr(nn, name)(**kwargs)(kl.Tensor(x), kl.Tensor(t))
    theirs = getattr(torch.nn, name)(**torch_kwargs)(torch.from_numpy(x), torch.from_numpy(t))
    assert_rel_close(ours.array, theirs.numpy(), 1e-12, name)


# ---- train / eval


def test_dropout_layer_modes():
    layer = nn.Dropout(0.5, generator=0)
    x = kl.Tensor(np.ones((50, 50), np.float32))
    y = layer(x).array
    assert set(np.unique(y)) == {0.0, 2.0}
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == "Dropout(p=0.5)"
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got -0.1"):
        nn.Dropout(-0.1)
    two_d = nn.Dropout2d(0.5, generator=1)
    maps = two_d(kl.Tensor(np.ones((4, 8, 3, 3), np.float32))).array.reshape(4, 8, 9)
    assert (maps.min(axis=2) == maps.max(axis=2)).all()


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize(
    "layer, shape",
    [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5))],
)
def test_batchnorm_running_statistics_follow_pytorch(layer, shape, momentum):
    ours = getattr(nn, layer)(3, momentum=momentum, dtype=kl.float64)
    theirs = getattr(torch.nn, layer)(3, momentum=momentum).double()
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.standard_normal(shape) * 3 + 1
        y, ty = ours(kl.Tensor(x)), theirs(torch.from_numpy(x))
        assert_rel_close(y.array, ty.detach().numpy(), 1e-10, "training output")
    for key, value in theirs.state_dict().items():
        assert_rel_close(ours.state_dict()[key].numpy(), value.numpy(), 1e-12, key)
    assert ours.num_batches_tracked.item() == 4
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    y = ours(kl.Tensor(x))
    with torch.no_grad():
        assert_rel_close(y.array, theirs(torch.from_numpy(x)).numpy(), 1e-10, "eval output")
    assert ours.num_batches_tracked.item() == 4  # evaluation leaves the statistics alone


def test_batchnorm_without_running_statistics_uses_the_batch():
    ours = nn.BatchNorm2d(3, track_running_stats=False, dtype=kl.float64).eval()
    theirs = torch.nn.BatchNorm2d(3, track_running_stats=False).double().eval()
    x = np.random.default_rng(6).standard_normal((3, 3, 4, 4))
    with torch.no_grad():
        assert_rel_close(ours(kl.Tensor(x)).array, theirs(torch.from_numpy(x)).numpy(), 1e-10, "y")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]


# ---- bad input: the layer, what it expected and what it got


def image(shape, dtype=np.float32):
    return kl.Tensor(np.zeros(shape, dtype))


def test_conv_given_the_wrong_number_of_channels():
    conv = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=5)
    with pytest.raises(kl.ShapeError) as error:
        conv(image((8, 1, 28, 28)))
    message = str(error.value)
    assert message.startswith("Conv2d(32, 64, kernel_size=(5, 5)")
    assert "expected input with 32 channels" in message
    assert "got shape (8, 1, 28, 28)" in message


def test_conv_given_an_input_that_is_not_4d():
    with pytest.raises(kl.ShapeError, match=r"^Conv2d\(1, 32.*expected a 4-D input.*\(28, 28\)"):
        nn.Conv2d(1, 32, 5)(image((28, 28)))
    with pytest.raises(kl.ShapeError, match=r"got shape \(1, 28, 28\) \(add a batch axis"):
        nn.Conv2d(1, 32, 5)(image((1, 28, 28)))


def test_conv_errors_at_construction_name_the_layer():
    with pytest.raises(
        ValueError, match=r"^Conv2d\(3, 6, kernel_size=3\): .*divisible by groups=2"
    ):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(
        ValueError, match=r"^Conv2d\(3, 6, kernel_size=3\): padding='same' needs stride 1, got"
    ):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(
        ValueError, match=r"^Conv2d\(3, 6, kernel_size=3\): padding must not be negative, got -1"
    ):
        nn.Conv2d(3, 6, 3, padding=-1)
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 6, kernel_size=0\): kernel_size must be"):
        nn.Conv2d(3, 6, 0)
    with pytest.raises(ValueError, match="groups must be a positive integer, got 0"):
        nn.Conv2d(3, 6, 3, groups=0)  # as torch: a ValueError, not a division by zero


def test_conv_kernel_larger_than_the_padded_input():
    with pytest.raises(kl.ShapeError, match=r"^Conv2d\(1, 4.*kernel window 5x5.*padded input 3x3"):
        nn.Conv2d(1, 4, 5)(image((1, 1, 3, 3)))


def test_conv_with_a_bias_of_the_wrong_shape():
    conv = nn.Conv2d(1, 4, 3)
    conv.bias = nn.Parameter(np.zeros(3, np.float32))
    with pytest.raises(
        kl.ShapeError, match=r"^Conv2d\(1, 4.*expected a bias of shape \(4,\), got \(3,\)"
    ):
        conv(image((1, 1, 5, 5)))


def test_wrong_dtype_mix_names_the_layer():
    with pytest.raises(
        TypeError, match=r"^Conv2d\(1, 4.*input dtype float64 differs from kernel dtype float32"
    ):
        nn.Conv2d(1, 4, 3)(image((1, 1, 5, 5), np.float64))
    with pytest.raises(TypeError, match=r"^Linear\(in_features=3.*input dtype uint8 differs"):
        nn.Linear(3, 2)(image((2, 3), np.uint8))


def test_linear_given_the_wrong_number_of_features():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3136, 10))
    with pytest.raises(kl.ShapeError) as error:
        model(image((8, 64, 8, 8)))
    message = str(error.value)
    assert message.startswith("Linear(in_features=3136, out_features=10, bias=True): ")
    assert "expected input with 3136 features" in message and "got shape (8, 4096)" in message


def test_batchnorm_given_the_wrong_number_of_channels():
    with pytest.raises(
        kl.ShapeError,
        match=r"^BatchNorm2d\(16.*expected a 4-D input with 16 channels.*got shape \(2, 8, 5, 5\)",
    ):
        nn.BatchNorm2d(16)(image((2, 8, 5, 5)))
    with pytest.raises(
        kl.ShapeError, match=r"^BatchNorm1d\(4.*2 or 3-D input with 4 channels.*\(2, 4, 5, 5\)"
    ):
        nn.BatchNorm1d(4)(image((2, 4, 5, 5)))


def test_cross_entropy_target_out_of_range_names_the_layer():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(
        IndexError,
        match=r"^CrossEntropyLoss\(\): target 5 is out of range: expected .* in \[0, 5\)",
    ):
        loss(image((2, 5)), kl.Tensor(np.array([0, 5])))


def test_the_innermost_layer_names_itself_once():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(kl.ShapeError) as error:
        model(image((1, 2, 5, 5)))
    assert str(error.value).count("Conv2d(3, 4") == 1
    assert "Sequential" not in str(error.value)


def test_pool_errors_name_the_layer():
    with pytest.raises(
        ValueError, match=r"^MaxPool2d\(kernel_size=3.*padding 2 must be at most half"
    ):
        nn.MaxPool2d(3, padding=2)(image((1, 1, 8, 8)))
