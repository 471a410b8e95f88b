"""PyTorch models in (from_torch) and weights both ways (safetensors), against PyTorch."""

import builtins
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from comparisons import data  # noqa: E402

import kernelab as kl  # noqa: E402
from kernelab import nn  # noqa: E402
from kernelab.interop import from_torch, load_safetensors, save_safetensors  # noqa: E402
from kernelab.nn.layers import LAYERS  # noqa: E402

T = torch.nn


def every_layer():
    """A PyTorch network with every layer from_torch supports, most options set."""
    torch.manual_seed(0)
    features = T.Sequential(
        OrderedDict(
            conv=T.Conv2d(3, 8, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
            bn=T.BatchNorm2d(8),
            act=T.LeakyReLU(0.2),
            pool=T.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True),
            same=T.Conv2d(8, 8, 4, padding="same", groups=4, bias=False),
            sig=T.Sigmoid(),
            avg=T.AvgPool2d(2, 1, 1, ceil_mode=True, count_include_pad=False),
            depthwise=T.Conv2d(8, 16, 3, padding="valid", groups=8),
            tanh=T.Tanh(),
            drop=T.Dropout2d(0.2),
            avg2=T.AvgPool2d(2, divisor_override=3),
            gap=T.AdaptiveAvgPool2d((1, 1)),
        )
    )
    head = T.ModuleList(
        [T.Flatten(), T.Linear(16, 6), T.BatchNorm1d(6, momentum=None), T.ReLU(), T.Identity()]
    )
    return T.Sequential(
        features, T.Sequential(*head), T.Dropout(0.1), T.Linear(6, 4), T.Softmax(dim=1),
        T.LogSoftmax(dim=-1),
    )  # fmt: skip


def test_every_layer_has_every_layer_with_a_pytorch_twin():
    tried = {type(m).__name__ for m in every_layer().modules()}
    twins = [kind.__name__ for kind, layer in LAYERS.items() if layer.from_torch is not None]
    untried = [name for name in twins if name not in tried]
    assert not untried, f"add {untried} to every_layer() in {__file__}"


def trained(module, shape):
    module.train()
    with torch.no_grad():
        for seed in range(2):
            module(torch.from_numpy(data(shape, seed) + 0.5))
    return module


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_from_torch_matches_pytorch_layer_for_layer():
    net = trained(every_layer(), (4, 3, 12, 11)).eval()
    model = from_torch(net)
    assert list(model.state_dict()) == list(net.state_dict())
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key].array, value.numpy())
    assert not model.training
    x = data((3, 3, 12, 11), 5)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    with kl.no_grad():
        actual = model(kl.tensor(x)).array
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert isinstance(model[0].conv, nn.Conv2d) and model[0].same.padding == "same"


def test_from_torch_keeps_the_training_mode_and_float64():
    net = T.Sequential(T.Conv2d(1, 2, 3), T.BatchNorm2d(2)).double().train()
    model = from_torch(net)
    assert model.training and model[1].training
    assert model[0].weight.dtype == np.float64
    x = data((2, 1, 5, 5)).astype(np.float64)
    np.testing.assert_allclose(
        model(kl.tensor(x)).array, net(torch.from_numpy(x)).detach().numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(model[1].running_mean.array, net[1].running_mean.numpy())


@pytest.mark.parametrize(
    "layer, name",
    [
        (T.GELU(), "GELU"),
        (T.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
        (T.MaxPool2d(2, return_indices=True), "return_indices"),
        (T.Sequential(T.ReLU(), T.Sequential(T.Upsample(scale_factor=2))), "Upsample"),
    ],
)
def test_unsupported_layers_are_named(layer, name):
    with pytest.raises(NotImplementedError, match=name):
        from_torch(layer)


def test_custom_module_is_refused_with_a_hint():
    class Block(T.Module):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match=r"Block.*load_safetensors"):
        from_torch(Block())


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_kernelab_weights_load_into_pytorch_unchanged(tmp_path):
    net = every_layer()
    model = from_torch(net)
    trained_model = model.train()
    for seed in range(2):
        trained_model(kl.tensor(data((4, 3, 12, 11), seed)))
    path = tmp_path / "w.safetensors"
    save_safetensors(model, path)
    state = safetensors_torch.load_file(str(path))
    assert state["0.bn.num_batches_tracked"].dtype == torch.int64
    assert state["0.bn.num_batches_tracked"].shape == ()
    assert int(state["0.bn.num_batches_tracked"]) == 2
    fresh = every_layer()
    fresh.load_state_dict(state, strict=True)
    model.eval(), fresh.eval()
    x = data((2, 3, 12, 11), 7)
    with torch.no_grad():
        expected = fresh(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(kl.tensor(x)).array, expected, rtol=1e-5, atol=1e-6)


def test_pytorch_weights_load_into_kernelab_unchanged(tmp_path):
    net = trained(every_layer(), (4, 3, 12, 11))
    path = tmp_path / "t.safetensors"
    safetensors_torch.save_file(net.state_dict(), str(path))
    weights = load_safetensors(path)
    assert weights["0.bn.num_batches_tracked"].dtype == np.int64
    model = from_torch(every_layer())  # other weights: a fresh draw
    model.load_state_dict(weights)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key].array, value.numpy())


def test_save_accepts_state_dicts_of_tensors_and_arrays(tmp_path):
    state = {"a": kl.tensor([1.0, 2.0]), "b": np.arange(3, dtype=np.int64), "c": torch.ones(2)}
    save_safetensors(state, tmp_path / "s.safetensors", metadata={"by": "test"})
    loaded = load_safetensors(tmp_path / "s.safetensors")
    np.testing.assert_array_equal(loaded["a"], np.array([1, 2], np.float32))
    np.testing.assert_array_equal(loaded["b"], [0, 1, 2])
    np.testing.assert_array_equal(loaded["c"], [1, 1])
    with pytest.raises(FileNotFoundError):
        load_safetensors(tmp_path / "missing.safetensors")


def test_missing_torch_gives_an_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match="pip install torch"):
        from_torch(object())
