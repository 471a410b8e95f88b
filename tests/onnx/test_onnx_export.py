"""ONNX export: every layer and option, checked by onnx.checker and run by onnxruntime.

onnxruntime is the independent reference: its outputs must equal kernelab's within 1e-5
relative, for a batch size other than the example's (the batch axis is dynamic). Each
exported file is also loaded back and must give the original's outputs.
"""

import inspect

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from comparisons import data, rel_err  # noqa: E402

import kernelab as kl  # noqa: E402
import kernelab.functional as F  # noqa: E402
import kernelab.onnx as konnx  # noqa: E402
from kernelab import nn  # noqa: E402
from kernelab.apps import arch  # noqa: E402

RTOL = 1e-5


def run_onnxruntime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def roundtrip(model, shape, tmp_path, batch=3):
    """Export on a batch of 2, run batch ``batch`` in onnxruntime and reloaded; compare."""
    path = tmp_path / "model.onnx"
    proto = konnx.export(model, data((2,) + shape), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = data((batch,) + shape, seed=1)
    model.eval()
    with kl.no_grad():
        expected = model(kl.tensor(x)).array
    actual = run_onnxruntime(path, x)[0]
    assert actual.shape == expected.shape
    assert rel_err(actual, expected) <= RTOL
    loaded = konnx.load(path)
    with kl.no_grad():
        assert rel_err(loaded(x).array, expected) <= 1e-6
    return proto


def op_types(proto):
    return [n.op_type for n in proto.graph.node]


CONVS = {
    "int": dict(kernel_size=3, padding=1),
    "pair": dict(kernel_size=(3, 5), padding=(0, 2)),
    "same-odd": dict(kernel_size=3, padding="same"),
    "same-even": dict(kernel_size=(2, 4), padding="same", dilation=(1, 2)),
    "asymmetric": dict(kernel_size=3, padding=((1, 0), (2, 1))),
    "valid": dict(kernel_size=2, padding="valid"),
    "stride": dict(kernel_size=3, stride=2, padding=1),
    "stride-pair": dict(kernel_size=(3, 2), stride=(2, 1)),
    "dilation": dict(kernel_size=3, dilation=2, padding=2),
    "groups": dict(kernel_size=3, groups=2, out_channels=6),
    "depthwise": dict(kernel_size=3, groups=4, out_channels=8, padding=1),
    "no-bias": dict(kernel_size=1, bias=False),
}


@pytest.mark.parametrize("name", CONVS)
def test_conv_options(name, tmp_path):
    options = dict(CONVS[name])
    out = options.pop("out_channels", 3)
    model = nn.Sequential(nn.Conv2d(4, out, generator=0, **options))
    proto = roundtrip(model, (4, 7, 8), tmp_path)
    assert op_types(proto) == ["Conv"]
    assert {i.name for i in proto.graph.initializer} <= {"0.weight", "0.bias"}


def test_conv_pads_are_top_left_bottom_right(tmp_path):
    model = nn.Conv2d(1, 1, 3, padding=((1, 0), (2, 1)), generator=0)
    proto = konnx.export(model, data((1, 1, 5, 5)), None)
    pads = next(a for a in proto.graph.node[0].attribute if a.name == "pads")
    assert list(pads.ints) == [1, 2, 0, 1]


POOLS = {
    "max": nn.MaxPool2d(2),
    "max-pad-stride": nn.MaxPool2d(3, 2, 1),
    "max-ceil": nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    "max-dilation": nn.MaxPool2d(2, 1, 0, dilation=2),
    "max-dilation-ceil": nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
    "avg": nn.AvgPool2d(2),
    "avg-pad-include": nn.AvgPool2d(3, 2, 1, count_include_pad=True),
    "avg-pad-exclude": nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    "avg-ceil-include": nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True),
    "avg-ceil-exclude": nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg-ceil-nopad": nn.AvgPool2d(2, ceil_mode=True),
    "avg-divisor": nn.AvgPool2d(2, divisor_override=3),
    "global": nn.AdaptiveAvgPool2d(1),
    "adaptive-divisible": nn.AdaptiveAvgPool2d((2, 3)),
}


@pytest.mark.parametrize("name", POOLS)
def test_pool_options(name, tmp_path):
    roundtrip(nn.Sequential(POOLS[name]), (2, 6, 9), tmp_path)


def test_adaptive_pool_with_uneven_bins_is_refused():
    with pytest.raises(konnx.ONNXError, match=r"AdaptiveAvgPool2d.*'0'.*does not divide"):
        konnx.export(nn.Sequential(nn.AdaptiveAvgPool2d(4)), data((1, 2, 7, 7)), None)


