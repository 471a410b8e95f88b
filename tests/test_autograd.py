"""The autograd engine: accumulation, graph recording modes, retained graphs, dtypes kept end
to end, and anomaly detection that names the operation."""

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close

import kernelab as kl
import kernelab.functional as F
from kernelab import nn
from kernelab.autograd import Function

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tensor_used_twice_accumulates_like_pytorch():
    # Residual block y = x + conv(x): x's gradient is the sum over both paths.
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((3, 3, 3, 3)), np.ones(3)
    ours = [kl.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = ours[0] + F.conv2d(ours[0], ours[1], ours[2], padding=1)
    ty = theirs[0] + torch.nn.functional.conv2d(theirs[0], theirs[1], theirs[2], padding=1)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for a, t in zip(ours, theirs, strict=True):
        assert_rel_close(a.grad, t.grad.numpy(), 1e-12, "gradient")


def test_diamond_graph():
    x = kl.tensor([2.0], requires_grad=True)
    a = x * 3
    y = a * a + a.exp() + a  # a reaches y along three paths
    y.backward()
    a_val = 6.0
    np.testing.assert_allclose(x.grad, [3 * (2 * a_val + np.exp(a_val) + 1)], rtol=1e-6)


def test_long_chain_needs_no_recursion():
    x = kl.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + x
    y.backward()
    assert x.grad.tolist() == [5001.0]


def test_no_grad_records_nothing():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    with kl.no_grad():
        y = (x * 2).exp().sum()
        assert not kl.is_grad_enabled()
        with kl.enable_grad():
            z = x * 2
    assert kl.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.node is None
    assert z.requires_grad and z.grad_fn.name() == "MulBackward0"

    @kl.no_grad()
    def infer(t):
        return t * 2

    assert not infer(x).requires_grad
    with kl.inference_mode():
        assert not (x + 1).requires_grad
    with kl.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad


def test_inputs_that_need_no_gradient_get_none():
    x = kl.Tensor(np.ones((1, 1, 4, 4)))
    w = kl.Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    b = kl.Tensor(np.zeros(2))
    F.conv2d(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None
    np.testing.assert_array_equal(w.grad, np.full((2, 1, 3, 3), 4.0))


def test_backward_twice_needs_retain_graph():
    x = kl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()

    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, 3 * 2 * x.array)  # accumulated three times


class Probe(Function):
    """Identity whose backward records the dtype of the gradient passing through."""

    seen: list = []

    @staticmethod
    def forward(ctx, x, name):
        ctx.name = name
        return x

    @staticmethod
    def backward(ctx, g):
        Probe.seen.append((ctx.name, g.dtype))
        return g


def small_cnn(generator=0):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, generator=generator),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding="same", groups=2, generator=generator),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d(2),
        nn.Dropout2d(0.25, generator=generator),
        nn.Flatten(),
        nn.Linear(24, 16, generator=generator),
        nn.Tanh(),
        nn.Dropout(0.25, generator=generator),
        nn.Linear(16, 12, generator=generator),
        nn.Sigmoid(),
        nn.Linear(12, 10, generator=generator),
    )


