"""Conv2d(symmetry=...): exactly symmetric through training, initialised as the symmetric part
of the usual draw, saved and rebuilt from the architecture spec."""

import numpy as np
import pytest
from test_constraints import ALL_CASES, group_average, is_symmetric

import kernelab as kl
import kernelab.functional as F
from kernelab import nn, optim
from kernelab.apps import arch
from kernelab.apps.transfer import read_weights, transfer
from kernelab.core import serialization
from kernelab.kernels import constraints, init


def train_steps(conv, make_optimizer, steps=25):
    rng = np.random.default_rng(5)
    x = kl.tensor(rng.standard_normal((3, conv.in_channels, 8, 9)).astype(np.float32))
    with kl.no_grad():
        target = kl.tensor(rng.standard_normal(conv(x).shape).astype(np.float32))
    optimizer = make_optimizer(conv.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(conv(x), target).backward()
        optimizer.step()


OPTIMIZERS = {
    "sgd-momentum": lambda p: optim.SGD(p, lr=0.2, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=0.05),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("symmetry, size", ALL_CASES)
def test_kernel_stays_exactly_symmetric_through_training(symmetry, size, name):
    conv = nn.Conv2d(2, 3, size, padding=1, symmetry=symmetry, generator=0)
    before = conv.materialize()
    train_steps(conv, OPTIMIZERS[name])
    after = conv.materialize()
    assert not np.allclose(before, after)  # it learned something
    assert is_symmetric(after, symmetry)  # and is still symmetric, to the last bit
    assert conv.weight_free.shape == (3, 2, constraints.num_free(symmetry, size))


@pytest.mark.parametrize("symmetry, size", ALL_CASES)
def test_initial_kernel_is_the_symmetric_part_of_the_default_draw(symmetry, size):
    plain = nn.Conv2d(4, 6, size, groups=2, generator=11)
    symmetric = nn.Conv2d(4, 6, size, groups=2, symmetry=symmetry, generator=11)
    kernel = symmetric.materialize()
    assert is_symmetric(kernel, symmetry)
    np.testing.assert_allclose(
        kernel, group_average(plain.weight.array, symmetry), rtol=1e-6, atol=1e-7
    )
    assert np.array_equal(symmetric.bias.array, plain.bias.array)  # same draws, same order


@pytest.mark.parametrize("symmetry", ["xy", "antipoint", "rot90"])
def test_any_initialiser_through_assignment(symmetry):
    conv = nn.Conv2d(3, 8, 5, symmetry=symmetry)
    theta = conv.weight_free
    drawn = kl.tensor(np.zeros(conv.weight.shape, np.float32))
    init.kaiming_normal_(drawn, nonlinearity="relu", generator=4)
    conv.weight = drawn  # stores the symmetric part, as torch's parametrisations do
    assert conv.weight_free is theta  # in place: an optimiser holding θ keeps working
    kernel = conv.materialize()
    assert is_symmetric(kernel, symmetry)
    np.testing.assert_allclose(kernel, group_average(drawn.array, symmetry), rtol=1e-6, atol=1e-7)


def test_weight_is_built_read_only_and_differentiable():
    conv = nn.Conv2d(1, 2, 3, symmetry="point")
    assert conv.weight.grad_fn.name() == "SymmetrizeBackward0"
    with pytest.raises(ValueError, match="read-only"):
        conv.weight.array[...] = 0  # would be lost: the kernel is rebuilt from θ every time
    conv.weight_free.requires_grad = False
    assert not conv.weight.requires_grad  # frozen θ, frozen kernel
    conv.double()
    assert conv.weight.dtype == np.float64 and conv.weight_free.dtype == np.float64


def test_plain_conv_is_unchanged():
    conv = nn.Conv2d(2, 4, 3)
    assert conv.symmetry is None
    assert isinstance(conv.weight, nn.Parameter) and conv.weight is conv._parameters["weight"]
    assert list(conv.state_dict()) == ["weight", "bias"]
    with pytest.raises(TypeError, match="Parameter or None expected"):
        conv.weight = kl.tensor(np.zeros((4, 2, 3, 3)))
    new = nn.Parameter(np.ones((4, 2, 3, 3), np.float32))
    conv.weight = new
    assert conv.weight is new


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Conv2d\(1, 4, kernel_size=\(5, 3\)\).*square"):
        nn.Conv2d(1, 4, (5, 3), symmetry="rot90")
    with pytest.raises(ValueError, match="valid: 'x', 'y', 'xy', 'point', 'antipoint', 'rot90'"):
        nn.Conv2d(1, 4, 3, symmetry="diagonal")
    with pytest.raises(ValueError, match="1x1"):
        nn.Conv2d(1, 4, 1, symmetry="antipoint")
    conv = nn.Conv2d(1, 4, 3, symmetry="x")
    with pytest.raises(ValueError, match=r"expected a kernel of shape \(4, 1, 3, 3\)"):
        conv.weight = np.zeros((4, 1, 5, 5))


SPEC = "conv5x5x6-same-sympoint,relu,maxpool2,conv3x2x4-symantipoint-s2,flatten,linear3"


def test_spec_builds_symmetric_layers_and_checkpoints_round_trip(tmp_path):
    model = arch.build(SPEC, (2, 12, 12), generator=1)
    assert [model[0].symmetry, model[3].symmetry] == ["point", "antipoint"]
    state = model.state_dict()
    assert list(state) == [
        "0.weight_free",
        "0.bias",
        "3.weight_free",
        "3.bias",
        "5.weight",
        "5.bias",
    ]
    assert state["0.weight_free"].shape == (6, 2, 13)
    assert state["3.weight_free"].shape == (4, 6, 3)
    serialization.save({"arch": SPEC, "model": state}, tmp_path / "run.ckpt")

    loaded = serialization.load(tmp_path / "run.ckpt")
    again = arch.build(loaded["arch"], (2, 12, 12), generator=2)  # the type comes from the spec
    again.load_state_dict(loaded["model"])
    x = kl.tensor(np.random.default_rng(0).standard_normal((2, 2, 12, 12)).astype(np.float32))
    with kl.no_grad():
        assert np.array_equal(again(x).array, model(x).array)
    assert np.array_equal(again[0].materialize(), model[0].materialize())

    fresh = arch.build(SPEC, (2, 12, 12), generator=3)
    copied = transfer(fresh, read_weights(tmp_path / "run.ckpt"), layers=["0"], freeze=True)
    assert copied == ["0.weight_free", "0.bias"]
    assert np.array_equal(fresh[0].materialize(), model[0].materialize())
    assert not fresh[0].weight.requires_grad


@pytest.mark.parametrize(
    "option, symmetry",
    [
        ("-symx", "x"),
        ("-symy", "y"),
        ("-symxy", "xy"),
        ("-sympoint", "point"),
        ("-symantipoint", "antipoint"),
        ("-symrot90", "rot90"),
    ],
)
def test_spec_options(option, symmetry):
    model = arch.build(f"conv3x4-s2{option}-p1-nobias", (1, 8, 8))
    assert model[0].symmetry == symmetry and model[0].bias is None and model[0].stride == (2, 2)
    assert f"symmetry='{symmetry}'" in repr(model)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("conv3x4-symrot45", "unknown symmetry -symrot45"),
        ("conv3x4-symx-symy", "more than one -sym"),
        ("conv3x5x4-symrot90", "square"),
    ],
)
def test_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        arch.build(spec, (1, 8, 8))
