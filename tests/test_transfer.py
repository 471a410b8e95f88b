"""Weights from other networks: PyTorch files, safetensors, kernelab checkpoints; layer
selection, shape checks and freezing."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import kernelab as kl
from kernelab import functional as F
from kernelab import optim
from kernelab.apps import arch
from kernelab.apps.train import Trainer
from kernelab.apps.transfer import read_weights, transfer
from kernelab.core import serialization as io
from kernelab.core.errors import ShapeError

SPEC = "conv3x4-same,relu,maxpool2,conv3x8-same,relu,flatten,linear10"


def kernelab_model(seed: int = 0):
    return arch.build(SPEC, (1, 8, 8), generator=seed)


def torch_model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 10),
    )


def own(model) -> dict[str, np.ndarray]:
    return {k: np.array(v.array) for k, v in model.state_dict().items()}


def test_pytorch_state_dict_gives_the_same_network(tmp_path):
    reference = torch_model()
    path = tmp_path / "weights.pt"
    torch.save(reference.state_dict(), path)
    model = kernelab_model()
    copied = transfer(model, read_weights(path))
    assert copied == list(reference.state_dict())
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(kl.Tensor(x)).array, expected, rtol=1e-4, atol=1e-5)


def test_pytorch_checkpoint_with_a_state_dict_entry(tmp_path):
    reference = torch_model()
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": reference.state_dict(), "epoch": 3}, path)
    weights = read_weights(path)
    assert set(weights) == set(reference.state_dict())
    assert np.array_equal(weights["6.bias"], reference[6].bias.detach().numpy())


class _Trap:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pytorch_files_are_read_without_running_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        pickle.dump({"0.weight": _Trap(marker)}, file)
    with pytest.raises(ValueError, match=r"evil\.pt: not a PyTorch file of tensors") as caught:
        read_weights(path)
    assert "\n" not in str(caught.value) and "weights_only=False" not in str(caught.value)
    torch.save({"0.weight": _Trap(marker)}, tmp_path / "evil2.pt")
    with pytest.raises(ValueError, match="not a PyTorch file of tensors"):
        read_weights(tmp_path / "evil2.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: torch_model(), "save model.state_dict"),  # a whole module: refused unread
        (lambda: [torch.ones(2)], "expected a state_dict"),
        (lambda: b"garbage", "not a PyTorch file"),
    ],
    ids=["module", "list", "garbage"],
)
def test_other_pytorch_files_are_refused_with_one_line(tmp_path, content, message):
    path = tmp_path / "w.pt"
    value = content()
    if isinstance(value, bytes):
        path.write_bytes(value)
    else:
        torch.save(value, path)
    with pytest.raises(ValueError, match=message) as caught:
        read_weights(path)
    assert "\n" not in str(caught.value)


def test_safetensors_file(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    source = own(kernelab_model(seed=5))
    path = tmp_path / "weights.safetensors"
    safetensors_numpy.save_file(source, str(path))
    model = kernelab_model(seed=0)
    transfer(model, read_weights(path))
    for key, value in own(model).items():
        assert np.array_equal(value, source[key]), key


@pytest.mark.parametrize("wrapped", [True, False], ids=["training-checkpoint", "state-dict"])
def test_kernelab_checkpoint(tmp_path, wrapped):
    source = kernelab_model(seed=5)
    path = tmp_path / "checkpoint.kl"
    state = source.state_dict()
    io.save({"model": state, "epoch": 1} if wrapped else state, path)
    model = kernelab_model(seed=0)
    transfer(model, read_weights(path))
    for key, value in own(model).items():
        assert np.array_equal(value, own(source)[key]), key


def test_selected_layers_only(tmp_path):
    source, model = own(kernelab_model(seed=5)), kernelab_model(seed=0)
    before = own(model)
    copied = transfer(model, source, layers=["0", "3.weight"])
    assert copied == ["0.weight", "0.bias", "3.weight"]
    after = own(model)
    for key in after:
        expected = source[key] if key in copied else before[key]
        assert np.array_equal(after[key], expected), key


def test_layer_prefixes_match_whole_names():
    """'0' selects layer 0, not layer 10 or a key that merely starts with the digit."""
    model = arch.build(
        ",".join(["linear2"] * 11).replace("linear2", "flatten,linear2", 1), (1, 1, 2)
    )
    source = {k: np.full(v.shape, 7.0, np.float32) for k, v in own(model).items()}
    copied = transfer(model, source, layers=["1"])
    assert copied == ["1.weight", "1.bias"]


def test_shape_mismatch_names_key_expected_and_got():
    model = kernelab_model()
    source = own(kernelab_model())
    source["3.weight"] = np.zeros((16, 4, 3, 3), np.float32)
    before = own(model)
    with pytest.raises(ShapeError) as caught:
        transfer(model, source)
    message = str(caught.value)
    assert "'3.weight'" in message and "(8, 4, 3, 3)" in message and "(16, 4, 3, 3)" in message
    for key, value in own(model).items():  # nothing was copied
        assert np.array_equal(value, before[key]), key


def test_unknown_layer_and_no_matching_weights():
    model = kernelab_model()
    with pytest.raises(KeyError, match=r"no layer named \['9'\]"):
        transfer(model, own(kernelab_model()), layers=["9"])
    with pytest.raises(KeyError, match="no matching weights"):
        transfer(model, {"features.0.weight": np.zeros((4, 1, 3, 3))})


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no weights file"):
        read_weights("/nonexistent/weights.pt")


def test_frozen_layers_stay_bit_identical_while_the_rest_trains():
    source = own(kernelab_model(seed=5))
    model = kernelab_model(seed=0)
    copied = transfer(model, source, layers=["0"], freeze=True)
    params = dict(model.named_parameters())
    assert [k for k, p in params.items() if not p.requires_grad] == copied
    before = own(model)
    # every parameter goes to the optimiser, frozen ones included: they must still not move
    opt = optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    batches = [(kl.Tensor(x[i : i + 8]), kl.Tensor(y[i : i + 8])) for i in range(0, 32, 8)]
    Trainer(model, batches, opt, loss_fn=F.cross_entropy, progress=False).fit(2)
    after = own(model)
    for key in after:
        if key in copied:
            assert np.array_equal(after[key], before[key]), key
        else:
            assert not np.array_equal(after[key], before[key]), key