@pytest.mark.parametrize("dtype", [kl.float32, kl.float64])
@pytest.mark.parametrize("how", ["default_dtype", "to"])
def test_dtype_is_kept_end_to_end(dtype, how):
    if how == "default_dtype":
        kl.set_default_dtype(dtype)
        model = small_cnn()
    else:
        model = small_cnn().to(dtype)
    rng = np.random.default_rng(1)
    x = kl.Tensor(rng.standard_normal((4, 1, 8, 8)).astype(dtype), requires_grad=True)
    target = kl.Tensor(rng.integers(0, 10, 4))
    Probe.seen = []
    h = x
    for i, layer in enumerate(model):
        h = layer(Probe.apply(h, name=f"into layer {i} {layer._short_repr()}"))
        assert h.dtype == dtype, f"layer {i} {layer}: output {h.dtype}"
    for loss in (
        F.cross_entropy(h, target, label_smoothing=0.1),
        F.nll_loss(F.log_softmax(h, dim=1), target),
        F.mse_loss(F.softmax(h, dim=1), kl.Tensor(np.eye(10, dtype=dtype)[target.array])),
    ):
        assert loss.dtype == dtype
        loss.backward(retain_graph=True)
    assert len(Probe.seen) == 3 * len(model)
    for name, seen in Probe.seen:
        assert seen == dtype, f"gradient {name}: {seen}"
    assert x.grad.dtype == dtype
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.dtype.kind == "f":
            assert tensor.dtype == dtype, name
        if tensor.requires_grad:
            assert tensor.grad is not None and tensor.grad.dtype == dtype, name
    model.eval()  # running statistics instead of the batch's, dropout off
    h = x
    for i, layer in enumerate(model):
        h = layer(h)
        assert h.dtype == dtype, f"evaluation, layer {i} {layer}: output {h.dtype}"


def test_detect_anomaly_names_the_operation():
    x = kl.tensor([1.0, -1.0], requires_grad=True)
    with (
        kl.detect_anomaly(),
        pytest.warns(RuntimeWarning),
        pytest.raises(FloatingPointError, match="Log: output 0 holds NaN or Inf"),
    ):
        x.log()
    # The gradient of sqrt at 0 is infinite: caught in the backward, naming Sqrt.
    z = kl.tensor([0.0, 4.0], requires_grad=True)
    with kl.detect_anomaly():
        y = z.sqrt().sum()
        with (
            pytest.warns(RuntimeWarning),
            pytest.raises(FloatingPointError, match="Sqrt: gradient 0 holds NaN or Inf"),
        ):
            y.backward()
    with kl.detect_anomaly(), pytest.raises(FloatingPointError, match="Conv2d: input 0"):
        w = kl.Tensor(np.ones((1, 1, 2, 2)))
        F.conv2d(kl.Tensor(np.full((1, 1, 3, 3), np.nan)), w)
    overflow = pytest.warns(RuntimeWarning, match="overflow")
    with kl.detect_anomaly(), overflow, pytest.raises(FloatingPointError, match="Sum: output 0"):
        kl.Tensor(np.array([1e308, 1e308])).sum()


def test_without_detect_anomaly_nan_flows_silently():
    with np.errstate(invalid="ignore"):
        y = kl.tensor([-1.0]).log() * 2
    assert np.isnan(y.item())
    kl.set_detect_anomaly(True)
    try:
        with pytest.raises(FloatingPointError):
            kl.tensor([np.inf]) * 2
    finally:
        kl.set_detect_anomaly(False)


# ---- a leaf keeps a gradient nothing else holds, and copies every other
def test_leaves_fed_one_array_get_gradients_of_their_own():
    """c = a + b passes one array to both leaves: each .grad must be its own."""
    a, b = kl.randn(3, 4, requires_grad=True), kl.randn(3, 4, requires_grad=True)
    c = a + b
    (c * c).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    expected = 2 * (a.array + b.array)
    a.grad.array[...] = 7
    np.testing.assert_allclose(b.grad.array, expected, rtol=1e-6)


def test_a_gradient_passed_straight_from_the_seed_is_copied():
    x = kl.randn(5, requires_grad=True)
    seed = kl.ones(5)
    (x + 1).backward(seed)
    seed.array[...] = 3
    np.testing.assert_array_equal(x.grad.array, np.ones(5, np.float32))


def test_a_gradient_a_hook_was_handed_is_copied():
    x = kl.randn(2, 3, requires_grad=True)
    seen = []
    x.register_hook(seen.append)
    F.relu(x * 3).sum().backward()
    x.grad.array[...] = -1
    assert not np.shares_memory(seen[0].array, x.grad.array)
    np.testing.assert_array_equal(seen[0].array, np.where(x.array * 3 > 0, 3, 0))


