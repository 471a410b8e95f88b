"""The Tensor's gradient side (``core/tensor_grad.py`` and ``autograd.grad``/``backward``)
against PyTorch run in the test: each case is one function of the module (``torch`` or
``kernelab``), run on both; they must return the same values or raise the same exception
type."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

A = np.array([1.0, -2.0, 3.0], dtype=np.float32)
B = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype=np.float32)


def leaf(T, array=A):
    return T.tensor(array, requires_grad=True)


def plain(value):
    """A result as Python values: tensors as nested lists, containers element by element."""
    if isinstance(value, (torch.Tensor, kl.Tensor)):
        return ("tensor", str(value.dtype).removeprefix("torch."), value.detach().tolist())
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def outcome(fn, T):
    """``("returned", value, warning categories)`` or ``("raised", exception type name)``."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = plain(fn(T))
    except Exception as error:  # the type is what is compared
        return ("raised", type(error).__name__)
    return ("returned", value, sorted({w.category.__name__ for w in caught}))


def assert_same(fn):
    theirs, ours = outcome(fn, torch), outcome(fn, kl)
    assert ours == theirs


# ---- .grad
def grad_after_two_backwards(T):
    """The first backward makes ``.grad``; the second adds into the same tensor, in place."""
    x = leaf(T)
    (x * x).sum().backward()
    first, first_values = x.grad, x.grad.tolist()
    (x * 3).sum().backward()
    return first is x.grad, first_values, x.grad, x.grad.requires_grad, x.grad.is_leaf


def grad_zeroed_in_place(T):
    x = leaf(T)
    (x * x).sum().backward()
    g = x.grad
    x.grad.zero_()
    (x * 2).sum().backward()
    return g is x.grad, x.grad


def grad_assigned(value):
    def case(T):
        x = leaf(T)
        x.grad = value(T)
        return x.grad

    return case


def grad_assigned_then_accumulated(T):
    x, g = leaf(T), T.ones(3)
    x.grad = g
    (x * x).sum().backward()
    return x.grad is g, g


def grad_of_a_non_leaf(T):
    """None, with a warning that backward does not fill it."""
    y = leaf(T) * 2
    y.sum().backward()
    return y.grad


def retained_grad(T):
    x = leaf(T)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    return y.retains_grad, x.retains_grad, y.grad, x.grad


def retain_grad_on_a_leaf(T):
    x = leaf(T)
    x.retain_grad()
    return x.retains_grad


def retain_grad_without_requires_grad(T):
    T.ones(3).retain_grad()


GRAD_CASES = {
    "after_two_backwards": grad_after_two_backwards,
    "zeroed_in_place": grad_zeroed_in_place,
    "assign_none": grad_assigned(lambda T: None),
    "assign_tensor": grad_assigned(lambda T: T.ones(3)),
    "assign_wrong_shape": grad_assigned(lambda T: T.ones(4)),
    "assign_wrong_dtype": grad_assigned(lambda T: T.ones(3, dtype=T.float64)),
    "assign_int": grad_assigned(lambda T: T.ones(3, dtype=T.int64)),
    "assign_ndarray": grad_assigned(lambda T: np.ones(3, dtype=np.float32)),
    "assign_list": grad_assigned(lambda T: [1.0, 1.0, 1.0]),
    "assigned_then_accumulated": grad_assigned_then_accumulated,
    "of_a_non_leaf": grad_of_a_non_leaf,
    "retained": retained_grad,
    "retain_on_a_leaf": retain_grad_on_a_leaf,
    "retain_without_requires_grad": retain_grad_without_requires_grad,
}


@pytest.mark.parametrize("case", GRAD_CASES)
def test_grad(case):
    assert_same(GRAD_CASES[case])


def test_non_leaf_grad_warning_is_a_user_warning():
    for T in (torch, kl):
        y = leaf(T) * 2
        with pytest.warns(UserWarning, match="leaf"):
            assert y.grad is None


# ---- .data
def data_shares_memory(T):
    x = leaf(T)
    d = x.data
    d.mul_(2)  # through d into x
    x.data[0] = 10.0
    return x, d, d.requires_grad, d.is_leaf, d.grad_fn, d is x.data


def data_of_a_non_leaf(T):
    y = leaf(T) * 2
    y.data.add_(1)
    return y, y.data.requires_grad, y.grad_fn is not None


def data_update_keeps_the_graph_out(T):
    """``p.data -= lr * p.grad.data``: no graph recorded, no no_grad needed."""
    x = leaf(T)
    (x * x).sum().backward()
    x.data -= 0.1 * x.grad.data
    return x, x.is_leaf, x.grad_fn, x.requires_grad


