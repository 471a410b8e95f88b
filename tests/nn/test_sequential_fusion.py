"""Sequential's fused activations: the same outputs, gradients and running statistics as its
layers run one by one and as PyTorch's, and the fusion rule's limits (exact classes, replaced
forwards, changed layers, the switch). Every test runs on both kernel paths (conftest)."""

import copy

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close

import kernelab as kl
from kernelab import nn
from kernelab.apps import inspection

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


def tutorial_like(engine, momentum=0.1, affine=True, track=True):
    """Conv → BN → ReLU → MaxPool, Conv → ReLU → MaxPool(3, 2, padding 1, ceil), Conv → BN →
    ReLU → Conv: every pattern Sequential fuses, odd sizes after the first pooling. (A bias before
    batch norm would get a gradient of rounding errors only.)"""
    bn = {"momentum": momentum, "affine": affine, "track_running_stats": track}
    return engine.Sequential(
        engine.Conv2d(2, 4, 3, padding=1, bias=False),
        engine.BatchNorm2d(4, **bn),
        engine.ReLU(),
        engine.MaxPool2d(2),
        engine.Conv2d(4, 5, 3, padding=1),
        engine.ReLU(),
        engine.MaxPool2d(3, 2, padding=1, ceil_mode=True),
        engine.Conv2d(5, 3, 1, bias=False),
        engine.BatchNorm2d(3, **bn),
        engine.ReLU(),
        engine.Conv2d(3, 2, 3, padding=1),
    )


def copy_into_torch(model: nn.Module, reference: torch.nn.Module) -> None:
    state = {k: torch.from_numpy(np.array(v.array)) for k, v in model.state_dict().items()}
    reference.load_state_dict(state)


def run(model, x: np.ndarray, gy: np.ndarray):
    """Output, input gradient and every parameter's gradient of one forward and backward."""
    t = kl.Tensor(x, requires_grad=True)
    y = model(t)
    y.backward(kl.Tensor(gy))
    return [y.array, t.grad.array] + [p.grad.array for p in model.parameters()]


def torch_run(model, x: np.ndarray, gy: np.ndarray):
    t = torch.tensor(x, requires_grad=True)
    y = model(t)
    y.backward(torch.from_numpy(gy))
    return [y.detach().numpy(), t.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]


def buffers(model) -> list[np.ndarray]:
    return [np.asarray(b.array if hasattr(b, "array") else b.numpy()) for b in model.buffers()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bn", [{}, {"momentum": None}, {"affine": False, "track": False}])
def test_fused_equals_layers_one_by_one_and_pytorch(dtype, batch, bn):
    kl.manual_seed(0)
    fused = tutorial_like(nn, **bn)
    if dtype == np.float64:
        fused = fused.double()
    plain = copy.deepcopy(fused)
    plain.fuse_activations = False
    reference = tutorial_like(torch.nn, **bn).to(torch.float64 if dtype == np.float64 else None)
    copy_into_torch(fused, reference)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 2, 9, 11)).astype(dtype)
    y_shape = reference.eval()(torch.from_numpy(x)).shape
    for mode in ("train", "eval", "train"):  # running statistics moved, then used
        for model in (fused, plain, reference):
            getattr(model, mode)()
        gy = rng.standard_normal(tuple(y_shape)).astype(dtype)
        if mode == "train" and batch == 1 and not bn.get("track", True):
            continue  # 1x1 maps after the last pooling: one value per channel
        ours, theirs = run(fused, x, gy), run(plain, x, gy)
        expected = torch_run(reference, x, gy)
        for a, b, c in zip(ours, theirs, expected, strict=True):
            assert a.dtype == dtype
            assert_rel_close(a, b, TOL[dtype], f"{mode}: fused against one by one")
            assert_rel_close(a, c, TOL[dtype], f"{mode}: fused against PyTorch")
        for a, b, c in zip(buffers(fused), buffers(plain), buffers(reference), strict=True):
            # not bit for bit: a convolution may change algorithm between the two runs once
            # its kernels, compiled in the background on a cold cache, are ready
            assert_rel_close(a, b, TOL[dtype], "running statistics against one by one")
            assert_rel_close(a, c, TOL[dtype], "running statistics against PyTorch")


