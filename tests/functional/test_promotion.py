"""PyTorch's result dtypes, swept: every op and loss on every pair of dtypes (bool, uint8, int8,
int32, int64, float32, float64), with operands as n-d tensors, 0-d tensors and Python numbers.

Each case runs in PyTorch and in kernelab on the same values. They must agree on the result's
dtype and values, or both refuse the combination (with an error of PyTorch's class: a
RuntimeError where PyTorch raises one). A case PyTorch rejects with a TypeError is a wrong
argument type (``torch.maximum(x, 2)``), not a dtype question, and is skipped. A test loops over
the dtype pairs and reports every mismatch at once, which keeps the sweep fast.
"""

import itertools
import operator

import numpy as np
import pytest
import torch

import kernelab as kl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float32", "float64"]
FLOATS = ["float32", "float64"]
PAIRS = list(itertools.product(DTYPES, DTYPES))

# the left operand mixes values; the right one is never zero, so // and % are defined
VALUES = {
    "a": (np.array([[1, 2, 3], [3, 0, 2]]), 3),
    "b": (np.array([[2, 1, 1], [3, 2, 1]]), 2),
}
PYTHON = {"b": True, "u": 2, "i": 2, "f": 2.5}  # a Python number of each dtype's category
KINDS = [("nd", "nd"), ("nd", "0d"), ("0d", "nd"), ("0d", "0d"), ("nd", "py"), ("py", "nd")]
KINDS += [("0d", "py"), ("py", "0d")]


def array(dtype: str, role: str = "a", kind: str = "nd") -> np.ndarray:
    values, scalar = VALUES[role]
    return np.asarray(values if kind == "nd" else scalar).astype(dtype)


def operand(lib, dtype: str, kind: str, role: str, requires_grad: bool = False):
    """An operand for ``lib`` (torch or kernelab): a tensor (n-d or 0-d) or a Python number."""
    if kind == "py":
        return PYTHON[np.dtype(dtype).kind]
    return tensor(lib, array(dtype, role, kind), requires_grad)


def tensor(lib, values: np.ndarray, requires_grad: bool = False):
    if lib is torch:
        return torch.from_numpy(values.copy()).requires_grad_(requires_grad)
    return kl.tensor(values.copy(), requires_grad=requires_grad)


def run(fn, *args):
    """``(result, None)`` or ``(None, error)``."""
    try:
        return fn(*args), None
    except Exception as error:  # noqa: BLE001  (any refusal counts; its class is checked)
        return None, error


def dtype_name(result) -> str:
    dtypes = [r.dtype for r in result] if isinstance(result, tuple) else [result.dtype]
    return ", ".join(str(d).removeprefix("torch.") for d in dtypes)


def mismatch(case: str, theirs, ours) -> str | None:
    """How kernelab's outcome differs from PyTorch's, or None if it does not."""
    (expected, torch_error), (got, error) = theirs, ours
    if torch_error is not None and error is not None:
        family = RuntimeError if isinstance(torch_error, RuntimeError) else type(torch_error)
        if isinstance(error, family):
            return None
        return f"{case}: raised {error!r}, torch raised {type(torch_error).__name__}"
    if torch_error is not None:
        return f"{case}: gave {dtype_name(got)}, torch raised {torch_error!r}"
    if error is not None:
        return f"{case}: raised {error!r}, torch gave {dtype_name(expected)}"
    if isinstance(expected, tuple):  # a result and gradients, or values and indices
        if len(got) != len(expected):
            return f"{case}: gave {len(got)} results, torch {len(expected)}"
        parts = enumerate(zip(expected, got, strict=True))
        found = [mismatch(f"{case} (result {i})", (e, None), (g, None)) for i, (e, g) in parts]
        return next((f for f in found if f), None)
    want = str(expected.dtype).removeprefix("torch.")
    if str(got.dtype) != want:
        return f"{case}: gave {got.dtype}, torch gives {want}"
    values = expected.detach().numpy()
    # float32 tolerance throughout: a float64 result may come from float32 steps (a loss)
    if not np.allclose(np.asarray(got.array), values, rtol=1e-5, atol=1e-6, equal_nan=True):
        return f"{case}: values {np.asarray(got.array)} differ from torch's {values}"
    return None