def data_rebound(value):
    def case(T):
        x = leaf(T)
        x.data = value(T)
        return x, x.shape, x.requires_grad, x.is_leaf

    return case


def data_rebound_then_backward(T):
    x = leaf(T)
    x.data = T.tensor(B)
    (x * x).sum().backward()
    return x.grad


DATA_CASES = {
    "shares_memory": data_shares_memory,
    "of_a_non_leaf": data_of_a_non_leaf,
    "update": data_update_keeps_the_graph_out,
    "rebound_other_shape": data_rebound(lambda T: T.zeros(2, 2)),
    "rebound_other_dtype": data_rebound(lambda T: T.zeros(3, dtype=T.float64)),
    "rebound_ndarray": data_rebound(lambda T: np.zeros(3, dtype=np.float32)),
    "rebound_then_backward": data_rebound_then_backward,
}


@pytest.mark.parametrize("case", DATA_CASES)
def test_data(case):
    assert_same(DATA_CASES[case])


def test_data_is_a_view_of_the_same_memory():
    x = kl.tensor(A, requires_grad=True)
    assert np.shares_memory(x.data.array, x.array)


# ---- in place, requires_grad, detach
def in_place_on_a_leaf(op):
    def case(T):
        x = leaf(T)
        op(x)
        return x

    return case


def in_place_on_a_leaf_under_no_grad(T):
    x = leaf(T)
    with T.no_grad():
        x.add_(1)
        x.mul_(2)
        x -= 1
    return x, x.requires_grad, x.is_leaf, x.grad_fn


def iadd(x):
    x += 1


def requires_grad_off_for_a_non_leaf(T):
    (leaf(T) * 2).requires_grad_(False)


def requires_grad_on_for_a_non_leaf(T):
    y = leaf(T) * 2
    return y.requires_grad_(True).requires_grad


def requires_grad_for_integers(T):
    return T.tensor([1, 2], requires_grad=True)


def requires_grad_underscore_for_integers(T):
    return T.tensor([1, 2]).requires_grad_()


def detach_in_place(T):
    x = leaf(T)
    y = x * 2
    returned = y.detach_()
    return returned is y, y.requires_grad, y.is_leaf, y.grad_fn, y


def detach_shares_memory(T):
    x = leaf(T)
    d = x.detach()
    d[1] = 5.0
    return x, d.requires_grad


INPLACE_CASES = {
    "add_": in_place_on_a_leaf(lambda x: x.add_(1)),
    "iadd": in_place_on_a_leaf(iadd),
    "zero_": in_place_on_a_leaf(lambda x: x.zero_()),
    "under_no_grad": in_place_on_a_leaf_under_no_grad,
    "requires_grad_off_non_leaf": requires_grad_off_for_a_non_leaf,
    "requires_grad_on_non_leaf": requires_grad_on_for_a_non_leaf,
    "requires_grad_integers": requires_grad_for_integers,
    "requires_grad_underscore_integers": requires_grad_underscore_for_integers,
    "detach_": detach_in_place,
    "detach": detach_shares_memory,
}


@pytest.mark.parametrize("case", INPLACE_CASES)
def test_in_place_requires_grad_and_detach(case):
    assert_same(INPLACE_CASES[case])


# ---- backward
def backward_with(gradient):
    def case(T):
        x = leaf(T, B)
        (x * x).backward(gradient(T))
        return x.grad

    return case


def backward_twice(retain_graph):
    def case(T):
        x = leaf(T)
        y = (x * x).sum()
        y.backward(retain_graph=retain_graph)
        y.backward()
        return x.grad

    return case


def backward_without_requires_grad(T):
    T.ones(3).sum().backward()


def hooks_see_and_replace_gradients(T):
    """An inner tensor's hook scales its gradient; a leaf's hook sees the sum over both
    paths once, before it is added into ``.grad``; a removed hook no longer runs."""
    x = leaf(T)
    y, seen = x * 2, []
    y.register_hook(lambda g: g * 10)
    handle = x.register_hook(lambda g: seen.append(g.clone()) or g + 1)
    (y.sum() + (x * x).sum()).backward()
    first = x.grad.clone()
    handle.remove()
    (x * 3).sum().backward()
    return first, seen, x.grad


def hook_on_a_tensor_without_grad(T):
    T.ones(3).register_hook(lambda g: g)


BACKWARD_CASES = {
    "hooks": hooks_see_and_replace_gradients,
    "hook_without_requires_grad": hook_on_a_tensor_without_grad,
    "gradient": backward_with(lambda T: T.ones(2, 3) * 2),
    "gradient_wrong_shape": backward_with(lambda T: T.ones(3, 2)),
    "no_gradient_non_scalar": backward_with(lambda T: None),
    "twice_retained": backward_twice(True),
    "twice_freed": backward_twice(False),
    "without_requires_grad": backward_without_requires_grad,
}


