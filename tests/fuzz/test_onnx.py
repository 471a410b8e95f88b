"""ONNX import: unknown operations, cyclic graphs, wrong shapes and damaged files end in an
ONNXError (a ValueError) naming the node or the file; a model that loads runs or refuses its
input with a ValueError."""

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import kernelab.onnx as konnx  # noqa: E402
from kernelab.onnx.load_ops import OPS  # noqa: E402

from .outcome import assert_clear, cut, flip  # noqa: E402

OP_TYPES = sorted(OPS) + ["Erf", "Loop", "If", "Resize", "NotAnOp"]
ATTRIBUTES = {
    "kernel_shape": st.lists(st.integers(-1, 4), min_size=1, max_size=3),
    "strides": st.lists(st.integers(-1, 3), min_size=1, max_size=3),
    "pads": st.lists(st.integers(-1, 3), min_size=1, max_size=4),
    "dilations": st.lists(st.integers(0, 3), min_size=1, max_size=2),
    "group": st.integers(-1, 4),
    "axis": st.integers(-5, 5),
    "axes": st.lists(st.integers(-5, 5), min_size=1, max_size=3),
    "perm": st.lists(st.integers(-1, 4), min_size=1, max_size=4),
    "alpha": st.floats(allow_nan=True, width=32),
    "epsilon": st.floats(-1, 1, width=32),
    "to": st.sampled_from([1, 6, 7, 9, 10, 11, 8, 0, 99]),
    "auto_pad": st.sampled_from(["NOTSET", "SAME_UPPER", "VALID", "BOGUS"]),
    "keepdims": st.integers(-1, 2),
    "transB": st.integers(0, 2),
    "value": st.builds(
        lambda v: numpy_helper.from_array(np.asarray(v, np.float32)),
        st.lists(st.floats(-2, 2, width=32), max_size=3),
    ),
}
NAMES = ["x", "w", "b", "s", "t0", "t1", "t2", "t3", "missing", ""]


def schema(op: str, opset: int):
    try:
        return onnx.defs.get_schema(op, opset)
    except onnx.defs.SchemaError:
        return None


@st.composite
def models(draw):
    """Mostly well-formed chains (each node reads the one before, with its schema's number of
    inputs and attributes), sometimes anything: unknown operations, names, domains."""
    opset = draw(st.sampled_from([7, 11, 13, 17, 21]))
    count, wild = draw(st.integers(1, 4)), draw(st.integers(0, 9)) == 0
    nodes, previous = [], "x"
    for i in range(count):
        op = draw(st.sampled_from(OP_TYPES))
        found = schema(op, opset)
        if wild or found is None:
            inputs = draw(st.lists(st.sampled_from(NAMES), max_size=3))
            names = draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), max_size=3, unique=True))
        else:
            arity = draw(
                st.integers(found.min_input, max(found.min_input, min(found.max_input, 3)))
            )
            inputs = [previous] + draw(
                st.lists(
                    st.sampled_from(["w", "b", "s", "x"]),
                    min_size=max(0, arity - 1),
                    max_size=max(0, arity - 1),
                )
            )
            names = (
                draw(
                    st.lists(
                        st.sampled_from(sorted(set(ATTRIBUTES) & set(found.attributes))),
                        max_size=3,
                        unique=True,
                    )
                )
                if set(ATTRIBUTES) & set(found.attributes)
                else []
            )
        attrs = {k: draw(ATTRIBUTES[k]) for k in names}
        domain = "com.microsoft" if wild and draw(st.booleans()) else ""
        nodes.append(helper.make_node(op, inputs, [f"t{i}"], name=f"n{i}", domain=domain, **attrs))
        previous = f"t{i}"
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    out_rank = draw(st.integers(0, 4))
    w_shape = draw(
        st.sampled_from([shape, shape[-1:], [shape[-1], shape[-1]], [2, shape[0], 1, 1]])
    )
    initializers = [
        numpy_helper.from_array(np.ones(w_shape, np.float32), "w"),
        numpy_helper.from_array(np.zeros(w_shape[:1], np.float32), "b"),
        numpy_helper.from_array(np.asarray(shape[::-1], np.int64), "s"),
    ]
    graph = helper.make_graph(
        nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [None] * out_rank)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, tuple(shape)


def reduce_scalar():
    """ReduceMean over axis 0 of a 0-d value (found by this fuzzer: a ZeroDivisionError)."""
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["t0"], name="sum", keepdims=0),
        helper.make_node("ReduceMean", ["t0"], ["t1"], name="mean", axes=[0]),
    ]
    graph = helper.make_graph(
        nodes,
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("t1", TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, (2,)


def constant_input():
    """A layer (LeakyRelu) reading an initializer (found by this fuzzer: a KeyError)."""
    graph = helper.make_graph(
        [helper.make_node("LeakyRelu", ["w"], ["y"], name="leaky")],
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(-np.ones(4, np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 8
    return model, (4,)


def load_and_run(model, shape) -> None:
    try:
        loaded = konnx.load(model)
    except konnx.ONNXError as error:
        event("refused at load")
        assert_clear(error, "ONNX", "load")
        return
    try:
        loaded(np.ones(shape, np.float32))
    except ValueError as error:  # ONNXError, ShapeError: an input the graph cannot take
        event("loaded, input refused")
        assert_clear(error)
    else:
        event("loaded and ran")


@given(models())
@example(reduce_scalar())
@example(constant_input())
def test_random_graphs(case):
    load_and_run(*case)


def cycle(op: str = "Relu"):
    nodes = [
        helper.make_node("Add", ["x", "t1"], ["t0"], name="a"),
        helper.make_node(op, ["t0"], ["t1"], name="b"),
    ]
    graph = helper.make_graph(
        nodes,
        "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("t1", TensorProto.FLOAT, [1, 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), (1, 2)


@example(cycle())
@given(st.sampled_from(["Relu", "Sigmoid", "Identity"]).map(cycle))
def test_cyclic_graphs(case):
    load_and_run(*case)


def small_model_bytes() -> bytes:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


SMALL = small_model_bytes()
flips = st.lists(st.tuples(st.integers(0, 10**4), st.integers(1, 255)), min_size=1, max_size=6)


def test_an_initializer_short_of_its_shape(tmp_path):
    """Found by flipping a byte of a dimension: numpy's reshape error escaped."""
    model = onnx.load_from_string(SMALL)
    model.graph.initializer[0].dims[2] = 2  # (2, 1, 2, 3) declared, 18 values held
    with pytest.raises(konnx.ONNXError, match="initializer 'w'") as caught:
        konnx.load(model)
    assert_clear(caught.value, "'w'")


@given(flips=flips, where=st.integers(-len(SMALL), len(SMALL) + 1))
def test_damaged_files(tmp_path_factory, flips, where):
    path = tmp_path_factory.getbasetemp() / "fuzz.onnx"
    path.write_bytes(cut(flip(SMALL, flips), where))
    try:
        konnx.load(path)
    except konnx.ONNXError as error:
        assert_clear(error, str(path), "ONNX node", "load:")


@pytest.mark.parametrize("op", ["Erf", "Resize", "HardSwish"])
@pytest.mark.parametrize("name", ["node", "node" * 200])
def test_an_unknown_operation_is_one_short_line(op, name):
    """The supported list and the node's name are cut to fit (they made 390 characters)."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], name=name)],
        "unknown",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(konnx.ONNXError) as caught:
        konnx.load(model)
    assert_clear(caught.value, f"'{name[:60]}'")
