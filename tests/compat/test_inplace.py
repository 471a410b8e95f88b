"""In-place updates with PyTorch's rules: each program runs on both engines (``T`` is torch or
kernelab) and must give the same values, gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def values(T):
    a = T.ones(3)
    a.add_(2)
    a.mul_(T.tensor([1.0, 2.0, 3.0]))
    a.sub_(1, alpha=2)
    a.div_(2)
    b = a.clone()
    b.clamp_(1.0, 2.0)
    c = T.zeros(2, 3)
    c.fill_(3)
    c.copy_(T.tensor([1.0, 2.0, 3.0]))
    d = T.arange(6.0).view(2, 3)
    d[d > 2] = 0
    d[0, 1] = 9
    d[:, 2] = T.tensor([7.0, 8.0])
    e = T.ones(4, dtype=T.int64)
    e += 2
    e *= 3
    f = T.ones(2)
    f /= 4
    f -= T.tensor([0.5, 1.0])
    g = T.arange(4.0)
    g.zero_()
    return a, b, c, d, e, f, g


def returns_self(T):
    x = T.ones(2)
    return [x.add_(1) is x, x.zero_() is x, x.fill_(2) is x, x.mul_(2) is x, x.copy_(x) is x]


def leaf_under_no_grad(T):
    w = T.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with T.no_grad():
        w -= 0.1 * w.grad
        w.mul_(2)
        w[0] = 5.0
    return w.detach(), w.requires_grad, w.is_leaf


def residual(T):
    """``out += identity`` inside the graph, as a ResNet block writes it."""
    x = T.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    identity = x
    out = x * 2
    out += identity
    out *= 3
    out = out.relu()
    out.sum().backward()
    return out.detach(), x.grad


def grad_mode_off_input(T):
    """In place on a tensor that needs no gradient, while gradients are recorded."""
    x = T.tensor([1.0, 2.0], requires_grad=True)
    scale = T.ones(2)
    scale.mul_(3)
    y = (x * scale).sum()
    y.backward()
    return y.detach(), x.grad


@pytest.mark.parametrize(
    "program", [values, returns_self, leaf_under_no_grad, residual, grad_mode_off_input]
)
def test_same_values_as_pytorch(program):
    def plain(out):
        if isinstance(out, (tuple, list)):
            return [plain(o) for o in out]
        if isinstance(out, torch.Tensor):
            return (out.numpy().dtype.name, out.numpy().tolist())
        if isinstance(out, kl.Tensor):
            return (out.dtype.name, out.tolist())
        if isinstance(out, np.ndarray):  # kernelab's .grad
            return (out.dtype.name, out.tolist())
        return out

    assert plain(program(kl)) == plain(program(torch))


def inplace_on_leaf(T, op):
    w = T.ones(3, requires_grad=True)
    op(w)


OPS = {
    "add_": lambda w: w.add_(1),
    "mul_": lambda w: w.mul_(2),
    "zero_": lambda w: w.zero_(),
    "fill_": lambda w: w.fill_(1),
    "clamp_": lambda w: w.clamp_(0, 1),
    "setitem": lambda w: w.__setitem__(0, 2.0),
    "iadd": lambda w: w.__iadd__(1),
    "isub": lambda w: w.__isub__(1),
}


@pytest.mark.parametrize("op", OPS, ids=list(OPS))
def test_leaf_requiring_grad_refuses_in_place_as_pytorch(op):
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        inplace_on_leaf(torch, OPS[op])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        inplace_on_leaf(kl, OPS[op])


def test_named_in_place_inside_the_graph_says_to_write_it_out_of_place():
    x = kl.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(NotImplementedError, match=r"add_.*out-of-place form"):
        y.add_(1)
    with pytest.raises(NotImplementedError, match=r"compute a new tensor instead"):
        y[0] = 0.0


def test_in_place_keeps_the_array_and_its_dtype():
    x = kl.zeros(3)
    array = x.array
    x.add_(np.float64(1.5))
    x += 1
    assert x.array is array and x.dtype == kl.float32
    np.testing.assert_array_equal(array, 2.5)
    with pytest.raises(TypeError):  # as PyTorch: a float result cannot go into an int tensor
        kl.ones(2, dtype=kl.int64).add_(0.5)