@pytest.mark.parametrize("case", BACKWARD_CASES)
def test_backward(case):
    assert_same(BACKWARD_CASES[case])


# ---- autograd.grad and autograd.backward
def grad_single(T):
    x = leaf(T)
    (g,) = T.autograd.grad((x * x).sum(), x)
    return g, x.grad  # .grad is left alone


def grad_several_inputs_and_outputs(T):
    x, w = leaf(T), leaf(T, A[::-1].copy())
    y1, y2 = (x * w).sum(), (x * x).sum()
    return T.autograd.grad([y1, y2], [x, w])


def grad_outputs(T):
    x = leaf(T, B)
    return T.autograd.grad(x * x, x, grad_outputs=T.ones(2, 3) * 3)


def grad_unused(allow_unused):
    def case(T):
        x, z = leaf(T), leaf(T)
        return T.autograd.grad((x * 2).sum(), [x, z], allow_unused=allow_unused)

    return case


def grad_materialized(T):
    x, z = leaf(T), leaf(T)
    return T.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)


def grad_of_a_non_leaf_input(T):
    x = leaf(T)
    y = x * 3
    return T.autograd.grad((y * y).sum(), y)


def grad_of_an_input_without_grad(T):
    x = leaf(T)
    return T.autograd.grad((x * 2).sum(), [T.ones(3)])


def grad_retain_graph(T):
    x = leaf(T)
    y = (x * x).sum()
    first = T.autograd.grad(y, x, retain_graph=True)
    return first, T.autograd.grad(y, x)


def backward_function(inputs):
    def case(T):
        x, w = leaf(T), leaf(T, A * 2)
        h = x * w
        y1, y2 = h.sum(), h * x
        chosen = inputs(x, w, h)
        T.autograd.backward([y1, y2], [T.tensor(2.0), T.ones(3)], inputs=chosen)
        return x.grad, w.grad, h.grad if any(t is h for t in chosen or ()) else None

    return case


AUTOGRAD_CASES = {
    "grad_single": grad_single,
    "grad_several": grad_several_inputs_and_outputs,
    "grad_outputs": grad_outputs,
    "grad_unused": grad_unused(None),
    "grad_allow_unused": grad_unused(True),
    "grad_materialize": grad_materialized,
    "grad_non_leaf_input": grad_of_a_non_leaf_input,
    "grad_input_without_grad": grad_of_an_input_without_grad,
    "grad_retain_graph": grad_retain_graph,
    "backward_all": backward_function(lambda x, w, h: None),
    "backward_inputs_one": backward_function(lambda x, w, h: [x]),
    "backward_inputs_non_leaf": backward_function(lambda x, w, h: [w, h]),
}


@pytest.mark.parametrize("case", AUTOGRAD_CASES)
def test_autograd_functions(case):
    assert_same(AUTOGRAD_CASES[case])


# ---- the idioms of training loops around .grad
def linear_after_backward(T):
    model = T.nn.Linear(3, 2)
    model(T.ones(1, 3)).sum().backward()
    return model


def module_zero_grad(T):
    model = linear_after_backward(T)
    model.zero_grad()  # to None, the default
    return model.weight.grad


def optimizer_zero_grad_in_place(T):
    """``step`` keeps each ``.grad`` tensor; ``zero_grad(set_to_none=False)`` zeroes it."""
    model = linear_after_backward(T)
    optimizer = T.optim.SGD(model.parameters(), lr=0.1)
    g = model.weight.grad
    optimizer.step()
    kept = g is model.weight.grad
    optimizer.zero_grad(set_to_none=False)
    return kept, g is model.weight.grad, g


def zero_grad_as_modules_once_did(T):
    x = leaf(T)
    (x * x).sum().backward()
    x.grad.detach_()
    x.grad.requires_grad_(False)
    x.grad.zero_()
    return x.grad


def grad_edited(T):
    x = leaf(T)
    (x * x).sum().backward()
    x.grad.add_(1)
    x.grad += 1
    x.grad = x.grad * 2
    (x * 1).sum().backward()
    return x.grad


def zero_grad_before_any_backward(T):
    leaf(T).grad.zero_()


def frozen_and_unused_parameters(T):
    model, unused = T.nn.Linear(3, 2), T.nn.Linear(3, 2)
    model.weight.requires_grad = False
    model(T.ones(1, 3)).sum().backward()
    return model.weight.grad, model.bias.grad, unused.weight.grad