ACTIVATIONS = {
    "relu": nn.ReLU(),
    "leaky": nn.LeakyReLU(0.2),
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "softmax-channels": nn.Softmax(dim=1),
    "softmax-last": nn.Softmax(dim=-1),
    "log-softmax": nn.LogSoftmax(dim=1),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations(name, tmp_path):
    roundtrip(nn.Sequential(ACTIVATIONS[name]), (3, 4, 5), tmp_path)


def trained_batch_norm(model, shape):
    """A few training steps so the running statistics are not the initial 0 and 1."""
    for seed in range(3):
        model(kl.tensor(data((4,) + shape, seed) * 2 + 1))
    for m in model.modules():
        if getattr(m, "weight", None) is not None and m.weight.ndim == 1:
            m.weight.array[:] = np.linspace(0.5, 1.5, m.weight.shape[0])
    return model


def test_batch_norm_exports_eval_statistics_and_restores_training_mode(tmp_path):
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, generator=0),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout2d(0.5),
        nn.Flatten(),
        nn.BatchNorm1d(36, affine=False),
        nn.Dropout(0.5),
        nn.Linear(36, 3, generator=1),
    )
    trained_batch_norm(model, (2, 5, 5)).train()
    proto = konnx.export(model, data((2, 2, 5, 5)), tmp_path / "bn.onnx")
    assert all(m.training for m in model.modules())
    assert "Dropout" not in op_types(proto)
    assert op_types(proto).count("BatchNormalization") == 2
    names = {i.name for i in proto.graph.initializer}
    assert {"1.running_mean", "1.running_var", "5.running_mean", "5.running_var"} <= names
    roundtrip(model, (2, 5, 5), tmp_path)


class Residual(nn.Module):
    """``relu(x + conv(bn(x)))`` then arithmetic with constants, reductions, a permute."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding="same", generator=0)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 2, generator=1)

    def forward(self, x):
        y = F.relu(x + self.conv(self.bn(x)))
        y = (y * 0.5 - 1.0) / 2.0 + (-y).abs().sqrt()
        z = y.mean((2, 3))  # (N, 3)
        w = y.permute(0, 2, 3, 1)  # (N, H, W, 3): Linear on a 4-D input → MatMul
        return self.head(z) + self.head(w).sum((1, 2)) * np.float32(0.1)


def test_residual_block_and_arithmetic(tmp_path):
    proto = roundtrip(Residual(), (3, 5, 6), tmp_path)
    ops = op_types(proto)
    assert {"Add", "Mul", "Sub", "Div", "Transpose", "MatMul", "ReduceMean", "ReduceSum"} <= set(
        ops
    )
    assert ops.count("Conv") == 1  # the residual branch reuses the graph input


def test_classic_network(tmp_path):
    model = arch.build(arch.CLASSIC, generator=0)
    proto = roundtrip(model, (1, 28, 28), tmp_path, batch=5)
    assert op_types(proto) == ["Conv", "Relu", "MaxPool"] * 2 + ["Flatten", "Gemm"]


def test_reshape_keeps_batch_dynamic(tmp_path):
    class Net(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], 2, -1).flatten(1).reshape(-1, 6)

    proto = roundtrip(Net(), (4, 3), tmp_path)
    assert "Reshape" in op_types(proto)


def test_numpy_input_multiple_outputs_and_identity(tmp_path):
    class Two(nn.Module):
        def forward(self, x):
            return x, F.sigmoid(x)

    path = tmp_path / "two.onnx"
    konnx.export(Two(), data((2, 3)), path)
    x = data((4, 3), 1)
    a, b = run_onnxruntime(path, x)
    np.testing.assert_array_equal(a, x)
    assert rel_err(b, 1 / (1 + np.exp(-x))) <= RTOL


@pytest.mark.skipif(
    "symmetry" not in inspect.signature(nn.Conv2d).parameters, reason="no symmetric kernels"
)
def test_symmetric_kernel_is_folded_into_a_constant(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, symmetry="xy", generator=0))
    proto = roundtrip(model, (2, 6, 6), tmp_path)
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert set(weights) == {"0.weight", "0.bias"}
    np.testing.assert_array_equal(weights["0.weight"], model[0].weight.array)
    np.testing.assert_array_equal(weights["0.weight"], weights["0.weight"][:, :, ::-1, ::-1])


def test_unsupported_operation_names_itself_and_the_supported_list():
    class Slicer(nn.Module):
        def forward(self, x):
            return x[:, :2]

    with pytest.raises(konnx.ONNXError, match=r"GetItem.*supported: .*Conv2d"):
        konnx.export(Slicer(), data((2, 3)), None)


def test_dropout_in_training_mode_is_refused_with_a_hint():
    class Always(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5, training=True)

    with pytest.raises(konnx.ONNXError, match="training=self.training"):
        konnx.export(Always(), data((2, 3)), None)


def test_old_opset_is_refused():
    with pytest.raises(konnx.ONNXError, match="opset_version must be at least 13"):
        konnx.export(nn.ReLU(), data((1, 2)), None, opset_version=11)


@pytest.mark.parametrize("opset", [13, 18])
def test_opsets(opset, tmp_path):
    class Means(nn.Module):
        def forward(self, x):
            return x.mean(1) + x.sum(1)

    path = tmp_path / "m.onnx"
    proto = konnx.export(Means(), data((2, 3, 4)), path, opset_version=opset)
    assert proto.opset_import[0].version == opset
    x = data((3, 3, 4), 1)
    assert rel_err(run_onnxruntime(path, x)[0], x.mean(1) + x.sum(1)) <= RTOL