def check(cases, exempt=()) -> None:
    """Run ``(name, fn, torch_args, kernelab_args)`` cases; fail once, listing every mismatch
    (but those of the cases named in ``exempt``)."""
    problems = []
    for name, fn, torch_args, our_args in cases:
        if name in exempt:
            continue
        theirs = run(fn, torch, *torch_args)
        if isinstance(theirs[1], TypeError):
            continue
        problem = mismatch(name, theirs, run(fn, kl, *our_args))
        if problem:
            problems.append(problem)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:12])


def describe(kind: str, dtype: str) -> str:
    return (
        f"Python {type(PYTHON[np.dtype(dtype).kind]).__name__}"
        if kind == "py"
        else f"{kind} {dtype}"
    )


def binary_cases(fn, kinds, pairs=PAIRS, requires_grad: bool = False):
    ka, kb = kinds
    for da, db in pairs:
        name = f"{describe(ka, da)}, {describe(kb, db)}"
        operands = [
            (operand(lib, da, ka, "a", requires_grad), operand(lib, db, kb, "b", requires_grad))
            for lib in (torch, kl)
        ]
        yield name, fn, operands[0], operands[1]


MASK = np.array([[True, False, True], [False, True, True]])


def where(lib, a, b):
    return lib.where(tensor(lib, MASK), a, b)


BINARY = {
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
    "mul": lambda lib, a, b: a * b,
    "truediv": lambda lib, a, b: a / b,
    "floordiv": lambda lib, a, b: a // b,
    "mod": lambda lib, a, b: a % b,
    "pow": lambda lib, a, b: a**b,
    "eq": lambda lib, a, b: a == b,
    "ne": lambda lib, a, b: a != b,
    "lt": lambda lib, a, b: a < b,
    "le": lambda lib, a, b: a <= b,
    "gt": lambda lib, a, b: a > b,
    "ge": lambda lib, a, b: a >= b,
    "where": where,
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "minimum": lambda lib, a, b: lib.minimum(a, b),
    "clamp_min": lambda lib, a, b: lib.clamp(a, min=b),
    "clamp_max": lambda lib, a, b: lib.clamp(a, max=b),
    "clamp_both": lambda lib, a, b: lib.clamp(a, b, b),
    "add_alpha": lambda lib, a, b: lib.add(a, b, alpha=2),
    "sub_alpha": lambda lib, a, b: lib.sub(a, b, alpha=2),
    "torch.mul": lambda lib, a, b: lib.mul(a, b),
    "torch.div": lambda lib, a, b: lib.div(a, b),
    "and": lambda lib, a, b: a & b,
    "or": lambda lib, a, b: a | b,
    "xor": lambda lib, a, b: a ^ b,
    "masked_fill": lambda lib, a, b: a.masked_fill(tensor(lib, MASK), b),
}


@pytest.mark.parametrize("kinds", KINDS, ids="-".join)
@pytest.mark.parametrize("op", BINARY)
def test_binary_ops(op, kinds):
    # torch.pow(bool_tensor, True) takes PyTorch's exponent-one shortcut (a copy) before its
    # dtype check, which refuses every other power of bools; kernelab refuses them all
    exempt = {"nd bool, Python bool", "0d bool, Python bool"} if op == "pow" else ()
    check(binary_cases(BINARY[op], kinds), exempt)


DIFFERENTIABLE = ["add", "sub", "mul", "truediv", "pow", "where", "maximum", "minimum"]
DIFFERENTIABLE += ["add_alpha", "masked_fill"]


def with_gradients(fn):
    """``fn(lib, a, b)`` and the gradients of its sum with respect to its tensor operands."""

    def run_backward(lib, a, b):
        out = fn(lib, a, b)
        out.sum().backward()
        grads = [x.grad for x in (a, b) if getattr(x, "requires_grad", False)]
        return (out, *(tensor(lib, np.asarray(g)) for g in grads if g is not None))

    return run_backward


@pytest.mark.parametrize("kinds", KINDS, ids="-".join)
@pytest.mark.parametrize("op", DIFFERENTIABLE)
def test_gradients_keep_input_dtypes(op, kinds):
    """A float32 operand's gradient is float32 also where the result is float64."""
    pairs = list(itertools.product(FLOATS, FLOATS))
    check(binary_cases(with_gradients(BINARY[op]), kinds, pairs, requires_grad=True))