def under_no_grad_and_enable_grad(T):
    x = leaf(T)
    with T.no_grad():
        y = x * 2
        with T.enable_grad():
            z = x * 2
    with T.set_grad_enabled(False):
        w = x * 2
    return y.requires_grad, y.grad_fn, y.is_leaf, z.requires_grad, w.requires_grad


def retained_grad_accumulates(T):
    x = leaf(T)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    return y.grad


def backward_of_a_leaf(T):
    x = T.tensor(2.0, requires_grad=True)
    x.backward()
    return x.grad


def backward_into_an_input_off_the_graph(T):
    x, z = leaf(T), leaf(T)
    (x * 2).sum().backward(inputs=[z])
    return z.grad, x.grad


def grad_of_data_and_of_grad(T):
    x = leaf(T)
    (x * x).sum().backward()
    return x.data.grad, x.grad.grad, T.ones(2).grad


def detached_then_requiring_grad(T):
    x = leaf(T)
    d = (x * 2).detach().requires_grad_()
    (d * d).sum().backward()
    return d.grad, d.is_leaf, x.grad


def float64_grad(T):
    x = T.tensor(B.astype(np.float64), requires_grad=True)
    (x * x).sum().backward()
    return x.grad


def numpy_of_data(T):
    x = leaf(T)
    x.data.numpy()[0] = 7.0
    return x


IDIOM_CASES = {
    "module_zero_grad": module_zero_grad,
    "optimizer_zero_grad_in_place": optimizer_zero_grad_in_place,
    "zero_grad_as_modules_once_did": zero_grad_as_modules_once_did,
    "grad_edited": grad_edited,
    "zero_grad_before_any_backward": zero_grad_before_any_backward,
    "frozen_and_unused_parameters": frozen_and_unused_parameters,
    "no_grad_and_enable_grad": under_no_grad_and_enable_grad,
    "retained_grad_accumulates": retained_grad_accumulates,
    "backward_of_a_leaf": backward_of_a_leaf,
    "backward_into_an_input_off_the_graph": backward_into_an_input_off_the_graph,
    "grad_of_data_and_of_grad": grad_of_data_and_of_grad,
    "detached_then_requiring_grad": detached_then_requiring_grad,
    "float64_grad": float64_grad,
    "numpy_of_data": numpy_of_data,
}


@pytest.mark.parametrize("case", IDIOM_CASES)
def test_training_loop_idioms(case):
    assert_same(IDIOM_CASES[case])


# ---- grad_fn: node names and the graph
def functional(T):
    return T.nn.functional