def count_calls(monkeypatch, cls) -> list:
    """Count calls of ``cls.forward`` (patched on the class, as the instances' stay theirs)."""
    calls = []
    forward = cls.forward

    def counted(self, *args):
        calls.append(self)
        return forward(self, *args)

    monkeypatch.setattr(cls, "forward", counted)
    return calls


def test_relu_is_not_called_when_fused_and_is_when_switched_off(monkeypatch):
    relu_calls = count_calls(monkeypatch, nn.ReLU)
    model = tutorial_like(nn)
    x = kl.Tensor(np.random.default_rng(0).standard_normal((2, 2, 8, 8)).astype(np.float32))
    model(x)
    assert relu_calls == []
    model.fuse_activations = False
    model(x)
    assert len(relu_calls) == 3


def test_the_plan_follows_changes_to_the_layers(monkeypatch):
    relu_calls = count_calls(monkeypatch, nn.ReLU)
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    x = kl.Tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32))
    model(x)
    assert relu_calls == []
    model[1] = nn.Identity()
    model(x)
    assert len(relu_calls) == 1
    model[1] = nn.MaxPool2d(2)
    model(x)
    assert len(relu_calls) == 1
    del model[1]
    model.append(nn.Tanh())
    model(x)
    assert len(relu_calls) == 2
    model.add_module("tail", nn.ReLU())
    model.tail = nn.MaxPool2d(2)
    model(x)
    assert len(relu_calls) == 3


def test_only_the_exact_classes_and_their_own_forward_fuse(monkeypatch):
    class MyReLU(nn.ReLU):
        pass

    relu_calls = count_calls(monkeypatch, nn.ReLU)
    x = kl.Tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32))
    nn.Sequential(MyReLU(), nn.MaxPool2d(2))(x)
    assert len(relu_calls) == 1
    nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, dilation=2))(x)  # not fused: dilated
    assert len(relu_calls) == 2
    nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))(kl.Tensor(np.ones((1, 2, 4, 4), np.int64)))
    assert len(relu_calls) == 3


def test_feature_maps_see_every_layer():
    """Tools that record each layer's output replace its forward: those layers run unfused."""
    kl.manual_seed(0)
    model = tutorial_like(nn)
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    recorded, out = inspection.feature_maps(model, x)
    assert [name for name, _, _ in recorded] == [str(i) for i in range(11)]
    model.eval()
    with kl.no_grad():
        expected = model(kl.Tensor(x)).array[0]
    np.testing.assert_array_equal(out, expected)
    relu_out, pooled = recorded[2][2], recorded[3][2]
    assert (relu_out >= 0).all() and pooled.shape == (4, 4, 4)


@pytest.mark.parametrize(
    "layers, shape, layer",
    [
        ((nn.BatchNorm2d(3), nn.ReLU()), (2, 4, 3, 3), r"BatchNorm2d\(3"),
        ((nn.BatchNorm2d(3), nn.ReLU()), (1, 3, 1, 1), r"BatchNorm2d\(3"),
        ((nn.BatchNorm2d(3, track_running_stats=False).eval(), nn.ReLU()), (1, 3, 1, 1), "Ba"),
        ((nn.ReLU(), nn.MaxPool2d(5)), (1, 3, 4, 4), r"MaxPool2d\(kernel_size=5"),
    ],
)
def test_errors_name_the_layer_as_unfused(layers, shape, layer):
    model = nn.Sequential(*layers)
    with pytest.raises(Exception, match=layer) as fused_error:
        model(kl.Tensor(np.ones(shape, np.float32)))
    model.fuse_activations = False
    with pytest.raises(Exception) as plain_error:
        model(kl.Tensor(np.ones(shape, np.float32)))
    assert str(fused_error.value) == str(plain_error.value)


@pytest.mark.parametrize("pattern", ["relu-pool", "bn-relu"])
def test_a_fused_node_has_pytorchs_name_for_the_last_layer(pattern):
    """A printed graph reads as PyTorch's: the fused node is named by its last operation."""

    def tail(engine):
        if pattern == "relu-pool":
            return engine.ReLU(), engine.MaxPool2d(2)
        return engine.BatchNorm2d(2), engine.ReLU()

    model = nn.Sequential(nn.Conv2d(1, 2, 3), *tail(nn))
    reference = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), *tail(torch.nn))
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    assert model(kl.Tensor(x)).grad_fn.name() == reference(torch.from_numpy(x)).grad_fn.name()
