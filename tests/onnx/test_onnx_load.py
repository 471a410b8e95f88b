"""ONNX import: graphs written by onnx.helper and by kernelab, against onnxruntime.

The loaded model must also train (gradients reach every weight) and refuse, by name, what it
cannot run. Models written by torch.onnx.export are in test_onnx_torch.py.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from comparisons import data, rel_err  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import kernelab as kl  # noqa: E402
import kernelab.onnx as konnx  # noqa: E402
from kernelab import nn, optim  # noqa: E402
from kernelab.apps import arch  # noqa: E402

RTOL = 1e-5


def graph_model(nodes, inputs, initializers=None, outputs=("y",), opset=17, rank=4):
    """A model from nodes; ``inputs`` maps names to shapes (None for a free size)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None] * rank) for n in outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def against_onnxruntime(model, *arrays):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    expected = session.run(None, dict(zip(names, arrays, strict=True)))[0]
    with kl.no_grad():
        actual = konnx.load(model)(*arrays).array
    assert actual.shape == expected.shape
    assert rel_err(actual, expected) <= RTOL


# ---- kernelab → ONNX → kernelab
def bn_network():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, generator=0),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(36, 3, generator=1),
    )
    model(kl.tensor(data((4, 1, 6, 6)) + 1))  # running statistics away from 0 and 1
    return model.eval()


def test_loaded_model_keeps_keys_layers_and_outputs(tmp_path):
    model = bn_network()
    konnx.export(model, data((2, 1, 6, 6)), tmp_path / "m.onnx")
    loaded = konnx.load(tmp_path / "m.onnx")
    assert not loaded.training
    assert set(loaded.state_dict()) == set(model.state_dict())
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(loaded.state_dict()[key].array, value.array)
    layers = loaded._modules
    assert [type(layers[k]) for k in ("0", "1", "6")] == [nn.Conv2d, nn.BatchNorm2d, nn.Linear]
    assert sum(isinstance(m, nn.Conv2d) for m in loaded.modules()) == 1
    x = data((5, 1, 6, 6), 2)
    with kl.no_grad():
        assert rel_err(loaded(x).array, model(kl.tensor(x)).array) <= 1e-6


def test_loaded_model_trains_one_sgd_step_and_freezes(tmp_path):
    model = arch.build(arch.CLASSIC, input_shape=(1, 12, 12), generator=0)
    konnx.export(model, data((2, 1, 12, 12)), tmp_path / "c.onnx")
    loaded = konnx.load(tmp_path / "c.onnx").train()
    params = dict(loaded.named_parameters())
    assert set(params) == {f"{i}.{p}" for i in (0, 3, 7) for p in ("weight", "bias")}
    loaded._modules["0"].requires_grad_(False)  # freeze the first convolution
    before = {k: v.array.copy() for k, v in params.items()}
    opt = optim.SGD([p for p in loaded.parameters() if p.requires_grad], lr=0.1)
    x, target = data((4, 1, 12, 12), 3), np.array([0, 1, 2, 3])
    loss = nn.CrossEntropyLoss()(loaded(x), kl.tensor(target))
    loss.backward()
    opt.step()
    for key, p in params.items():
        if key.startswith("0."):
            assert p.grad is None
            np.testing.assert_array_equal(p.array, before[key])
        else:
            assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0
            assert not np.array_equal(p.array, before[key])


# ---- hand-built graphs against onnxruntime
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_auto_pad(auto_pad, stride):
    w, b = data((3, 2, 2, 3), 1), data((3,), 2)
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], auto_pad=auto_pad, strides=[stride, stride]
    )
    model = graph_model([node], {"x": [None, 2, 7, 8]}, {"w": w, "b": b})
    against_onnxruntime(model, data((3, 2, 7, 8)))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_auto_pad(op, auto_pad):
    node = helper.make_node(
        op, ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2], auto_pad=auto_pad
    )
    against_onnxruntime(graph_model([node], {"x": [None, 2, 7, 8]}), data((2, 2, 7, 8)))


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [1, 0, 0, 1], [0, 0, 0, 0]])
def test_average_pool_pads_and_ceil_mode(pads, ceil_mode, count_include_pad):
    node = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=pads,
        ceil_mode=ceil_mode, count_include_pad=count_include_pad,
    )  # fmt: skip
    against_onnxruntime(graph_model([node], {"x": [None, 2, 8, 7]}), data((2, 2, 8, 7)))