# name: (expression on module T and a (4, 5) leaf m, requiring grad). PyTorch names some
# nodes by how the operation was spelled, where kernelab has one operation, so these differ:
# t() and transpose (kernelab: PermuteBackward0), unsqueeze and squeeze (ViewBackward0),
# max(dim), min(dim), topk and sort (GatherBackward0), std (SqrtBackward0 after VarBackward0).
NAMED_OPS = {
    "add": lambda T, m: m + 1,
    "sub": lambda T, m: m - m,
    "mul": lambda T, m: m * 2,
    "div": lambda T, m: m / 3,
    "neg": lambda T, m: -m,
    "pow": lambda T, m: m**2,
    "exp": lambda T, m: m.exp(),
    "log": lambda T, m: (m.abs() + 1).log(),
    "sqrt": lambda T, m: m.abs().sqrt(),
    "sum": lambda T, m: m.sum(),
    "sum_dim": lambda T, m: m.sum(1),
    "sum_keepdim": lambda T, m: m.sum((0, 1), keepdim=True),
    "mean": lambda T, m: m.mean(),
    "mean_dim": lambda T, m: m.mean(0),
    "mm": lambda T, m: m.mm(m.t()),
    "matmul": lambda T, m: m @ m.t(),
    "relu": lambda T, m: T.relu(m),
    "sigmoid": lambda T, m: m.sigmoid(),
    "tanh": lambda T, m: m.tanh(),
    "softmax": lambda T, m: m.softmax(1),
    "log_softmax": lambda T, m: functional(T).log_softmax(m, 1),
    "leaky_relu": lambda T, m: functional(T).leaky_relu(m, 0.1),
    "view": lambda T, m: m.view(20),
    "reshape": lambda T, m: m.reshape(2, 10),
    "flatten": lambda T, m: m.flatten(),
    "permute": lambda T, m: m.permute(1, 0),
    "cat": lambda T, m: T.cat([m, m]),
    "stack": lambda T, m: T.stack([m, m]),
    "clamp": lambda T, m: m.clamp(-0.5, 0.5),
    "max": lambda T, m: m.max(),
    "min": lambda T, m: m.min(),
    "amax": lambda T, m: m.amax(1),
    "select": lambda T, m: m[1],
    "select_column": lambda T, m: m[:, 1],
    "select_last": lambda T, m: m[..., -1],
    "slice": lambda T, m: m[1:3],
    "slice_then_select": lambda T, m: m[1:3, 2],
    "select_then_slice": lambda T, m: m[1, 2:4],
    "unsqueeze_by_index": lambda T, m: m[None],
    "index_list": lambda T, m: m[[0, 2]],
    "index_mask": lambda T, m: m[m > 0],
    "where": lambda T, m: T.where(m > 0, m, m * 0),
    "var": lambda T, m: m.var(),
    "norm": lambda T, m: m.norm(),
    "double": lambda T, m: m.double(),
    "expand": lambda T, m: m[:1].expand(3, 5),
    "clone": lambda T, m: m.clone(),
    "maximum": lambda T, m: T.maximum(m, m * 2),
    "linear": lambda T, m: functional(T).linear(m, m[:3], m[0, :3]),
    "linear_without_bias": lambda T, m: functional(T).linear(m, m[:3]),
    "mse_loss": lambda T, m: functional(T).mse_loss(m, m.detach() * 0),
    "cross_entropy": lambda T, m: functional(T).cross_entropy(m, T.tensor([1, 2, 0, 4])),
    "nll_loss": lambda T, m: functional(T).nll_loss(m, T.tensor([1, 2, 0, 4])),
    "conv2d": lambda T, m: functional(T).conv2d(m.view(1, 1, 4, 5), m[:2, :4].view(2, 1, 2, 2)),
    "max_pool2d": lambda T, m: functional(T).max_pool2d(m.view(1, 1, 4, 5), 2),
    "avg_pool2d": lambda T, m: functional(T).avg_pool2d(m.view(1, 1, 4, 5), 2),
    "adaptive_avg_pool2d": lambda T, m: functional(T).adaptive_avg_pool2d(m.view(1, 2, 2, 5), 2),
    "global_avg_pool2d": lambda T, m: functional(T).adaptive_avg_pool2d(m.view(1, 2, 2, 5), 1),
    "batch_norm": lambda T, m: functional(T).batch_norm(m, None, None, training=True),
    "dropout": lambda T, m: functional(T).dropout(m, 0.5, training=True),
}


def m_leaf(T):
    array = np.arange(20, dtype=np.float32).reshape(4, 5) / 7 - 1
    return T.tensor(array, requires_grad=True)


@pytest.mark.parametrize("op", NAMED_OPS)
def test_grad_fn_name(op):
    theirs = NAMED_OPS[op](torch, m_leaf(torch)).grad_fn.name()
    assert NAMED_OPS[op](kl, m_leaf(kl)).grad_fn.name() == theirs


def graph(node):
    """``(name, [graph of each next function])``, None where no gradient flows."""
    if node is None:
        return None
    return (node.name(), [graph(child) for child, _ in node.next_functions])


def test_next_functions_walk_the_graph_as_pytorch():
    def build(T):
        x, w = leaf(T), leaf(T, A * 2)
        y = T.relu(x * w + T.ones(3)) - (x / 2).exp()
        return y.sum(), x, w

    (ours, x, w), (theirs, _, _) = build(kl), build(torch)
    assert graph(ours.grad_fn) == graph(theirs.grad_fn)
    node = ours.grad_fn
    for _ in range(4):  # Sum, Sub, Relu, Add, to x * w
        node = node.next_functions[0][0]
    assert node.name() == "MulBackward0"
    assert all(n.variable is t for (n, _), t in zip(node.next_functions, (x, w), strict=True))
    assert [index for _, index in node.next_functions] == [0, 0]
    assert x.grad_fn is None and (x * 2).detach().grad_fn is None


@pytest.mark.skipif(
    not hasattr(kl.nn.utils, "parameters_to_vector"), reason="not in this version of kernelab"
)
def test_parameters_to_vector_and_back():
    def run(T):
        layers = T.nn.Sequential(T.nn.Linear(3, 2), T.nn.Conv2d(1, 2, 2))
        for i, p in enumerate(layers.parameters()):
            p.data.copy_(T.arange(p.numel(), dtype=T.float32).view(p.shape) / (i + 2))
        vector = T.nn.utils.parameters_to_vector(layers.parameters())
        T.nn.utils.vector_to_parameters(vector * 2 + 1, layers.parameters())
        return vector, [p.detach().clone() for p in layers.parameters()]

    assert plain(run(kl)) == plain(run(torch))
