"""ONNX import of models written by torch.onnx.export: the loaded model gives PyTorch's outputs.

The legacy TorchScript exporter (``dynamo=False``) is used: the default one needs onnxscript.
"""

import warnings

import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from comparisons import data, rel_err  # noqa: E402

import kernelab as kl  # noqa: E402
import kernelab.onnx as konnx  # noqa: E402
from kernelab import nn  # noqa: E402

RTOL = 1e-5


class TorchNet(torch.nn.Module):
    def __init__(self, view: bool):
        super().__init__()
        t = torch.nn
        self.view = view
        self.features = t.Sequential(
            t.Conv2d(2, 6, 3, padding=1),
            t.BatchNorm2d(6),
            t.LeakyReLU(0.1),
            t.MaxPool2d(3, 2, 1, ceil_mode=True),
            t.Conv2d(6, 6, 3, groups=3, stride=2, dilation=1, padding=(1, 0)),
            t.Sigmoid(),
            t.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
            t.Conv2d(6, 4, 1, bias=False),
            t.Tanh(),
            t.AdaptiveAvgPool2d(1),
        )
        self.head = t.Sequential(t.Dropout(0.3), t.Linear(4, 5), t.BatchNorm1d(5), t.ReLU())
        self.out = t.Linear(5, 3)

    def forward(self, x):
        y = self.features(x)
        y = y.view(y.size(0), -1) if self.view else torch.flatten(y, 1)
        return torch.log_softmax(self.out(self.head(y)), dim=1)


def torch_export(module, x, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **kwargs,
        )  # fmt: skip


def randomise_batch_norm(module):
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module


@pytest.mark.parametrize("view", [True, False])
@pytest.mark.parametrize("folding", [True, False])
def test_pytorch_exported_network_gives_pytorch_outputs(view, folding, tmp_path):
    torch.manual_seed(0)
    net = randomise_batch_norm(TorchNet(view)).eval()
    torch_export(net, torch.randn(2, 2, 11, 11), tmp_path / "t.onnx", do_constant_folding=folding)
    loaded = konnx.load(tmp_path / "t.onnx")
    x = data((3, 2, 11, 11), 1)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    with kl.no_grad():
        assert rel_err(loaded(x).data, expected) <= RTOL
    assert sum(isinstance(m, nn.Conv2d) for m in loaded.modules()) == 3
    if not folding:  # layers named as in PyTorch: its weights load with no renaming
        assert list(loaded.state_dict()) == list(net.state_dict())
        loaded.load_state_dict({k: v.numpy() for k, v in net.state_dict().items()})


def test_pytorch_same_padding_and_linear_on_3d_input(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, (2, 4), padding="same")
            self.fc = torch.nn.Linear(7, 2)

        def forward(self, x):
            return torch.softmax(self.fc(self.conv(x)), dim=-1)

    torch.manual_seed(0)
    net = Net().eval()
    torch_export(net, torch.randn(2, 2, 6, 7), tmp_path / "s.onnx")
    loaded = konnx.load(tmp_path / "s.onnx")
    assert "MatMul" in {s.op for s in loaded.onnx_steps}
    x = data((3, 2, 6, 7), 1)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    with kl.no_grad():
        assert rel_err(loaded(x).data, expected) <= RTOL