def test_where_of_two_numbers():
    """``where(c, 2.5, 2)``: a tensor of the numbers' result type (the default float)."""
    numbers = [True, 2, 2.5]
    check((f"{a!r}, {b!r}", where, (a, b), (a, b)) for a, b in itertools.product(numbers, numbers))


CONDITIONS = {
    "where": lambda lib, a, c: lib.where(c, a, 0.5),
    "masked_fill": lambda lib, a, c: a.masked_fill(c, 0.5),
}


@pytest.mark.filterwarnings("ignore:where received a uint8 condition")
@pytest.mark.parametrize("op", CONDITIONS)
def test_conditions_are_bool(op):
    """A condition or mask of any dtype but bool is refused, as PyTorch does."""
    cases = []
    for dtype in DTYPES:
        c = MASK.astype(dtype)
        operands = [(tensor(lib, array("float32")), tensor(lib, c)) for lib in (torch, kl)]
        cases.append((f"condition {dtype}", CONDITIONS[op], *operands))
    check(cases)


MATRIX = {
    "matmul": lambda lib, a, b: lib.matmul(a, b.T),
    "mm": lambda lib, a, b: lib.mm(a, b.T),
    "@": lambda lib, a, b: a @ b.T,
    "cat": lambda lib, a, b: lib.cat([a, b]),
    "stack": lambda lib, a, b: lib.stack([a, b], 1),
    "allclose": lambda lib, a, b: lib.tensor(lib.allclose(a, b)),
    "equal": lambda lib, a, b: lib.tensor(lib.equal(a, b)),
}


@pytest.mark.parametrize("op", MATRIX)
def test_matrix_products_joins_and_equality(op):
    """Products on mixed dtypes raise in PyTorch, joins promote, ``allclose`` takes one dtype
    and ``equal`` compares values across dtypes."""
    check(binary_cases(MATRIX[op], ("nd", "nd")))


