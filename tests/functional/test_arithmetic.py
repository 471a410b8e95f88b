"""Element-wise arithmetic, matmul and reductions: gradients against central differences,
values and gradients against PyTorch (with broadcasting)."""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close, check_gradients
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-10, np.float32: 1e-4}

BROADCAST_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 4), (3, 1)),
    ((1,), (2, 3)),
    ((), (2, 3)),
    ((2, 3, 1, 2), (1, 3, 4, 1)),
]

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


def positive(shape, seed):
    """Values in [0.5, 2]: safe for division, log, sqrt and a real power."""
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES)
def test_binary_gradients_with_broadcasting(name, shape_a, shape_b):
    a = np.random.default_rng(0).standard_normal(shape_a)
    if name == "pow":
        a = positive(shape_a, 0)
    b = positive(shape_b, 1) * np.where(name in ("div", "pow"), 1, -1)
    check_gradients(BINARY[name], [a, b])
    check_gradients(BINARY[name], [b, positive(shape_a, 2)])  # the other way round


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x + 2.5,
        lambda x: 2.5 - x,
        lambda x: 3.0 * x,
        lambda x: 1.5 / x,
        lambda x: -x,
        lambda x: x**2,
        lambda x: x**0.5,
        lambda x: x**-1.5,
        lambda x: 2.0**x,
    ],
    ids=["radd", "rsub", "rmul", "rdiv", "neg", "square", "pow_half", "pow_neg", "rpow"],
)
def test_scalar_operand_gradients(fn):
    check_gradients(fn, [positive((3, 2), 3)])


@pytest.mark.parametrize(
    "name",
    ["exp", "log", "sqrt", "abs"],
)
def test_unary_gradients(name):
    x = positive((2, 3, 2), 4)
    if name in ("exp", "abs"):
        x = x * np.where(np.arange(x.size).reshape(x.shape) % 2, 1, -1)  # both signs
    check_gradients(lambda t: getattr(t, name)(), [x])


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((4,), (4,)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((3, 4), (4, 2)),
        ((2, 3, 4), (2, 4, 5)),
        ((2, 3, 4), (4, 5)),
        ((4,), (2, 4, 3)),
        ((2, 1, 3, 4), (3, 4, 2)),
    ],
)
def test_matmul_gradients(shape_a, shape_b):
    rng = np.random.default_rng(5)
    check_gradients(
        lambda a, b: a @ b, [rng.standard_normal(shape_a), rng.standard_normal(shape_b)]
    )


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize(
    "dim, keepdim",
    [(None, False), (None, True), (0, False), (-1, True), ((0, 2), False), ((1, -1), True)],
)
def test_reduction_gradients(reduce, dim, keepdim):
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    check_gradients(lambda t: getattr(t, reduce)(dim=dim, keepdim=keepdim), [x])


def test_cast_gradient_returns_in_the_original_dtype():
    x = kl.Tensor(np.arange(3.0), requires_grad=True)
    y = x.astype(kl.float32)
    assert y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


# ---- against PyTorch


def to_torch(a):
    return torch.tensor(a, requires_grad=True)


def compare(ours_fn, torch_fn, arrays, dtype, seed):
    ours = [kl.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [to_torch(a) for a in arrays]
    y, ty = ours_fn(*ours), torch_fn(*theirs)
    assert y.dtype == dtype
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    # A positive upstream gradient: the gradient of a broadcast operand is a sum over many
    # elements, and with mixed signs that sum can cancel to far below its terms (ill-posed).
    gy = positive(tuple(ty.shape), seed + 2).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for i, (a, t) in enumerate(zip(ours, theirs, strict=True)):
        assert a.grad.dtype == dtype
        assert_rel_close(a.grad, t.grad.numpy(), TOL[dtype], f"gradient of operand {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4),
    name=st.sampled_from(list(BINARY)),
    seed=st.integers(0, 2**16),
)
def test_binary_ops_match_pytorch(dtype, shapes, name, seed):
    a = positive(shapes.input_shapes[0], seed).astype(dtype)
    if name == "pow":  # d(a**b)/db sums a**b·log(a): keep log(a) > 0 so it cannot cancel
        a += 1
    b = positive(shapes.input_shapes[1], seed + 1).astype(dtype)
    compare(BINARY[name], BINARY[name], [a, b], dtype, seed)


MATMUL_SHAPES = st.sampled_from(
    [((5,), (5,)), ((5,), (5, 3)), ((4, 5), (5,)), ((4, 5), (5, 3)), ((2, 4, 5), (2, 5, 3))]
    + [((3, 1, 4, 5), (2, 5, 3)), ((5,), (3, 5, 2)), ((2, 3, 4, 5), (5,))]
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(shapes=MATMUL_SHAPES, seed=st.integers(0, 2**16))
def test_matmul_matches_pytorch(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    compare(lambda a, b: a @ b, lambda a, b: a @ b, arrays, dtype, seed)


UNARY_AND_REDUCTIONS = {
    "exp": (lambda t: t.exp(), lambda t: t.exp()),
    "log": (lambda t: t.log(), lambda t: t.log()),
    "sqrt": (lambda t: t.sqrt(), lambda t: t.sqrt()),
    "abs": (lambda t: (t - 1.25).abs(), lambda t: (t - 1.25).abs()),
    "sum": (lambda t: t.sum(), lambda t: t.sum()),
    "sum_dim": (lambda t: t.sum(dim=-1, keepdim=True), lambda t: t.sum(dim=-1, keepdim=True)),
    "mean": (lambda t: t.mean(), lambda t: t.mean()),
    "mean_dim": (lambda t: t.mean(dim=0), lambda t: t.mean(dim=0)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
    name=st.sampled_from(list(UNARY_AND_REDUCTIONS)),
    seed=st.integers(0, 2**16),
)
def test_unary_and_reductions_match_pytorch(dtype, shape, name, seed):
    ours_fn, torch_fn = UNARY_AND_REDUCTIONS[name]
    compare(ours_fn, torch_fn, [positive(shape, seed).astype(dtype)], dtype, seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_keep_the_dtype(dtype):
    x = kl.Tensor(np.ones(3, dtype), requires_grad=True)
    for y in (x + 1.5, 1.5 - x, x * 2, 2 / x, x**2.0, 2.0**x, -x, x.mean(), x.sum()):
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad.dtype == dtype
        x.grad = None


@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_prod_gradients(dim, keepdim):
    x = positive((3, 4), seed=5)
    check_gradients(lambda t: t.prod(dim, keepdim), [x])


@pytest.mark.parametrize("dim", [None, 1])
def test_prod_with_zeros_matches_pytorch(dim):
    """One zero in a row: its gradient is the product of the others; two: all zero."""
    x = np.array([[0.5, 0.0, 2.0, 3.0], [0.0, 1.5, 0.0, 2.0], [1.0, 2.0, 3.0, 0.5]])
    ours, theirs = kl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    args = () if dim is None else (dim,)
    ours.prod(*args).sum().backward()
    theirs.prod(*args).sum().backward()
    np.testing.assert_allclose(np.asarray(ours.grad), theirs.grad.numpy(), rtol=1e-12)
