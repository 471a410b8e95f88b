"""Module: state_dict compatible with PyTorch both ways, parameters, modes, gradients,
load_state_dict errors, repr."""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close

import kernelab as kl
from kernelab import nn
from kernelab.core.errors import ShapeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mnist_net(lib):
    """The classic MNIST CNN, written the same way for kernelab and PyTorch."""
    return lib.Sequential(
        lib.Conv2d(1, 32, 5, padding="same"),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(32, 64, 5, padding="same"),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Flatten(),
        lib.Linear(3136, 10),
    )


def batchnorm_net(lib):
    return lib.Sequential(
        lib.Conv2d(3, 8, 3, padding=1, bias=False),
        lib.BatchNorm2d(8),
        lib.ReLU(),
        lib.Conv2d(8, 8, 3, stride=2, groups=4),
        lib.BatchNorm2d(8, momentum=None),
        lib.ReLU(),
        lib.AdaptiveAvgPool2d(1),
        lib.Flatten(),
        lib.Dropout(0.5),
        lib.Linear(8, 4),
        lib.BatchNorm1d(4),
    )


def shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("make", [mnist_net, batchnorm_net])
def test_state_dict_keys_and_shapes_equal_pytorch(make):
    ours, theirs = make(nn).state_dict(), make(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    assert shapes(ours) == shapes(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == value.numpy().dtype, key


def test_batchnorm_state_includes_running_statistics():
    keys = list(batchnorm_net(nn).state_dict())
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert f"1.{name}" in keys
    assert batchnorm_net(nn).state_dict()["1.num_batches_tracked"].dtype == kl.int64


def torch_to_kernelab(theirs, ours):
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


def kernelab_to_torch(ours, theirs):
    theirs.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("direction", ["torch_to_kernelab", "kernelab_to_torch"])
def test_copied_weights_give_the_same_outputs(direction, dtype):
    torch.manual_seed(0)
    ours, theirs = mnist_net(nn), mnist_net(torch.nn)
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    if direction == "torch_to_kernelab":
        torch_to_kernelab(theirs, ours)
    else:
        kernelab_to_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(dtype)
    y = ours(kl.Tensor(x))
    with torch.no_grad():
        ty = theirs(torch.from_numpy(x))
    assert y.dtype == dtype
    assert_rel_close(y.array, ty.numpy(), 1e-4 if dtype == np.float32 else 1e-10, "logits")


def test_batchnorm_net_trains_and_evaluates_like_pytorch():
    torch.manual_seed(1)
    ours, theirs = batchnorm_net(nn).double(), batchnorm_net(torch.nn).double()
    torch_to_kernelab(theirs, ours)
    ours[8].p = theirs[8].p = 0.0  # dropout's masks cannot agree; its modes are tested apart
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 7, 7))
        y, ty = ours(kl.Tensor(x)), theirs(torch.from_numpy(x))
        assert_rel_close(y.array, ty.detach().numpy(), 1e-10, "training output")
    for key, value in theirs.state_dict().items():
        assert_rel_close(ours.state_dict()[key].numpy(), value.numpy(), 1e-10, key)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 7, 7))
    with torch.no_grad():
        ty = theirs(torch.from_numpy(x))
    assert_rel_close(ours(kl.Tensor(x)).array, ty.numpy(), 1e-10, "evaluation output")


def test_state_dict_values_share_memory():
    model = mnist_net(nn)
    state = model.state_dict()
    state["7.bias"].array[:] = 3.0
    np.testing.assert_array_equal(model[7].bias.array, 3.0)


def test_parameters_in_pytorch_order():
    ours, theirs = batchnorm_net(nn), batchnorm_net(torch.nn)
    names = [name for name, _ in ours.named_parameters()]
    assert names == [name for name, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_a_shared_layer_is_listed_once():
    conv = nn.Conv2d(2, 2, 3)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    assert len(list(model.parameters())) == 2


def test_custom_module_registration():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.scale = nn.Parameter(np.ones(3, np.float32))
            self.layers = nn.ModuleList([nn.ReLU(), nn.Linear(3, 2)])
            self.register_buffer("steps", np.zeros(()))
            self.register_buffer("cache", np.zeros(2), persistent=False)
            self.note = "not registered"

        def forward(self, x):
            return self.conv(x) * self.scale.reshape(1, 3, 1, 1)

    block = Block()
    assert [n for n, _ in block.named_parameters()] == [
        "scale",
        "conv.weight",
        "conv.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    assert "steps" in block.state_dict() and "cache" not in block.state_dict()
    assert [n for n, _ in block.named_children()] == ["conv", "layers"]
    assert [type(m).__name__ for m in block.modules()] == [
        "Block",
        "Conv2d",
        "ModuleList",
        "ReLU",
        "Linear",
    ]
    del block.scale
    assert "scale" not in dict(block.named_parameters())


def test_train_and_eval_reach_every_layer():
    model = batchnorm_net(nn)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad():
    model = nn.Linear(3, 2)
    model(kl.tensor(np.ones((4, 3), np.float32))).sum().backward()
    assert model.weight.grad is not None
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(model.weight.grad, 0)
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_frozen_parameters_get_no_gradient():
    model = mnist_net(nn)
    model[0].requires_grad_(False)
    x = kl.Tensor(np.random.default_rng(2).standard_normal((1, 1, 28, 28)).astype(np.float32))
    model(x).sum().backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    assert model[3].weight.grad is not None and model[7].bias.grad is not None
    model.requires_grad_(False)
    assert not model(x).requires_grad


def test_load_state_dict_errors_name_the_keys():
    model = mnist_net(nn)
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    missing = dict(state)
    del missing["3.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['3.bias'\], unexpected keys \[\]"):
        model.load_state_dict(missing)
    extra = dict(state, **{"8.weight": np.zeros(1)})
    with pytest.raises(KeyError, match=r"missing keys \[\], unexpected keys \['8.weight'\]"):
        model.load_state_dict(extra)
    result = model.load_state_dict(extra, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == ["8.weight"]
    wrong = dict(state, **{"7.weight": np.zeros((10, 3200), np.float32)})
    with pytest.raises(
        ShapeError, match=r"'7.weight' expected shape \(10, 3136\), got \(10, 3200\)"
    ):
        model.load_state_dict(wrong)


def test_load_state_dict_copies_in_place():
    model = nn.Linear(2, 2)
    weight = model.weight
    model.load_state_dict({"weight": np.eye(2), "bias": np.ones(2)})
    assert model.weight is weight and weight.dtype == kl.float32
    np.testing.assert_array_equal(weight.array, np.eye(2))


def test_repr_equals_pytorch_for_the_mnist_net():
    assert repr(mnist_net(nn)) == repr(mnist_net(torch.nn))


def test_to_casts_and_checks_the_device():
    model = batchnorm_net(nn).to(kl.float64)
    assert all(p.dtype == kl.float64 for p in model.parameters())
    assert model.state_dict()["1.running_var"].dtype == kl.float64
    assert model.state_dict()["1.num_batches_tracked"].dtype == kl.int64
    assert model.to("cpu") is model and model.float()[0].weight.dtype == kl.float32
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        model.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.Linear(2, 2, device="cuda:0")