UNARY = {
    "sum": lambda lib, a: a.sum(),
    "sum_dim": lambda lib, a: lib.sum(a, 1, keepdim=True),
    "sum_dtype": lambda lib, a: a.sum(dtype=lib.float64),
    "prod": lambda lib, a: a.prod(),
    "prod_dim": lambda lib, a: lib.prod(a, 1, keepdim=True),
    "prod_dtype": lambda lib, a: a.prod(dtype=lib.float32),
    "mean": lambda lib, a: a.mean(),
    "mean_dim": lambda lib, a: lib.mean(a, 0),
    "mean_dtype": lambda lib, a: a.mean(dtype=lib.float64),
    "max": lambda lib, a: a.max(),
    "amax": lambda lib, a: lib.amax(a, 1),
    "exp": lambda lib, a: lib.exp(a),
    "log": lambda lib, a: lib.log(a),
    "sqrt": lambda lib, a: lib.sqrt(a),
    "abs": lambda lib, a: lib.abs(a),
    "neg": lambda lib, a: -a,
    "sigmoid": lambda lib, a: lib.sigmoid(a),
    "tanh": lambda lib, a: lib.tanh(a),
    "relu": lambda lib, a: lib.relu(a),
    "softmax": lambda lib, a: lib.softmax(a, 1),
    "log_softmax": lambda lib, a: lib.log_softmax(a, 1),
    "var": lambda lib, a: lib.var(a),
    "std_dim": lambda lib, a: a.std(1),
    "max_dim": lambda lib, a: tuple(a.max(1)),
    "amin": lambda lib, a: lib.amin(a, 0),
    "argmax": lambda lib, a: a.argmax(1),
    "any": lambda lib, a: a.any(),
    "all_dim": lambda lib, a: a.all(1),
    "not": lambda lib, a: ~a,
    "clone": lambda lib, a: a.clone(),
    "softmax_dtype": lambda lib, a: lib.nn.functional.softmax(a, 1, dtype=lib.float64),
    "log_softmax_dtype": lambda lib, a: a.log_softmax(1, dtype=lib.float32),
    "leaky_relu": lambda lib, a: lib.nn.functional.leaky_relu(a),
    "dropout_p0": lambda lib, a: lib.nn.functional.dropout(a, 0.0),
    "dropout_eval": lambda lib, a: lib.nn.functional.dropout(a, 0.5, training=False),
    "max_pool2d": lambda lib, a: lib.nn.functional.max_pool2d(a.reshape(1, 1, 2, 3), 2),
    "avg_pool2d": lambda lib, a: lib.nn.functional.avg_pool2d(a.reshape(1, 1, 2, 3), 2),
    "adaptive_avg_pool2d": lambda lib, a: lib.nn.functional.adaptive_avg_pool2d(
        a.reshape(1, 1, 2, 3), 1
    ),
    "flatten": lambda lib, a: lib.flatten(a),
}
NOT_FOR_0D = {
    "var",
    "sum_dim",
    "prod_dim",
    "mean_dim",
    "std_dim",
    "max_dim",
    "amax",
    "amin",
    "argmax",
}
NOT_FOR_0D |= {"all_dim", "softmax", "log_softmax", "softmax_dtype", "log_softmax_dtype"}
NOT_FOR_0D |= {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"}


@pytest.mark.parametrize(
    "op, kind",
    # a reduction over an axis (or var, which needs two elements) has no 0-d case
    [(op, kind) for op in UNARY for kind in ("nd", "0d") if kind == "nd" or op not in NOT_FOR_0D],
)
def test_unary_ops_and_reductions(op, kind):
    fn = UNARY[op]
    check((d, fn, (operand(torch, d, kind, "b"),), (operand(kl, d, kind, "b"),)) for d in DTYPES)


LAYERS = {
    "linear": (lambda lib, x, w: lib.nn.functional.linear(x, w), (3, 3), (2, 3)),
    "linear_bias": (
        lambda lib, x, w: lib.nn.functional.linear(x, w, w[:, 0] * 0),
        (3, 3),
        (2, 3),
    ),
    "linear_bias_float64": (
        lambda lib, x, w: lib.nn.functional.linear(x, w, (w[:, 0] * 0).to(lib.float64)),
        (3, 3),
        (2, 3),
    ),
    "conv2d": (lambda lib, x, w: lib.nn.functional.conv2d(x, w), (1, 2, 4, 4), (3, 2, 3, 3)),
    "batch_norm": (
        lambda lib, x, w: lib.nn.functional.batch_norm(x, None, None, w, w, training=True),
        (2, 3, 2, 2),
        (3,),
    ),
    "batch_norm_running": (
        lambda lib, x, w: lib.nn.functional.batch_norm(x, w * 0, w, training=False),
        (2, 3, 2, 2),
        (3,),
    ),
}


@pytest.mark.parametrize("op", LAYERS)
def test_layers_refuse_mixed_dtypes(op):
    """A layer's input and parameters must share one dtype in PyTorch."""
    fn, x_shape, w_shape = LAYERS[op]
    cases = []
    for dx, dw in PAIRS:
        x = np.arange(np.prod(x_shape)).reshape(x_shape).astype(dx)
        w = np.ones(w_shape, dw)
        cases.append(
            (
                f"input {dx}, weight {dw}",
                fn,
                (tensor(torch, x), tensor(torch, w)),
                (tensor(kl, x), tensor(kl, w)),
            )
        )
    check(cases)


def with_gradient(loss):
    """``loss(lib, x, t)`` and the gradient of its sum with respect to ``x``."""

    def fn(lib, x, t):
        value = loss(lib, x, t)
        value.sum().backward()
        return value, tensor(lib, np.asarray(x.grad))

    return fn


LOSSES = {
    "mse_loss": (lambda lib, x, t: lib.nn.functional.mse_loss(x, t), "values"),
    "mse_loss_sum": (lambda lib, x, t: lib.nn.functional.mse_loss(x, t, reduction="sum"), "values"),
    "MSELoss_none": (lambda lib, x, t: lib.nn.MSELoss(reduction="none")(x, t), "values"),
    "cross_entropy": (lambda lib, x, t: lib.nn.functional.cross_entropy(x, t), "classes"),
    "CrossEntropyLoss_none": (
        lambda lib, x, t: lib.nn.CrossEntropyLoss(reduction="none")(x, t),
        "classes",
    ),
    "cross_entropy_smoothed": (
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, label_smoothing=0.1),
        "classes",
    ),
    "nll_loss": (lambda lib, x, t: lib.nn.functional.nll_loss(x, t), "indices"),
    "NLLLoss_sum": (lambda lib, x, t: lib.nn.NLLLoss(reduction="sum")(x, t), "indices"),
}


