"""Element-wise arithmetic, matrix products, sum, prod and mean, each a forward and its
backward; and PyTorch's dtype rules, which every op in this package follows.

Binary operations broadcast as NumPy does; their backward sums the gradient over the axes
that broadcasting stretched (:func:`unbroadcast`). Their operands are first brought to
PyTorch's result dtype (:func:`result_type`, :func:`promote`), so ``int_tensor / 2`` is
float32 and ``float32_tensor * np.float64(2)`` stays float32, as in PyTorch; a gradient comes
back in its input's dtype (:func:`cast`). Where PyTorch refuses a dtype (``bool - bool``,
``mean`` of integers, ``float32 @ float64``) :func:`require_dtypes` raises its DTypeError.
Comparisons, ``where`` and ``clamp`` are in ``comparison.py``; other reductions in
``reduction.py``.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, is_tensor, unwrap, wrap
from ..core.dtypes import get_default_dtype
from ..core.errors import DTypeError
from . import products


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` up to grad's."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _shape(x) -> tuple[int, ...]:
    return np.shape(x)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = _shape(a), _shape(b)
        return np.add(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = _shape(a), _shape(b)
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb) if ctx.needs_input_grad[1] else None


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        ga = unbroadcast(g * b, _shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * a, _shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return np.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        ga = unbroadcast(g / b, _shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-g * a / (b * b), _shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        ctx.out = np.power(a, b)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        ga = unbroadcast(g * b * np.power(a, b - 1), _shape(a)) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:  # 0 where a = 0 and b ≥ 0, as PyTorch (not 0 · log 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = np.where((a == 0) & (b >= 0), 0, g * ctx.out * np.log(a)).astype(g.dtype)
            gb = unbroadcast(gb, _shape(b))
        return ga, gb


class MatMul(Function):
    """``a @ b`` with NumPy's rules; 1-D operands are lifted to matrices for the backward."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return products.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:  # first: for vector @ vector, g is 0-D
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = products.matmul(g2, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = products.matmul(np.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.out = np.exp(a)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.out = np.sqrt(a)
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.out)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.sign = np.sign(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.sign


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def reduction_axes(dim, ndim: int) -> tuple[int, ...]:
    """The axes a reduction over ``dim`` covers: all of them for None, else ``dim`` (an int or
    a sequence, negative counting from the end) as non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim for d in dims)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        return np.sum(a, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdim:
            g = np.expand_dims(g, ctx.axes)
        return np.broadcast_to(g, ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        ctx.count = int(np.prod([a.shape[d] for d in axes]))
        return np.mean(a, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdim:
            g = np.expand_dims(g, ctx.axes)
        return np.broadcast_to(g / ctx.count, ctx.shape)


class Prod(Function):
    """Product over one axis (or all elements); each element's gradient is the product of the
    others, the products before it times those after it, exact where elements are zero."""

    @staticmethod
    def forward(ctx, a, axis, keepdim):
        ctx.a, ctx.axis, ctx.keepdim = a, axis, keepdim
        return np.prod(a, axis=axis, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        a, axis = (ctx.a.reshape(-1), 0) if ctx.axis is None else (ctx.a, ctx.axis)
        n = a.shape[axis]
        ones = np.ones_like(np.take(a, [0], axis=axis))  # a with length 1 along axis

        def exclusive(x):  # the product of the elements before each one
            return np.concatenate([ones, np.take(np.cumprod(x, axis), range(n - 1), axis)], axis)

        others = exclusive(a) * np.flip(exclusive(np.flip(a, axis)), axis)
        if ctx.axis is not None and not ctx.keepdim:
            g = np.expand_dims(g, axis)
        return (g * others).reshape(ctx.a.shape)


# ---- PyTorch's type promotion
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_NUMBER_CATEGORY = {bool: 0, int: 1, float: 2}
_KIND_NAMES = {"b": "bool", "u": "integer", "i": "integer", "f": "floating point"}


def array_of(x) -> np.ndarray | None:
    """The array of a tensor or ndarray; None for a Python or NumPy scalar."""
    if isinstance(x, np.ndarray):
        return x
    return x.array if is_tensor(x) else None


def dtype_of(x) -> np.dtype:
    """The dtype of a tensor or array, or the one PyTorch reads a Python or NumPy scalar as
    (a dtype stands for itself)."""
    if is_tensor(x):
        return x.array.dtype
    if isinstance(x, (np.ndarray, np.dtype)):
        return x if isinstance(x, np.dtype) else x.dtype
    return _scalar_dtype(x)


def _scalar_dtype(x) -> np.dtype:
    if isinstance(x, np.generic):
        return x.dtype
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, int):
        return np.dtype(np.int64)
    return np.dtype(float) if isinstance(x, float) else np.asarray(x).dtype


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives an operation on ``operands`` (``torch.result_type``).

    The highest category (bool < integer < floating < complex) wins. Within it, tensors with
    dimensions outrank 0-d tensors, which outrank scalars (Python or NumPy numbers); if only
    scalars are of that category, the result is its default (int64, or the default float).
    """
    ranked = []
    for x in operands:
        array = array_of(x)
        priority = 0 if array is None else 2 if array.ndim else 1
        dtype = array.dtype if array is not None else _scalar_dtype(x)
        ranked.append((_CATEGORY[dtype.kind], priority, dtype))
    category = max(r[0] for r in ranked)
    priority = max(r[1] for r in ranked if r[0] == category)
    if priority > 0:
        return np.result_type(*(d for c, p, d in ranked if (c, p) == (category, priority)))
    default = get_default_dtype()
    return [np.dtype(np.bool_), np.dtype(np.int64), default, np.result_type(default, 1j)][category]


def promote(*operands, floating: bool = False) -> tuple:
    """The operands cast to their result dtype (a floating one for true division, exp, sqrt:
    integers and bools become the default float dtype, as in PyTorch)."""
    arrays = [array_of(x) for x in operands]
    first = arrays[0]
    same = first is not None and all(a is not None and a.dtype == first.dtype for a in arrays)
    if same and (not floating or first.dtype.kind in "fc"):
        return operands
    dtype = _tensor_over_number(operands, arrays) or result_type(*operands)
    if floating and dtype.kind not in "fc":
        dtype = get_default_dtype()
    return tuple(cast_to(x, dtype) for x in operands)


def _tensor_over_number(operands, arrays) -> np.dtype | None:
    """The tensor's dtype for a tensor and a Python number of no higher category (``x * 2``,
    ``1 - x``), the common case, decided without :func:`result_type`; else None."""
    if len(operands) != 2 or (arrays[0] is None) == (arrays[1] is None):
        return None
    array, number = (arrays[0], operands[1]) if arrays[1] is None else (arrays[1], operands[0])
    category = _NUMBER_CATEGORY.get(type(number), 3)
    return array.dtype if category <= _CATEGORY[array.dtype.kind] else None


def require_dtypes(name: str, *operands, kinds: str = "biufc", same: bool = False) -> None:
    """Refuse, as PyTorch does, operands whose dtype is not of ``kinds`` (NumPy's letters:
    b bool, u i integer, f floating point) or, with ``same``, that differ in dtype."""
    dtypes = tuple(map(dtype_of, operands))
    for dtype in dtypes:
        if dtype.kind not in kinds:
            names = dict.fromkeys(_KIND_NAMES[k] for k in kinds if k in _KIND_NAMES)
            raise DTypeError(f"{name}: expected {' or '.join(names)} operands, got {dtype}")
    if same and dtypes.count(dtypes[0]) != len(dtypes):
        got = " and ".join(str(d) for d in dtypes)
        raise DTypeError(f"{name}: expected operands of one dtype, got {got}")


def cast_to(x, dtype: np.dtype):
    """``x`` in ``dtype``: a scalar, an array, or a tensor (through :func:`cast`, so the
    gradient flows back in its own dtype)."""
    array = array_of(x)
    if array is None:  # a scalar in the result dtype, so backward arithmetic stays in it too
        return dtype.type(x)
    if array.dtype == dtype:
        return x
    return array.astype(dtype) if x is array else cast(x, dtype)


def add(a, b, alpha=1):
    """``a + alpha·b``, in the result dtype of ``a`` and ``b`` (``alpha`` is cast to it)."""
    a, b = promote(a, b)
    return Add.apply(a, scaled(b, alpha))


def sub(a, b, alpha=1):
    require_dtypes("sub (use ~ or logical_not to invert a mask)", a, b, kinds="uifc")
    a, b = promote(a, b)
    return Sub.apply(a, scaled(b, alpha))


def scaled(b, alpha):
    """``alpha·b`` for an operand already in the result dtype; PyTorch refuses a fractional
    ``alpha`` for integers."""
    if alpha == 1:
        return b
    dtype = dtype_of(b)
    if dtype.kind in "biu" and isinstance(alpha, float):
        raise DTypeError(f"alpha={alpha}: must not be a floating point number for {dtype} operands")
    return Mul.apply(b, dtype.type(alpha))


def can_cast(source: np.dtype, target: np.dtype) -> bool:
    """Whether PyTorch writes a ``source`` result into a ``target`` tensor in place: never a
    float into an integer, nor a number into a bool (a narrower dtype of a kind is fine)."""
    return _CATEGORY[source.kind] <= _CATEGORY[target.kind]


def mul(a, b):
    return Mul.apply(*promote(a, b))


def div(a, b):
    return Div.apply(*promote(a, b, floating=True))


def neg(a):
    require_dtypes("neg (use ~ or logical_not to invert a mask)", a, kinds="uifc")
    return Neg.apply(a)


def pow(a, b):  # noqa: A001
    a, b = promote(a, b)
    require_dtypes("pow", a, b, kinds="uifc")
    return Pow.apply(a, b)


def matmul(a, b):
    require_dtypes("matmul", a, b, kinds="uifc", same=True)
    return MatMul.apply(a, b)


def exp(a):
    return Exp.apply(*promote(a, floating=True))


def log(a):
    return Log.apply(*promote(a, floating=True))


def sqrt(a):
    return Sqrt.apply(*promote(a, floating=True))


def abs(a):  # noqa: A001
    require_dtypes("abs", a, kinds="uifc")
    return Abs.apply(a)


def cast(a, dtype):
    return Cast.apply(a, dtype=dtype)


def sum(a, dim=None, keepdim: bool = False):  # noqa: A001
    """Sum over ``dim`` (all axes if None); integers and bools sum to int64, as in PyTorch."""
    if a.dtype.kind in "biu":
        a = cast_to(a, np.dtype(np.int64))
    return Sum.apply(a, axes=reduction_axes(dim, a.ndim), keepdim=keepdim)


def prod(a, dim: int | None = None, keepdim: bool = False):
    """Product over ``dim`` (one axis, or all elements if None); integers and bools give
    int64, as in PyTorch."""
    if a.dtype.kind in "biu":
        a = cast_to(a, np.dtype(np.int64))
    axis = None if dim is None else reduction_axes(dim, a.ndim)[0]
    return Prod.apply(a, axis=axis, keepdim=keepdim)


def mean(a, dim=None, keepdim: bool = False):
    """Mean over ``dim``; PyTorch refuses integers (``mean(dtype=...)`` casts them first)."""
    require_dtypes("mean", a, kinds="fc")
    return Mean.apply(a, axes=reduction_axes(dim, a.ndim), keepdim=keepdim)


def clone(a):
    return Clone.apply(a)


def mm(a, b):
    """The product of two matrices (``a @ b`` for 2-D operands only)."""
    _check_ndim("mm", 2, a, b)
    return matmul(a, b)


def bmm(a, b):
    """Batched matrix product of two 3-D tensors ``(B, n, m) @ (B, m, p)``."""
    _check_ndim("bmm", 3, a, b)
    return matmul(a, b)


def _check_ndim(name: str, ndim: int, *operands) -> None:
    shapes = [tuple(np.shape(unwrap(x))) for x in operands]
    if any(len(s) != ndim for s in shapes):
        raise ValueError(f"{name}: expected {ndim}-D tensors, got shapes {shapes}")


# ---- integer-valued results: kernelab gives them no gradient
def floor_divide(a, b):
    a, b = promote(a, b)
    require_dtypes("floor_divide", a, b, kinds="uifc")
    return wrap(np.floor_divide(unwrap(a), unwrap(b)))


def remainder(a, b):
    a, b = promote(a, b)
    require_dtypes("remainder", a, b, kinds="uifc")
    return wrap(np.remainder(unwrap(a), unwrap(b)))
