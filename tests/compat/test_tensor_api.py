"""The tensor surface a CNN script touches, against PyTorch: each case is one expression run on
both engines (``T`` is ``torch`` or ``kernelab``), comparing values, dtypes (indices int64),
shapes, result types ((values, indices) named tuples, Python numbers) and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# name: (shape, dtype kind) of the inputs a case takes; float inputs require grad
INPUTS = {
    "x": ((3, 4), "float32"),
    "y": ((3, 4), "float32"),
    "p": ((3, 4), "positive"),
    "t": ((3, 4), "ties"),
    "x64": ((3, 4), "float64"),
    "x4": ((2, 3, 4, 5), "float32"),
    "s": ((1, 3, 1, 4), "float32"),
    "c": ((3, 1), "float32"),
    "w": ((4, 5), "float32"),
    "b3": ((2, 3, 4), "float32"),
    "b3w": ((2, 4, 5), "float32"),
    "i": ((3, 4), "int64"),
    "m": ((3, 4), "bool"),
    "v": ((5,), "float32"),
}


def make_array(name: str, rng: np.random.Generator) -> np.ndarray:
    shape, kind = INPUTS[name]
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if kind == "ties":  # repeated values: max and amax differ in where the gradient goes
        return rng.integers(0, 3, shape).astype(np.float32)
    if kind == "int64":
        return rng.integers(-3, 4, shape)
    if kind == "bool":
        return rng.random(shape) > 0.5
    return rng.standard_normal(shape).astype(kind)


# (id, expression on module T and the inputs, input names)
CASES = [
    # what a tensor is
    ("size", lambda T, x: x.size(), "x"),
    ("size_dim", lambda T, x: x.size(1), "x"),
    ("shape", lambda T, x: tuple(x.shape), "x"),
    ("dim", lambda T, x: x.dim(), "x"),
    ("numel", lambda T, x: x.numel(), "x"),
    ("item", lambda T, x: x[1, 2].item(), "x"),
    ("tolist", lambda T, x: x.tolist(), "i"),
    ("numpy", lambda T, x: x.detach().numpy(), "x"),
    ("len", lambda T, x: len(x), "x"),
    ("is_floating_point", lambda T, x, i: (x.is_floating_point(), i.is_floating_point()), "xi"),
    ("format", lambda T, x: f"{x.sum():.3f}", "x"),
    ("iterate", lambda T, x: [row.sum() for row in x], "x"),
    ("int_index", lambda T, x, i: x[0, i[0, 0] % 4], "xi"),
    # dtype and device conversions
    ("float", lambda T, x: x.float(), "x64"),
    ("double", lambda T, x: x.double(), "x"),
    ("long", lambda T, x: x.long(), "x"),
    ("int", lambda T, x: x.int(), "x"),
    ("bool", lambda T, x: x.bool(), "i"),
    ("long_to_float", lambda T, i: i.float(), "i"),
    ("to_dtype", lambda T, x: x.to(T.float64), "x"),
    ("to_device", lambda T, x: x.to("cpu"), "x"),
    ("to_both", lambda T, x: x.to(device=T.device("cpu"), dtype=T.float64), "x"),
    ("to_other", lambda T, x, y: x.to(y), "x64 y"),
    ("cpu", lambda T, x: x.cpu(), "x"),
    ("type", lambda T, x, i: (x.type(), i.type(), x.type(T.float64)), "xi"),
    ("type_as", lambda T, i, x: i.type_as(x), "ix"),
    ("clone", lambda T, x: x.clone() * 2, "x"),
    ("contiguous", lambda T, x: x.t().contiguous(), "x"),
    ("new_zeros", lambda T, x: x.new_zeros(2, 3), "x"),
    ("new_full", lambda T, i: i.new_full((2,), 7), "i"),
    ("new_tensor", lambda T, i: i.new_tensor([1.5, 2.5]), "i"),
    ("default_dtype", lambda T: T.ones(1).dtype == T.get_default_dtype() == T.float32, ""),
    ("dtype_names", lambda T: [T.float, T.double, T.long, T.int, T.bool, T.half], ""),
    # shapes
    ("view", lambda T, x: x.view(12), "x"),
    ("view_infer", lambda T, x: x.view(-1, 2), "x"),
    ("view_tuple", lambda T, x: x.view((2, 6)), "x"),
    ("view_as", lambda T, x, w: x.view(2, 6).view_as(x), "xw"),
    ("reshape", lambda T, x: x.reshape(4, 3), "x"),
    ("flatten", lambda T, x: x.flatten(), "x4"),
    ("flatten_1", lambda T, x: x.flatten(1), "x4"),
    ("flatten_range", lambda T, x: x.flatten(1, 2), "x4"),
    ("permute", lambda T, x: x.permute(0, 2, 3, 1), "x4"),
    ("transpose", lambda T, x: x.transpose(0, 1), "x"),
    ("t", lambda T, x: x.t(), "x"),
    ("T", lambda T, x: x.T, "x"),
    ("squeeze", lambda T, s: s.squeeze(), "s"),
    ("squeeze_0", lambda T, s: s.squeeze(0), "s"),
    ("squeeze_noop", lambda T, s: s.squeeze(1), "s"),
    ("squeeze_neg", lambda T, s: s.squeeze(-2), "s"),
    ("squeeze_tuple", lambda T, s: s.squeeze((0, 2)), "s"),
    ("unsqueeze", lambda T, x: x.unsqueeze(0), "x"),
    ("unsqueeze_mid", lambda T, x: x.unsqueeze(1), "x"),
    ("unsqueeze_neg", lambda T, x: x.unsqueeze(-1), "x"),
    ("expand", lambda T, c: c.expand(3, 5), "c"),
    ("expand_keep", lambda T, c: c.expand(2, -1, 4), "c"),
    ("expand_as", lambda T, c, x: c.expand_as(x), "cx"),
    ("repeat", lambda T, x: x.repeat(2, 1), "x"),
    ("repeat_lead", lambda T, c: c.repeat(2, 1, 3), "c"),
    # indexing
    ("index_int", lambda T, x: x[1], "x"),
    ("index_slice", lambda T, x: x[:, 1:3], "x"),
    ("index_ellipsis", lambda T, x: x[..., None], "x"),
    ("index_list", lambda T, x: x[[0, 2, 0]], "x"),
    ("index_tensor", lambda T, x: x[:, T.tensor([3, 0, 3])], "x"),
    ("index_mask", lambda T, x, m: x[m], "xm"),
    ("index_condition", lambda T, x: x[x > 0], "x"),
    # reductions and their indices
    ("argmax", lambda T, x: x.argmax(), "x"),
    ("argmax_dim", lambda T, x: x.argmax(1), "x"),
    ("argmax_keepdim", lambda T, x: x.argmax(dim=0, keepdim=True), "x"),
    ("argmin_dim", lambda T, x: x.argmin(1), "x"),
    ("argmax_ties", lambda T, t: (t.argmax(1), t.argmin(0)), "t"),
    ("max", lambda T, x: x.max(), "x"),
    ("max_ties", lambda T, t: t.max(), "t"),
    ("min_ties", lambda T, t: t.min(), "t"),
    ("max_dim", lambda T, x: x.max(1), "x"),
    ("max_dim_ties", lambda T, t: t.max(1), "t"),
    ("max_keepdim", lambda T, x: x.max(dim=0, keepdim=True), "x"),
    ("max_unpack", lambda T, x: x.max(1)[1], "x"),
    ("min_dim", lambda T, x: x.min(0), "x"),
    ("min_dim_ties", lambda T, t: t.min(dim=1), "t"),
    ("max_pair", lambda T, x, y: T.max(x, y), "xy"),
    ("max_of_ints", lambda T, i: (i.max(), i.max(0)), "i"),
    ("amax", lambda T, t: t.amax(1), "t"),
    ("amin_all", lambda T, t: t.amin((0, 1)), "t"),
    ("norm", lambda T, x: (x.norm(), x.norm(2, dim=1), x.norm(p="fro", dim=(0, 1))), "x"),
    ("norm_p", lambda T, x: (x.norm(1), x.norm(3, dim=0, keepdim=True)), "x"),
    ("norm_inf_ties", lambda T, t: (t.norm(float("inf")), t.norm(float("inf"), dim=1)), "t"),
    ("sum", lambda T, x: x.sum(), "x"),
    ("sum_dim", lambda T, x: x.sum(1), "x"),
    ("sum_dims", lambda T, x: x.sum((0, 2)), "x4"),
    ("sum_keepdim", lambda T, x: x.sum(dim=1, keepdim=True), "x"),
    ("sum_bool", lambda T, m: m.sum(), "m"),
    ("sum_dtype", lambda T, i: i.sum(dtype=T.float32), "i"),
    ("mean", lambda T, x: x.mean(), "x"),
    ("mean_dim", lambda T, x: x.mean(-1, keepdim=True), "x"),
    ("mean_dims", lambda T, x: x.mean(dim=(2, 3)), "x4"),
    ("std", lambda T, x: x.std(), "x"),
    ("std_dim", lambda T, x: x.std(1), "x"),
    ("std_biased", lambda T, x: x.std(0, unbiased=False), "x"),
    ("std_correction", lambda T, x: x.std(dim=1, correction=0, keepdim=True), "x"),
    ("var", lambda T, x: x.var(), "x"),
    ("var_keepdim", lambda T, x: x.var(1, keepdim=True), "x"),
    ("var_positional", lambda T, x: x.var(0, False), "x"),
    ("var_unbiased_first", lambda T, x: x.var(False), "x"),
    ("var_dims", lambda T, x: x.var(dim=(0, 2, 3)), "x4"),
    ("topk", lambda T, x: x.topk(2), "x"),
    ("topk_smallest", lambda T, x: x.topk(2, dim=0, largest=False), "x"),
    ("sort", lambda T, x: x.sort(1), "x"),
    ("sort_descending", lambda T, x: x.sort(dim=0, descending=True), "x"),
    ("argsort", lambda T, x: x.argsort(1), "x"),
    ("any_all", lambda T, m: (m.any(), m.all(), m.any(1), m.all(dim=0)), "m"),
    # element-wise maths
    ("abs", lambda T, x: x.abs(), "x"),
    ("abs_builtin", lambda T, x: abs(x), "x"),
    ("exp", lambda T, x: x.exp(), "x"),
    ("log", lambda T, p: p.log(), "p"),
    ("sqrt", lambda T, p: p.sqrt(), "p"),
    ("pow", lambda T, x: x.pow(2), "x"),
    ("pow_tensor", lambda T, p, x: p.pow(x), "px"),
    ("pow_operator", lambda T, p: (p**3, 2**p, p**0.5), "p"),
    ("neg", lambda T, x: (x.neg(), -x), "x"),
    ("clamp", lambda T, x: x.clamp(-0.5, 0.5), "x"),
    ("clamp_min", lambda T, x: x.clamp(min=0), "x"),
    ("clamp_max", lambda T, x: x.clamp(max=0.2), "x"),
    ("clamp_ends", lambda T, t: t.clamp(0, 1), "t"),
    ("clip", lambda T, x: x.clip(-1, 1), "x"),
    ("clamp_int", lambda T, i: i.clamp(min=0), "i"),
    ("maximum_ties", lambda T, a, b: a.maximum(b), "t t"),
    ("minimum", lambda T, x, y: x.minimum(y), "xy"),
    ("add_alpha", lambda T, x, y: x.add(y, alpha=2), "xy"),
    ("sub_alpha", lambda T, x, y: x.sub(y, alpha=0.5), "xy"),
    ("mul_div", lambda T, x, p: (x.mul(p), x.div(p)), "xp"),
    ("relu", lambda T, x: x.relu(), "x"),
    ("sigmoid", lambda T, x: x.sigmoid(), "x"),
    ("tanh", lambda T, x: x.tanh(), "x"),
    ("softmax", lambda T, x: x.softmax(1), "x"),
    ("log_softmax", lambda T, x: x.log_softmax(dim=0), "x"),
    ("masked_fill", lambda T, x, m: x.masked_fill(m, 0.0), "xm"),
    ("where_method", lambda T, x, m, y: x.where(m, y), "xmy"),
    ("matmul", lambda T, x, w: x.matmul(w), "xw"),
    ("mm", lambda T, x, w: x.mm(w), "xw"),
    ("bmm", lambda T, a, b: a.bmm(b), "b3 b3w"),
    ("matmul_operator", lambda T, a, w: a @ w, "b3 w"),
    # comparisons and logic
    ("eq", lambda T, t: t.eq(1), "t"),
    ("ne_lt_gt", lambda T, x, y: (x.ne(y), x.lt(y), x.gt(y), x.le(0), x.ge(0)), "xy"),
    ("operators", lambda T, x, y: (x == y, x != 0.5, x < y, x <= y, x > 0, x >= y), "xy"),
    (
        "logic",
        lambda T, x, y: ((x > 0) & (y > 0), (x > 0) | (y > 0), ~(x > 0), (x > 0) ^ (y > 0)),
        "xy",
    ),
    ("eq_count", lambda T, i: i.eq(i.view_as(i)).sum().item(), "i"),
    ("accuracy", lambda T, x, i: (x.argmax(1) == i[:, 0]).float().mean(), "xi"),
    ("floordiv_mod", lambda T, i: (i // 2, i % 3), "i"),
    # type promotion as PyTorch
    ("int_true_division", lambda T, i: i / 2, "i"),
    ("int_times_float", lambda T, i: i * 1.5, "i"),
    ("int_plus_int", lambda T, i: i + 1, "i"),
    ("bool_plus_int", lambda T, m: m + 1, "m"),
    ("numpy_scalar", lambda T, x: x * np.float64(2.0), "x"),
    ("zero_dim_double", lambda T, x: x + T.tensor(1.0, dtype=T.float64), "x"),
    ("int_plus_zero_dim_double", lambda T, i: i + T.tensor(1.5, dtype=T.float64), "i"),
    ("float_plus_double", lambda T, x, y: x + y, "x x64"),
    ("int_and_float_tensors", lambda T, i, x: (i + x, i * x, x - i), "ix"),
    # functions
    ("cat", lambda T, x, y: T.cat([x, y]), "xy"),
    ("cat_dim", lambda T, x, y: T.cat((x, y), dim=1), "xy"),
    ("cat_neg", lambda T, x, c: T.cat([x, c], -1), "xc"),
    ("cat_dtypes", lambda T, x, y: T.cat([x, y]), "x x64"),
    ("stack", lambda T, x, y: T.stack([x, y]), "xy"),
    ("stack_dim", lambda T, x, y: T.stack([x, y], dim=2), "xy"),
    ("stack_neg", lambda T, x, y: T.stack([x, y], -1), "xy"),
    ("flatten_fn", lambda T, x: T.flatten(x, 1), "x4"),
    ("squeeze_fn", lambda T, s: (T.squeeze(s), T.unsqueeze(s, 0)), "s"),
    ("where", lambda T, x, y: T.where(x > 0, x, y), "xy"),
    ("where_scalar", lambda T, x: T.where(x > 0, x, 0.0), "x"),
    ("where_scalars", lambda T, x: T.where(x > 0, 1.0, -1.0), "x"),
    ("where_broadcast", lambda T, x, c: T.where(x > 0, c, x), "xc"),
    ("where_indices", lambda T, m: T.where(m), "m"),
    ("allclose", lambda T, x, y: (T.allclose(x, y), T.allclose(x, x + 1e-9)), "xy"),
    ("equal", lambda T, x, y: (T.equal(x, x), T.equal(x, y)), "xy"),
    ("numel_fn", lambda T, x: T.numel(x), "x4"),
    ("is_tensor", lambda T, x: (T.is_tensor(x), T.is_tensor(x.tolist())), "x"),
    ("max_fn", lambda T, x: (T.max(x), T.max(x, 1), T.max(x, dim=0, keepdim=True)), "x"),
    ("min_fn", lambda T, x: (T.min(x), T.min(x, 1)), "x"),
    ("max_of_data", lambda T, x: T.max(x.data, 1), "x"),
    ("argmax_fn", lambda T, x: (T.argmax(x), T.argmax(x, 1), T.argmin(x, dim=0)), "x"),
    ("sum_mean_fn", lambda T, x: (T.sum(x, 0), T.mean(x), T.mean(x, (0, 1))), "x"),
    ("std_var_fn", lambda T, x: (T.std(x, 0), T.var(x), T.var(x, 1, keepdim=True)), "x"),
    ("topk_fn", lambda T, x: T.topk(x, 3, dim=1), "x"),
    ("sort_fn", lambda T, x: (T.sort(x, 0), T.argsort(x, dim=1, descending=True)), "x"),
    ("amax_fn", lambda T, t: (T.amax(t, 0), T.amin(t, 1)), "t"),
    ("unary_fn", lambda T, p: (T.exp(p), T.log(p), T.abs(p), T.sqrt(p), T.neg(p)), "p"),
    ("pow_fn", lambda T, p: (T.pow(p, 2), T.pow(2, p)), "p"),
    ("clamp_fn", lambda T, x: (T.clamp(x, -0.1, 0.1), T.clip(x, min=0)), "x"),
    ("activation_fn", lambda T, x: (T.relu(x), T.sigmoid(x), T.tanh(x)), "x"),
    ("softmax_fn", lambda T, x: (T.softmax(x, 1), T.log_softmax(x, dim=0)), "x"),
    ("matmul_fn", lambda T, x, w: (T.matmul(x, w), T.mm(x, w)), "xw"),
    ("bmm_fn", lambda T, a, b: T.bmm(a, b), "b3 b3w"),
    ("arithmetic_fn", lambda T, x, y: (T.add(x, y, alpha=3), T.sub(x, y), T.mul(x, 2)), "xy"),
    ("div_fn", lambda T, x, p: T.div(x, p), "xp"),
    ("maximum_fn", lambda T, x, y: (T.maximum(x, y), T.minimum(x, y)), "xy"),
    ("compare_fn", lambda T, x, y: (T.eq(x, y), T.ne(x, y), T.lt(x, y), T.ge(x, 0)), "xy"),
    (
        "shape_fn",
        lambda T, x: (T.transpose(x, 0, 1), T.permute(x, (1, 0)), T.reshape(x, (2, 6))),
        "x",
    ),
    ("clone_fn", lambda T, x: T.clone(x), "x"),
    ("any_all_fn", lambda T, m: (T.any(m), T.all(m)), "m"),
    # creation
    ("zeros", lambda T: (T.zeros(2, 3), T.zeros((2, 3), dtype=T.float64)), ""),
    ("ones", lambda T: (T.ones(4), T.ones([2, 2], dtype=T.int64)), ""),
    ("full", lambda T: (T.full((2, 2), 7), T.full((2,), 1.5), T.full([1], True)), ""),
    ("arange", lambda T: (T.arange(5), T.arange(1, 4), T.arange(10, 0, -3)), ""),
    ("arange_float", lambda T: (T.arange(0, 1, 0.1), T.arange(1.5, 4), T.arange(4.0)), ""),
    ("arange_dtype", lambda T: T.arange(3, dtype=T.float32), ""),
    ("linspace", lambda T: (T.linspace(0, 1, 7), T.linspace(-2, 3, 50), T.linspace(1, 1, 1)), ""),
    ("eye", lambda T: (T.eye(3), T.eye(2, 3)), ""),
    ("tensor", lambda T: (T.tensor([1, 2]), T.tensor([[1.5]]), T.tensor(True), T.tensor(3)), ""),
    ("tensor_dtype", lambda T: T.tensor([1, 2], dtype=T.float64), ""),
    ("tensor_of_tensors", lambda T, x: T.tensor([x[0, 0].item(), x[1, 1].item()]), "x"),
    ("as_tensor", lambda T: T.as_tensor([1, 2], dtype=T.float32), ""),
    ("from_numpy", lambda T: T.from_numpy(np.arange(4.0)), ""),
    ("like", lambda T, x: (T.zeros_like(x), T.ones_like(x, dtype=T.int64), T.full_like(x, 2)), "x"),
    ("like_int", lambda T, i: (T.zeros_like(i), T.full_like(i, 3), T.ones_like(i)), "i"),
    (
        "empty_shape",
        lambda T: (tuple(T.empty(2, 3).shape), T.empty(1).dtype, T.empty_like(T.ones(2)).shape),
        "",
    ),
    ("no_grad", lambda T, x: _under_no_grad(T, x), "x"),
    ("inference_mode", lambda T, x: _under_inference_mode(T, x), "x"),
    ("detach", lambda T, x: (x.detach().requires_grad, x.requires_grad_(False).requires_grad), "x"),
]


def _under_no_grad(T, x):
    with T.no_grad():
        y = x * 2
    return y.requires_grad, y


def _under_inference_mode(T, x):
    with T.inference_mode():
        y = x.exp()
    return y.requires_grad


def _tensors(out, engine: str):
    """The tensors in a result, in order, after checking the result's structure."""
    Tensor = torch.Tensor if engine == "torch" else kl.Tensor
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item, engine)]
    return []