def test_an_array_a_users_function_returns_is_copied():
    kept = []

    class Kept(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            kept.append(np.full_like(g, 2.0))
            return kept[-1]

    x = kl.randn(4, requires_grad=True)
    Kept.apply(x).sum().backward()
    assert not np.shares_memory(kept[0], x.grad.array)


def test_owned_gradients_equal_pytorchs_over_repeated_steps():
    """A small network's leaves, their .grad set to None between steps, against PyTorch."""
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3)
    ).double()
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).double()
    model.load_state_dict({k: kl.tensor(v.numpy()) for k, v in torch_model.state_dict().items()})
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((5, 2, 6, 6))
        xk, xt = kl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        model.zero_grad()
        torch_model.zero_grad()
        (model(xk) ** 2).sum().backward()
        (torch_model(xt) ** 2).sum().backward()
        np.testing.assert_allclose(xk.grad.array, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for (_, p), q in zip(model.named_parameters(), torch_model.parameters(), strict=True):
            np.testing.assert_allclose(p.grad.array, q.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_one_new_array_returned_for_two_inputs_is_no_ones_own():
    """The guard itself: a built-in backward's array counts as new for one input only."""
    from types import SimpleNamespace

    from kernelab.autograd import fresh
    from kernelab.functional.arithmetic import Add

    g, made = np.ones(3), np.zeros(3)
    node = SimpleNamespace(function=Add, ctx=SimpleNamespace(kept=np.ones(2)))
    assert fresh(node, g, made, (made, None))
    assert not fresh(node, g, made, (made, made))
    assert not fresh(node, g, g, (g, None))
    assert not fresh(node, g, made[1:], (made[1:], None))
    assert not fresh(node, g, node.ctx.kept, (node.ctx.kept,))


def test_views_count_by_the_memory_they_show():
    """A reshaped new array is new; a slice, a transpose, or two views of one are not."""
    from types import SimpleNamespace

    from kernelab.autograd import fresh
    from kernelab.functional.arithmetic import Add

    g, made = np.ones(6), np.zeros(6)
    node = SimpleNamespace(function=Add, ctx=SimpleNamespace(kept=made[:2]))
    flat = np.arange(6.0)
    assert fresh(node, g, flat.reshape(2, 3), (flat.reshape(2, 3),))
    assert not fresh(node, g, flat[:3], (flat[:3],))
    assert not fresh(node, g, flat.reshape(2, 3).T, (flat.reshape(2, 3).T,))  # kept C-ordered
    assert not fresh(node, g, g.reshape(3, 2), (g.reshape(3, 2),))
    first, second = flat[:3].reshape(3), flat.reshape(2, 3)
    assert not fresh(node, g, second, (first, second))
    assert not fresh(node, g, made.reshape(2, 3), (made.reshape(2, 3),))


def test_a_view_of_new_memory_is_summed_into_but_not_kept():
    """A channel-major view of new memory takes a second gradient in place; the inside of a
    padded array, a broadcast, an overlapping view or a user's array does not."""
    from types import SimpleNamespace

    from kernelab.autograd import KEPT, NOT_OWNED, SUMMED_INTO, Function, ownership
    from kernelab.functional.arithmetic import Add

    g = np.ones((2, 3, 4, 4))
    node = SimpleNamespace(function=Add, ctx=SimpleNamespace())
    channel_major = np.zeros((3, 2, 4, 4)).transpose(1, 0, 2, 3)
    inside = np.zeros((2, 3, 6, 6))[:, :, 1:5, 1:5]
    broadcast = np.broadcast_to(np.zeros((1, 3, 4, 4)), g.shape)
    overlapping = np.lib.stride_tricks.as_strided(np.zeros(40), g.shape, (8, 8, 8, 8))
    for ig, expected in (
        (np.zeros(g.shape), KEPT),
        (channel_major, SUMMED_INTO),
        (inside, NOT_OWNED),
        (broadcast, NOT_OWNED),
        (overlapping, NOT_OWNED),
    ):
        assert ownership(node, g, ig, (ig, None)) == expected
    user = SimpleNamespace(function=type("Mine", (Function,), {}), ctx=node.ctx)
    assert ownership(user, g, channel_major, (channel_major,)) == NOT_OWNED


def test_residual_sums_through_channel_major_gradients_equal_pytorchs():
    """A block's input reaches a convolution and the shortcut: its two gradients are summed
    into the convolution's (a view), in either order, as PyTorch sums them."""
    torch.manual_seed(0)
    convs = [torch.nn.Conv2d(3, 3, 3, padding=1).double() for _ in range(2)]
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 5))
    xk, xt = kl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mine = [nn.Conv2d(3, 3, 3, padding=1).double() for _ in range(2)]
    for m, c in zip(mine, convs, strict=True):
        m.load_state_dict({k: kl.tensor(v.detach().numpy()) for k, v in c.state_dict().items()})
    for v, (first, second) in ((xk, mine), (xt, convs)):
        h = first(v.exp())
        ((second(h) + h) * (h + second(h))).sum().backward()
    np.testing.assert_allclose(xk.grad.array, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_leaf_used_by_many_operations_sums_their_gradients_like_pytorch():
    rng = np.random.default_rng(3)
    x, a, b = (rng.standard_normal((4, 5)) for _ in range(3))
    xk, xt = kl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for v, lib in ((xk, kl), (xt, torch)):
        h = v * lib.tensor(a) + lib.tanh(v) * lib.tensor(b) + v.exp() + v * v
        (h * h).sum().backward()
    np.testing.assert_allclose(xk.grad.array, xt.grad.numpy(), rtol=1e-12)


def test_a_sum_into_new_memory_is_laid_out_as_its_tensor():
    """Two gradients neither of which may be summed into (the inside of a padded array, one
    passed through) make a new array in the tensor's memory order, the leaf's C-ordered."""
    from kernelab.autograd import Function

    class Inside(Function):  # a built-in-like op whose gradient is a padded array's inside
        __module__ = "kernelab.functional.shape"

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            padded = np.zeros(g.shape[:2] + (g.shape[2] + 2, g.shape[3] + 2), g.dtype)
            padded[:, :, 1:-1, 1:-1] = 2 * g
            return padded[:, :, 1:-1, 1:-1]

    x = np.random.default_rng(1).standard_normal((3, 2, 4, 5))
    channel_major = kl.tensor(np.ascontiguousarray(x.transpose(1, 0, 2, 3)))
    leaf = kl.tensor(x, requires_grad=True)
    (Inside.apply(leaf) + leaf).sum().backward()
    np.testing.assert_array_equal(leaf.grad.array, np.full(x.shape, 3.0))
    assert leaf.grad.array.flags.c_contiguous
    start = channel_major.permute(1, 0, 2, 3).requires_grad_()
    inner, seen = start * 1, []
    inner.register_hook(lambda g: seen.append(g.array.strides))
    (Inside.apply(inner) + inner).sum().backward()
    np.testing.assert_array_equal(start.grad.array, np.full(x.shape, 3.0))
    assert seen == [np.empty_like(channel_major.array.transpose(1, 0, 2, 3)).strides]


def test_a_copied_leaf_gradient_is_laid_out_as_its_tensor():
    """A backward's transposed view becomes a .grad in the leaf's own (C) order, as
    PyTorch's; a transposed leaf gets its gradient transposed alike."""
    x = np.random.default_rng(2).standard_normal((3, 4))
    a = kl.tensor(x, requires_grad=True)
    (a.T * 2).sum().backward()
    b_t = kl.tensor(np.ascontiguousarray(x.T)).T.requires_grad_()  # a transposed leaf
    (b_t * 2).sum().backward()
    assert a.grad.array.flags.c_contiguous and b_t.grad.array.flags.f_contiguous
    np.testing.assert_array_equal(a.grad.array, np.full(x.shape, 2.0))
    np.testing.assert_array_equal(b_t.grad.array, np.full(x.shape, 2.0))