@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 1, 1, 0]])
def test_max_pool_pads_dilation_and_ceil_mode(pads, ceil_mode):
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], pads=pads,
        dilations=[2, 1], ceil_mode=ceil_mode,
    )  # fmt: skip
    against_onnxruntime(graph_model([node], {"x": [None, 2, 8, 7]}), data((2, 2, 8, 7)))


@pytest.mark.parametrize("trans_a, trans_b, alpha, beta", [(0, 0, 1.0, 1.0), (1, 1, 0.5, 2.0)])
def test_gemm_general_form(trans_a, trans_b, alpha, beta):
    a_shape = (4, 3) if trans_a else (3, 4)
    b = data((5, 4) if trans_b else (4, 5), 1)
    node = helper.make_node(
        "Gemm", ["a", "b", "c"], ["y"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta
    )
    model = graph_model([node], {"a": list(a_shape)}, {"b": b, "c": data((1, 5), 2)}, rank=2)
    against_onnxruntime(model, data(a_shape))
    assert len(list(konnx.load(model).parameters())) == 2


def test_conv_with_weight_from_the_graph_runs_as_an_operation():
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 0, 1], group=2)
    model = graph_model([node], {"x": [None, 4, 5, 5], "w": [2, 2, 3, 3]})
    against_onnxruntime(model, data((2, 4, 5, 5)), data((2, 2, 3, 3), 1))


@pytest.mark.parametrize("axis", [1, 2])
def test_softmax_before_opset_13_flattens_from_its_axis(axis):
    node = helper.make_node("Softmax", ["x"], ["y"], axis=axis)
    model = graph_model([node], {"x": [None, 3, 4]}, opset=11, rank=3)
    against_onnxruntime(model, data((2, 3, 4)))


def test_shape_arithmetic_keeps_the_batch_free():
    """x.view(x.size(0), -1) as tracers write it, then a MatMul + Add layer."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.int64(0))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ]
    inits = {"w": data((12, 2), 1), "b": data((2,), 2)}
    model = graph_model(nodes, {"x": [None, 3, 4]}, inits, rank=2)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], np.int64), "axes"),
            numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        ]
    )
    for batch in (1, 4):
        against_onnxruntime(model, data((batch, 3, 4), batch))
    loaded = konnx.load(model)
    assert {"w", "b"} <= {k for k, _ in loaded.named_parameters()}


# ---- what is refused
def test_unsupported_operation_names_node_op_and_list():
    node = helper.make_node("Erf", ["x"], ["y"], name="gelu_part")
    model = graph_model([node], {"x": [2]}, rank=1)
    with pytest.raises(konnx.ONNXError, match=r"'gelu_part'.*Erf.*supported: .*Conv"):
        konnx.load(model)


@pytest.mark.parametrize(
    "node, message",
    [
        (helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2]), "extra outputs"),
        (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2]),
         "dilations"),
        (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2]), "only 2-D windows"),
    ],
)  # fmt: skip
def test_unsupported_attributes_are_refused(node, message):
    model = graph_model([node], {"x": [1, 2, 4, 4]}, outputs=list(node.output))
    with pytest.raises(konnx.ONNXError, match=message):
        konnx.load(model)


def test_attribute_of_an_old_opset_is_refused():
    node = helper.make_node("Add", ["x", "x"], ["y"], broadcast=1, axis=1, name="old_add")
    model = graph_model([node], {"x": [1, 2, 4, 4]}, opset=6)
    with pytest.raises(konnx.ONNXError, match=r"'old_add' \(Add\): attribute 'axis'"):
        konnx.load(model)


def test_batch_norm_in_training_mode_is_refused():
    inits = {n: np.ones(2, np.float32) for n in ("s", "b", "m", "v")}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1)
    with pytest.raises(konnx.ONNXError, match="inference mode"):
        konnx.load(graph_model([node], {"x": [1, 2, 3, 3]}, inits))


def test_concatenating_float_tensors_is_refused_when_run():
    node = helper.make_node("Concat", ["x", "x"], ["y"], axis=1, name="cat")
    loaded = konnx.load(graph_model([node], {"x": [1, 2]}, rank=2))
    with pytest.raises(konnx.ONNXError, match="'cat'.*floating-point"):
        loaded(data((1, 2)))


def test_unreadable_file(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(konnx.ONNXError, match="not a readable ONNX model|not valid ONNX"):
        konnx.load(tmp_path / "bad.onnx")
