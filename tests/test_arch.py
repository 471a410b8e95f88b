"""Architecture specs: every token and option, the classic network against PyTorch, errors."""

import numpy as np
import pytest
import torch
from comparisons import torch_classic

import kernelab as kl
from kernelab import nn
from kernelab.apps import arch
from kernelab.apps.arch import CLASSIC, SpecError


def test_classic_network_matches_pytorch():
    model = arch.build(CLASSIC, generator=0)
    reference = torch_classic()
    ours = {k: np.asarray(v.array) for k, v in model.state_dict().items()}
    theirs = reference.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    reference.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.items()})
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(kl.Tensor(x)).array, expected, rtol=1e-4, atol=1e-5)
    assert sum(p.array.size for p in model.parameters()) == 832 + 51_264 + 31_370


def test_default_init_is_pytorchs_bound():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernels and biases, as torch's default."""
    model = arch.build("conv5x32,flatten,linear10", generator=0)
    conv, linear = model[0], model[2]
    for param, fan_in in [(conv.weight, 25), (conv.bias, 25), (linear.weight, 32 * 24 * 24)]:
        values = param.array
        assert np.abs(values).max() <= 1 / np.sqrt(fan_in)
        assert np.abs(values).max() > 0.8 / np.sqrt(fan_in)


def test_conv_options():
    model = arch.build(
        "conv3x5x8-p1-s2-d2,relu,conv3x8-g2-nobias,conv3x2-dw2,conv3x4-sympoint,conv1x4-valid",
        (1, 28, 28),
    )
    first, grouped, depthwise, symmetric, valid = (model[i] for i in (0, 2, 3, 4, 5))
    assert first.kernel_size == (3, 5) and first.out_channels == 8
    assert first.stride == (2, 2) and first.dilation == (2, 2)
    assert first.padding == ((1, 1), (1, 1))
    assert grouped.groups == 2 and grouped.bias is None
    assert depthwise.groups == 8 and depthwise.out_channels == 16  # 8 inputs x multiplier 2
    assert symmetric.symmetry == "point"
    w = symmetric.weight.array
    assert np.array_equal(w, w[:, :, ::-1, ::-1])  # point symmetric: unchanged by 180°
    assert valid.padding == ((0, 0), (0, 0))


def test_same_padding_keeps_the_size():
    model = arch.build("conv3x4-same,conv4x2x4-same", (1, 9, 10))
    assert model(kl.Tensor(np.zeros((2, 1, 9, 10), np.float32))).shape == (2, 4, 9, 10)


def test_other_layers():
    model = arch.build(
        "conv3x4,maxpool2-s1-p1,avgpool2,bn,leakyrelu:0.2,tanh,sigmoid,gap,flatten,bn,"
        "dropout0.25,dropout,linear10",
        (3, 16, 16),
    )
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Conv2d",
        "MaxPool2d",
        "AvgPool2d",
        "BatchNorm2d",
        "LeakyReLU",
        "Tanh",
        "Sigmoid",
        "AdaptiveAvgPool2d",
        "Flatten",
        "BatchNorm1d",
        "Dropout",
        "Dropout",
        "Linear",
    ]
    assert model[0].in_channels == 3
    assert (model[1].kernel_size, model[1].stride, model[1].padding) == (2, 1, 1)
    assert model[4].negative_slope == 0.2
    assert (model[10].p, model[11].p) == (0.25, 0.5)
    assert model[12].in_features == 4 and model.training
    assert model(kl.Tensor(np.zeros((2, 3, 16, 16), np.float32))).shape == (2, 10)


def test_spec_is_case_and_space_insensitive():
    model = arch.build(" Conv3x4 , RELU,flatten , linear10 ", (1, 8, 8))
    assert [type(m).__name__ for m in model] == ["Conv2d", "ReLU", "Flatten", "Linear"]


def test_a_seed_gives_the_same_model_and_each_layer_its_own_draws():
    spec = "conv3x4,conv3x4,flatten,linear10"
    a, b, c = (arch.build(spec, (1, 8, 8), generator=g) for g in (0, 0, 1))
    for (name, x), y, z in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert np.array_equal(x.array, y.array), name
        assert not np.array_equal(x.array, z.array), name
    # one stream for the whole model: a seed passed on to each layer would restart it, and
    # the bias would repeat the kernel's first draws (both are U(-1/3, 1/3) here)
    assert not np.allclose(a[0].weight.array.ravel()[:4], a[0].bias.array)
    assert not np.allclose(a[1].weight.array.ravel()[:4] * 6, a[0].weight.array.ravel()[:4] * 3)


def test_the_default_generator_follows_manual_seed():
    kl.manual_seed(5)
    a = arch.build("conv3x4,flatten,linear2", (1, 6, 6))
    kl.manual_seed(5)
    b = arch.build("conv3x4,flatten,linear2", (1, 6, 6))
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(x.array, y.array)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty architecture spec"),
        (" , ", "empty architecture spec"),
        ("conv3x4,banana", "unknown layer 'banana'"),
        ("conv3x4-q2", r"'conv3x4-q2': unknown option -q"),
        ("maxpool2-same", r"'maxpool2-same': unknown option -same"),
        ("flatten,linear10,conv3x4", r"'conv3x4' needs an image input \(C, H, W\)"),
        ("conv3x4,linear10", "'linear10' needs a flat input: put 'flatten' before it"),
        ("conv3x4-symfoo", "unknown symmetry -symfoo"),
        ("conv3x4-symx-symy", "more than one -sym option"),
        ("conv9x4", r"layer 1 'conv9x4'"),
        ("conv3x4,maxpool2,maxpool2,maxpool2", r"layer 4 'maxpool2'"),
        ("conv3x3-g2", r"layer 1 'conv3x3-g2'|divisible"),
        ("conv3x4-same-s2", "same"),
        ("conv3x4-s0", r"stride must be positive, got \(0, 0\)"),  # 0 is not the default
        ("conv3x4-d0", r"dilation must be positive, got \(0, 0\)"),
        ("conv3x4-g0", "groups must be a positive integer, got 0"),
    ],
)
def test_bad_specs_name_the_bad_part(spec, message):
    with pytest.raises(SpecError, match=message):
        arch.build(spec, (1, 8, 8))


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_built_model_trains_as_a_module():
    """Output, parameter gradients and one SGD step equal torch's for the same layers."""
    model = arch.build("conv3x2,relu,flatten,linear3", (1, 5, 5), generator=0)
    assert isinstance(model, nn.Sequential)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(18, 3)
    )
    reference.load_state_dict({k: torch.tensor(v.array) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    gy = rng.standard_normal((2, 3)).astype(np.float32)
    y, expected = model(kl.Tensor(x)), reference(torch.from_numpy(x))
    np.testing.assert_allclose(y.array, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    y.backward(gy)
    expected.backward(torch.from_numpy(gy))
    kl.optim.SGD(model.parameters(), lr=0.1).step()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()
    theirs = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        want = theirs[name]
        np.testing.assert_allclose(np.asarray(p.grad), want.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.array, want.detach().numpy(), rtol=1e-5, atol=1e-6)