def loss_target(dtype: str, target: str) -> np.ndarray:
    """Targets of the input's shape (2, 3), or class indices (2,) (probabilities for a
    floating ``dtype`` with "classes", as cross-entropy reads them)."""
    if target == "values" or (target == "classes" and dtype in FLOATS):
        return array(dtype, "b") / 6 if dtype in FLOATS else array(dtype, "b")
    return np.array([2, 0]).astype(dtype)


@pytest.mark.parametrize("loss", LOSSES)
def test_losses(loss):
    """Each loss on a float input against targets of every dtype; the input's gradient keeps
    the input's dtype."""
    fn, target = LOSSES[loss]
    cases = []
    for dx, dt in itertools.product(FLOATS, DTYPES):
        x, t = array(dx, "a") / 3, loss_target(dt, target)
        operands = [(tensor(lib, x, requires_grad=True), tensor(lib, t)) for lib in (torch, kl)]
        cases.append((f"input {dx}, target {dt}", with_gradient(fn), *operands))
    check(cases)


WEIGHTED = {
    "cross_entropy": lambda lib, x, w: lib.nn.functional.cross_entropy(
        x, tensor(lib, np.array([2, 0])), weight=w
    ),
    "nll_loss": lambda lib, x, w: lib.nn.functional.nll_loss(
        x, tensor(lib, np.array([2, 0])), weight=w
    ),
}


@pytest.mark.parametrize("loss", WEIGHTED)
def test_class_weights(loss):
    """A class weight must have the input's dtype in PyTorch."""
    cases = []
    for dx, dw in itertools.product(FLOATS, DTYPES):
        x, w = array(dx, "a") / 3, array(dw, "b")[0]
        operands = [(tensor(lib, x, requires_grad=True), tensor(lib, w)) for lib in (torch, kl)]
        cases.append((f"input {dx}, weight {dw}", with_gradient(WEIGHTED[loss]), *operands))
    check(cases)


IN_PLACE = {
    "+=": lambda lib, a, b: operator.iadd(a, b),
    "-=": lambda lib, a, b: operator.isub(a, b),
    "*=": lambda lib, a, b: operator.imul(a, b),
    "/=": lambda lib, a, b: operator.itruediv(a, b),
    "add_": lambda lib, a, b: a.add_(b),
    "sub_": lambda lib, a, b: a.sub_(b),
    "mul_": lambda lib, a, b: a.mul_(b),
    "div_": lambda lib, a, b: a.div_(b),
    "add_alpha_": lambda lib, a, b: a.add_(b, alpha=2),
    "clamp_": lambda lib, a, b: a.clamp_(min=b),
}


@pytest.mark.parametrize("kind", ["nd", "0d", "py"])
@pytest.mark.parametrize("op", IN_PLACE)
def test_in_place_updates(op, kind):
    """An in-place update keeps the tensor's dtype, and PyTorch refuses it where the result
    dtype could not be cast back (``int_tensor += float_tensor``)."""
    check(binary_cases(IN_PLACE[op], ("nd", kind)))


def put(a, index, b, part):
    """``a[index] = b`` (or its ``part`` for an n-d ``b``); ``a`` after the write."""
    a[index] = part(b) if getattr(b, "ndim", 0) else b
    return a


SETITEM = {
    "x[mask] = v": lambda lib, a, b: put(a, tensor(lib, MASK), b, lambda b: b[tensor(lib, MASK)]),
    "x[rows] = v": lambda lib, a, b: put(a, tensor(lib, np.array([1, 0])), b, lambda b: b),
    "x[0] = v": lambda lib, a, b: put(a, 0, b, lambda b: b[1]),
    "x[:, 1:] = v": lambda lib, a, b: put(a, (slice(None), slice(1, None)), b, lambda b: b[:, 1:]),
}


@pytest.mark.parametrize("kind", ["nd", "0d", "py"])
@pytest.mark.parametrize("op", SETITEM)
def test_indexed_writes(op, kind):
    """Basic indexing casts the value to the tensor's dtype; advanced indexing (a mask or an
    index tensor) takes a tensor value of its dtype only (PyTorch's ``index_put_``), but a
    mask with a 0-d value casts (it is ``masked_fill_``)."""
    check(binary_cases(SETITEM[op], ("nd", kind)))