def _structure(out, engine: str):
    """The result's shape as a comparable value: types, named fields, and plain values."""
    Tensor = torch.Tensor if engine == "torch" else kl.Tensor
    if isinstance(out, Tensor):
        return "tensor"
    if isinstance(out, (tuple, list)) and hasattr(out, "values") and hasattr(out, "indices"):
        return (type(out).__name__, "values, indices", _structure(tuple(out), engine))
    if isinstance(out, (tuple, list)):  # torch.Size is a tuple
        kind = "list" if isinstance(out, list) else "tuple"
        return (kind, tuple(_structure(item, engine) for item in out))
    if isinstance(out, np.ndarray):
        return ("ndarray", out.dtype.name, out.tolist())
    if engine == "torch" and isinstance(out, torch.dtype):
        return torch.empty(0, dtype=out).numpy().dtype.name
    if isinstance(out, np.dtype):
        return out.name
    return (type(out).__name__, out)


def _array(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.array


def run(engine: str, fn, names: list[str], seed: int):
    T = torch if engine == "torch" else kl
    rng = np.random.default_rng(seed)
    arrays = [make_array(name, rng) for name in names]
    inputs = [T.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(T, *inputs)
    tensors = _tensors(out, engine)
    weighted = [t for t in tensors if t.requires_grad]
    grads = []
    if weighted:
        weights = np.random.default_rng(seed + 1)
        total = sum(
            (t * T.tensor(weights.standard_normal(tuple(t.shape)).astype(_array(t).dtype))).sum()
            for t in weighted
        )
        total.backward()
        grads = [x.grad for x in inputs if x.requires_grad]
    return out, tensors, grads


def _names(spec: str) -> list[str]:
    return spec.split() if " " in spec else [n for n in spec if n] if spec not in INPUTS else [spec]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_pytorch(case):
    _, fn, spec = case
    names = _names(spec)
    theirs, their_tensors, their_grads = run("torch", fn, names, seed=3)
    ours, our_tensors, our_grads = run("kernelab", fn, names, seed=3)
    assert _structure(ours, "kernelab") == _structure(theirs, "torch")
    assert len(our_tensors) == len(their_tensors)
    for mine, their in zip(our_tensors, their_tensors, strict=True):
        a, b = _array(mine), _array(their)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        assert mine.requires_grad == their.requires_grad
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
    assert len(our_grads) == len(their_grads)
    for mine, their in zip(our_grads, their_grads, strict=True):
        assert (mine is None) == (their is None)
        if their is not None:
            assert mine.dtype == their.numpy().dtype
            np.testing.assert_allclose(mine, their.numpy(), rtol=1e-5, atol=1e-6)
