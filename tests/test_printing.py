"""Tensors and parameters print as PyTorch's do, with ``torch.`` read as ``kernelab.``: the
same text from PyTorch run here on the same values, under the same print options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl
from kernelab.core.printing import get_printoptions

DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]
SMALL_SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
# Past the 1000 elements that summarise, with rows of several lengths around 2 * edgeitems.
LARGE_SHAPES = st.sampled_from([(1001,), (2000,), (3, 400), (40, 30), (11, 10, 11), (2, 7, 6, 13)])


def torch_text(t: torch.Tensor) -> str:
    return repr(t).replace("torch.", "kernelab.")


def values(dtype: str, shape: tuple[int, ...], seed: int, scale: int, kind: str) -> np.ndarray:
    """Values of ``dtype`` that exercise the formats: magnitudes around 10**scale (wide
    spreads and tiny or huge values pick scientific notation), integer-valued floats, and
    nan, inf and -0. scattered in."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int64", "int32", "uint8"):
        info = np.iinfo(dtype)
        high = min(info.max, 10 ** min(scale + 1, 18))
        return rng.integers(max(info.min, -high), high, shape, dtype=dtype, endpoint=True)
    if dtype == "float16":
        scale = min(max(scale, -6), 4)
    array = rng.standard_normal(shape) * 10.0**scale
    if kind == "spread":
        array *= 10.0 ** rng.integers(-6, 6, shape)
    elif kind == "integers":
        array = np.round(array)
    elif kind == "specials" and array.size:
        flat = array.reshape(-1)  # (numel,)
        picks = rng.integers(0, flat.size, min(flat.size, 4))
        flat[picks] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], len(picks))
    with np.errstate(over="ignore"):  # float16 past 65504 is inf, one more case to print
        return array.astype(dtype)


@st.composite
def arrays(draw, shapes=SMALL_SHAPES | LARGE_SHAPES):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(shapes)
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.integers(-9, 12))
    kind = draw(st.sampled_from(["plain", "spread", "integers", "specials"]))
    return np.asarray(values(dtype, shape, seed, scale, kind))


@pytest.fixture(autouse=True)
def _default_print_options():
    yield
    kl.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")
    torch.set_default_dtype(torch.float32)


def assert_prints_as_torch(array: np.ndarray) -> None:
    ours, theirs = kl.from_numpy(array), torch.from_numpy(array)
    assert repr(ours) == torch_text(theirs)
    assert str(ours) == str(theirs).replace("torch.", "kernelab.")


@given(arrays())
def test_a_tensor_prints_as_pytorch_s(array):
    assert_prints_as_torch(array)


OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "precision": st.integers(0, 8),
        "threshold": st.sampled_from([0, 5, 50, 1000, float("inf")]),
        "edgeitems": st.integers(0, 4),
        "linewidth": st.integers(20, 150),
        "profile": st.sampled_from(["default", "short", "full"]),
        "sci_mode": st.sampled_from([None, True, False]),
    },
)


@given(arrays(SMALL_SHAPES | st.sampled_from([(30,), (7, 9), (4, 3, 11)])), OPTIONS)
def test_print_options_act_as_pytorch_s(array, options):
    kl.set_printoptions(**options)
    torch.set_printoptions(**options)
    try:
        assert get_printoptions() == torch._tensor_str.get_printoptions()
        assert_prints_as_torch(array)
    finally:
        kl.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


@pytest.mark.parametrize(
    "array",
    [
        np.float32(3.5),
        np.int64(-7),
        np.bool_(True),
        np.float64(np.nan),
        np.float32(-0.0),
        np.zeros((0, 3), np.float32),
        np.zeros(0, np.int64),
        np.zeros((2, 0, 1), np.bool_),
        np.zeros(0, np.float64),
        np.array([1e-5, 1.0], np.float32),
        np.array([1e8, 1.5], np.float32),
        np.array([0.0, np.nan, -np.inf], np.float32),
        np.array([-0.0, 2.0], np.float32),
        np.array([[1.0, -0.0], [np.inf, 1e9]], np.float64),
        np.arange(1001, dtype=np.float32),
        np.arange(45, dtype=np.int64).reshape(3, 15) * 10**12,
    ],
    ids=repr,
)
def test_corner_cases_print_as_pytorch_s(array):
    assert_prints_as_torch(np.asarray(array))  # a NumPy scalar as a 0-d array


def test_the_default_dtype_is_the_one_left_unnamed():
    kl.set_default_dtype(kl.float64)
    torch.set_default_dtype(torch.float64)
    for dtype in ("float32", "float64"):
        assert_prints_as_torch(np.array([1.5, 2.0], dtype))
        assert_prints_as_torch(np.zeros((0, 2), dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_autograd_suffixes_as_pytorch_s(dtype):
    array = np.array([[1.5, -2.0], [0.25, 3.0]], dtype)
    ours = kl.tensor(array, requires_grad=True)
    theirs = torch.tensor(array, requires_grad=True)
    assert repr(ours) == torch_text(theirs)
    assert repr(ours * 2) == torch_text(theirs * 2)
    assert repr(ours @ ours.T) == torch_text(theirs @ theirs.T)
    assert repr((ours * 2).detach()) == torch_text((theirs * 2).detach())


def test_suffixes_wrap_where_pytorch_s_do():
    """A suffix that does not fit goes to a new line; ``kernelab.int32``, three characters
    longer than ``torch.int32``, is measured as PyTorch's so the lines stay the same."""
    fits = np.random.default_rng(0).integers(-9999, 9999, (3, 400)).astype(np.int32)
    assert torch_text(torch.from_numpy(fits)).endswith("-4686]], dtype=kernelab.int32)")
    assert_prints_as_torch(fits)
    array = np.linspace(-1, 1, 15, dtype=np.float64)
    ours = kl.tensor(array, requires_grad=True)
    theirs = torch.tensor(array, requires_grad=True)
    assert "],\n       dtype=kernelab.float64, requires_grad=True)" in torch_text(theirs)
    assert repr(ours) == torch_text(theirs)


@given(arrays(SMALL_SHAPES.filter(lambda shape: 0 not in shape)))
def test_a_parameter_prints_as_pytorch_s(array):
    if array.dtype.kind != "f":
        return  # only floating tensors can require a gradient
    ours = kl.nn.Parameter(kl.from_numpy(array))
    theirs = torch.nn.Parameter(torch.from_numpy(array))
    assert repr(ours) == torch_text(theirs)
    assert str(ours) == str(theirs).replace("torch.", "kernelab.")
    assert repr(ours).startswith("Parameter containing:\ntensor(")
    frozen = kl.nn.Parameter(kl.from_numpy(array), requires_grad=False)
    assert repr(frozen) == torch_text(torch.nn.Parameter(torch.from_numpy(array), False))


def test_a_layer_s_parameters_print_as_pytorch_s():
    ours, theirs = kl.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.array))
    assert repr(ours.weight) == torch_text(theirs.weight)


def test_set_printoptions_is_pytorch_s():
    kl.set_printoptions(precision=2)
    assert repr(kl.tensor([1.12345])) == "tensor([1.12])"
    kl.set_printoptions(threshold=5)
    assert repr(kl.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    kl.set_printoptions(profile="default")
    assert repr(kl.tensor([1.12345])) == "tensor([1.1235])"
    assert repr(kl.arange(10)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    kl.set_printoptions(sci_mode=True)
    assert repr(kl.tensor([1.5])) == "tensor([1.5000e+00])"
    kl.set_printoptions(precision=3)  # sci_mode goes back to None on every call
    assert repr(kl.tensor([1.5])) == "tensor([1.500])"
