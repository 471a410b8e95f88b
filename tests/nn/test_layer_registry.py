"""The layer registry: every layer of kernelab.nn has an entry, and every entry works in the
architecture spec, the summary, the explain page's lookup and an ONNX round trip."""

import numpy as np
import pytest
import torch

import kernelab as kl
from kernelab import nn
from kernelab.apps import arch
from kernelab.kernels.summary import summary
from kernelab.nn.layers import LAYERS, OTHER, entry

HOW = "see 'Adding a layer' in CONTRIBUTING.md"

# One instance of each layer, the input shape (without batch axis) it takes, and its
# architecture-spec token (None: the layer has no token).
EXAMPLES = {
    nn.Conv2d: (lambda: nn.Conv2d(3, 4, 3, padding="same"), (3, 6, 6), "conv3x4-same"),
    nn.MaxPool2d: (lambda: nn.MaxPool2d(2), (3, 6, 6), "maxpool2"),
    nn.AvgPool2d: (lambda: nn.AvgPool2d(2), (3, 6, 6), "avgpool2"),
    nn.AdaptiveAvgPool2d: (lambda: nn.AdaptiveAvgPool2d(1), (3, 6, 6), "gap"),
    nn.Linear: (lambda: nn.Linear(5, 4), (5,), "linear4"),
    nn.ReLU: (nn.ReLU, (3, 6, 6), "relu"),
    nn.LeakyReLU: (lambda: nn.LeakyReLU(0.2), (3, 6, 6), "leakyrelu:0.2"),
    nn.Sigmoid: (nn.Sigmoid, (3, 6, 6), "sigmoid"),
    nn.Tanh: (nn.Tanh, (3, 6, 6), "tanh"),
    nn.Softmax: (lambda: nn.Softmax(dim=1), (5,), None),
    nn.LogSoftmax: (lambda: nn.LogSoftmax(dim=1), (5,), None),
    nn.Flatten: (nn.Flatten, (3, 6, 6), "flatten"),
    nn.BatchNorm2d: (lambda: nn.BatchNorm2d(3), (3, 6, 6), "bn"),
    nn.BatchNorm1d: (lambda: nn.BatchNorm1d(5), (5,), "bn"),
    nn.Dropout: (lambda: nn.Dropout(0.25), (5,), "dropout0.25"),
    nn.Dropout2d: (lambda: nn.Dropout2d(0.25), (3, 6, 6), None),
    nn.Identity: (nn.Identity, (5,), None),
}
NOT_LAYERS = {nn.Module, nn.Sequential, nn.ModuleList}  # and the losses, named *Loss


def exported_layers() -> list[type]:
    classes = [getattr(nn, name) for name in nn.__all__]
    classes = [c for c in classes if isinstance(c, type) and issubclass(c, nn.Module)]
    return [c for c in classes if c not in NOT_LAYERS and not c.__name__.endswith("Loss")]


def test_every_layer_of_kernelab_nn_has_an_entry():
    missing = [c.__name__ for c in exported_layers() if c not in LAYERS]
    names = ", ".join(f"nn.{name}" for name in missing)
    assert not missing, f"no entry in kernelab.nn.layers.LAYERS for {names}; {HOW}"


def test_every_entry_is_a_layer_of_kernelab_nn():
    strangers = [c.__name__ for c in LAYERS if c not in exported_layers()]
    assert not strangers, f"LAYERS has entries for {strangers}, not exported by kernelab.nn"


def test_every_entry_has_an_example_here():
    missing = [c.__name__ for c in LAYERS if c not in EXAMPLES]
    assert not missing, f"add {missing} to EXAMPLES in {__file__}"


def test_a_layer_has_a_pytorch_twin_exactly_when_torch_nn_has_its_name():
    for kind, layer in LAYERS.items():
        twin = hasattr(torch.nn, kind.__name__)
        assert twin == (layer.from_torch is not None), (
            f"{kind.__name__}: torch.nn {'has' if twin else 'has no'} a class of that name, "
            f"so its entry needs {'a' if twin else 'no'} from_torch; {HOW}"
        )


def test_a_module_without_an_entry_is_other():
    class Custom(nn.Module):
        pass

    class Wider(nn.Conv2d):
        pass

    assert entry(Custom()) is OTHER and OTHER.kind == "other"
    assert entry(Wider(1, 1, 3)) is LAYERS[nn.Conv2d]  # a subclass reads its base's entry


@pytest.mark.parametrize("kind", EXAMPLES, ids=lambda c: c.__name__)
def test_spec_token_builds_the_layer(kind):
    make, shape, token = EXAMPLES[kind]
    if token is None:
        assert LAYERS[kind].spec is None
        return
    assert LAYERS[kind].spec is not None, f"{kind.__name__}: its entry has no spec"
    model = arch.build(token, shape, generator=0)
    assert type(model[0]) is kind


@pytest.mark.parametrize("kind", EXAMPLES, ids=lambda c: c.__name__)
def test_summary_reports_the_layer(kind):
    make, shape, _ = EXAMPLES[kind]
    row = summary(nn.Sequential(make()), shape).rows[0]
    assert row.layer == kind.__name__
    spatial = len(shape) == 3 and kind is not nn.Flatten
    assert (row.receptive_field is not None) == spatial


@pytest.mark.parametrize("kind", EXAMPLES, ids=lambda c: c.__name__)
def test_onnx_round_trip_gives_registered_layers(kind, tmp_path):
    konnx = pytest.importorskip("kernelab.onnx")
    pytest.importorskip("onnx")
    make, shape, _ = EXAMPLES[kind]
    model = nn.Sequential(make()).eval()
    x = np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)
    ort = pytest.importorskip("onnxruntime")
    konnx.export(model, x, tmp_path / "layer.onnx")
    session = ort.InferenceSession(str(tmp_path / "layer.onnx"), providers=["CPUExecutionProvider"])
    (peer,) = session.run(None, {session.get_inputs()[0].name: x})
    loaded = konnx.load(tmp_path / "layer.onnx")
    with kl.no_grad():
        ours = model(kl.tensor(x)).array
        np.testing.assert_allclose(ours, peer, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loaded(x).array, ours, rtol=1e-6)
    children = dict(loaded.named_modules())
    built = [children[step.module] for step in loaded.onnx_steps if step.module is not None]
    strangers = [type(m).__name__ for m in built if entry(m) is OTHER]
    assert not strangers, f"ONNX load built {strangers}, which have no entry in LAYERS"
