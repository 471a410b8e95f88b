"""Text specs: ``--arch`` layer stacks, kernel specs and initialiser specs end in a SpecError
or ValueError of one line naming the token, and none builds past the stated limits."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import kernelab as kl
from kernelab.apps import arch
from kernelab.kernels import designed, initializers
from kernelab.nn.layers import SpecError

from .outcome import assert_clear

numbers = st.one_of(
    st.integers(0, 9).map(str),
    st.integers(0, 70).map(str),
    st.sampled_from(["", "0", "00", "4097", "99999999999", "1e3", "-1", "nan", "0.5"]),
)
options = st.lists(
    st.sampled_from(["same", "valid", "p", "s", "d", "g", "dw", "nobias", "symx", "symrot90",
                     "symbogus", "q"]).flatmap(lambda o: numbers.map(lambda n: f"-{o}{n}")),
    max_size=3,
)  # fmt: skip
tokens = st.one_of(
    st.tuples(numbers, numbers, numbers, options).map(
        lambda t: f"conv{t[0]}x{t[1]}x{t[2]}{''.join(t[3])}"
    ),
    st.tuples(numbers, options).map(lambda t: f"conv{t[0]}x{t[0]}{''.join(t[1])}"),
    st.tuples(st.sampled_from(["maxpool", "avgpool"]), numbers, options).map(
        lambda t: t[0] + t[1] + "".join(t[2])
    ),
    numbers.map(lambda n: f"linear{n}"),
    numbers.map(lambda n: f"dropout{n}"),
    numbers.map(lambda n: f"leakyrelu:{n}"),
    st.sampled_from(["relu", "gap", "bn", "flatten", "sigmoid", "tanh", "", " ", "RELU"]),
    st.text(max_size=12),
)
specs = st.lists(tokens, min_size=0, max_size=6).map(",".join)
shapes = st.sampled_from([(1, 28, 28), (3, 32, 32), (1, 5, 5), (2, 1, 1), (10,)])


def token_of(spec: str) -> list[str]:
    return [t.strip().lower() for t in spec.split(",")] + ["empty", "spec", "layers"]


@given(spec=specs, shape=shapes)
@example(spec="flatten,linear99999999", shape=(1, 28, 28))  # 78 billion weights
@example(spec="conv255x4096-same-d4096", shape=(1, 28, 28))  # padding of half a million
@example(spec="conv3x3-p4096,conv3x3-p4096,conv3x3-p4096", shape=(1, 28, 28))
@example(spec="relu," * 1000, shape=(1, 28, 28))
@example(spec="\x00relu", shape=(1, 28, 28))
@example(spec="linear0,linear0", shape=(10,))  # Linear(0, 0): a ZeroDivisionError once
@example(spec="conv" + "9" * 400 + "x3", shape=(1, 28, 28))
def test_arch_specs(spec, shape):
    try:
        model = arch.build(spec, shape)
    except SpecError as error:
        assert_clear(error, "layer", "spec", "token", *token_of(spec))
    else:
        weights = sum(p.numel() for p in model.parameters())
        assert weights <= arch.MAX_LAYERS * arch.MAX_LAYER_VALUES


kernel_names = st.sampled_from(designed.KERNELS + ["nope", "Sobel_X", ""])
initializer_names = st.sampled_from(initializers.INITIALIZERS + ["nope", "Kaiming-Normal"])
arguments = st.lists(
    st.one_of(numbers, st.sampled_from(["7x5", "3x", "x", "1e6", "1e7", "inf", "-inf", "1x1x1"])),
    max_size=4,
)


@given(name=kernel_names, args=arguments)
@example(name="gaussian", args=["255", "1e6"])
@example(name="gaussian", args=["3"] * 300)  # a long spec is quoted in part
@example(name="sobel-x", args=["1"])  # names the spec, not only sobel_x
def test_kernel_specs(name, args):
    spec = ":".join([name, *args])
    try:
        kernel = designed.get_kernel(spec)
    except ValueError as error:
        assert_clear(error, "kernel")
    else:
        assert max(kernel.shape) <= designed.MAX_KERNEL_SIZE
        assert kernel.shape == designed.kernel_spec_size(spec)


@given(
    name=initializer_names,
    args=arguments,
    shape=st.sampled_from([(4, 2, 3, 3), (3, 5), (2, 2, 1, 7)]),
)
@example(name="nope", args=[], shape=(3, 5))  # the list of names is cut to fit
@example(name="uniform", args=["2"], shape=(3, 5))  # a > b: numpy's "high - low < 0"
def test_initializer_specs(name, args, shape):
    spec = ":".join([name, *args])
    weight = kl.Tensor(np.zeros(shape, np.float32))
    try:
        initializers.get_initializer(spec)(weight, np.random.default_rng(0))
    except ValueError as error:
        assert_clear(error, "initializer", "kernel", "weight", name)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("flatten,linear99999999", "past 4096"),
        ("flatten,linear4096,linear4096,linear4096,linear4096", None),
        ("conv3x3x4096-same,conv7x7x4096", "weights"),
        ("conv255x255x8-same-d16", "values"),
        ("conv3x3x8-p2000", "values"),
        ("relu," * 300, "at most 256"),
        ("conv3x3x8,\x00", "printable"),
        ("relu" + "x" * 70, "printable"),
    ],
)
def test_arch_limits_are_checked_before_building(spec, words):
    """Each limit refuses with a SpecError naming the layer; a legal spec near them builds."""
    if words is None:
        assert arch.build(spec, (1, 8, 8)) is not None
        return
    with pytest.raises(SpecError, match=words) as caught:
        arch.build(spec, (1, 28, 28))
    assert_clear(caught.value, "layer", "spec")
