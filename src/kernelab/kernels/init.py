"""Initialisers: fill a tensor's kernels in place, with ``torch.nn.init``'s names and maths.

Each function writes into ``tensor.array`` (same array, same dtype), returns the tensor, and
draws from ``generator``: a ``np.random.Generator``, an int seed, or None for kernelab's
default generator. :mod:`kernelab.kernels.initializers` maps a command-line name such as
``he_normal`` or ``constant:0.1`` to exactly one of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import unwrap
from ..core.errors import ShapeError
from ..core.rng import as_generator
from ..core.tensor import Tensor

Generator = np.random.Generator | int | None


def _fill(tensor: Tensor, values: Any) -> Tensor:
    tensor.array[...] = values  # in place: views of the array and its dtype survive
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch recommends for a nonlinearity (its ``nn.functional`` name).

    1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu, √(2/(1 + slope²)) for leaky_relu
    (slope ``param``, default 0.01), 3/4 for selu.
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d")
    if nonlinearity in linear + tuple(f"conv_transpose{d}d" for d in (1, 2, 3)):
        return 1
    if nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(
                f"calculate_gain: expected a number for negative_slope, received {param!r}"
            )
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4  # found empirically by PyTorch (pytorch/pytorch#50664)
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight, counting the receptive field as PyTorch does.

    For a conv kernel of shape (C_out, C_in/groups, kH, kW): fan_in = C_in/groups·kH·kW
    (what one output sees, so groups are already accounted for) and fan_out = C_out·kH·kW.
    For a linear weight (out, in): fan_in = in, fan_out = out.
    """
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan_in_and_fan_out: expected a tensor with at least 2 dimensions, "
            f"received shape {tuple(shape)}"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


_calculate_fan_in_and_fan_out = fan_in_and_fan_out  # PyTorch's private name, for habit


def _fan(tensor: Tensor, mode: str, caller: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{caller}: expected mode 'fan_in' or 'fan_out', received {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1)


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, val)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator = None) -> Tensor:
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, as_generator(generator).uniform(a, b, size=tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator = None
) -> Tensor:
    """Fill with N(mean, std²)."""
    if not std >= 0:
        raise ValueError(f"normal_: expected std >= 0, got {std}")
    return _fill(tensor, as_generator(generator).normal(mean, std, size=tensor.shape))


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _truncated_normal(rng, n: int, mean: float, std: float, a: float, b: float) -> np.ndarray:
    """n draws of N(mean, std²) restricted to [a, b], by rejection (as PyTorch does).

    When [a, b] holds more than 30% of the mass, redraw normals that fall outside. Otherwise
    propose uniformly near the mode and accept with probability pdf/peak; the proposal window
    stops where the density falls below e^-32 of its peak, so infinite bounds work too.
    """
    out, pending = np.empty(n), np.arange(n)
    mass = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
    mode = min(max(mean, a), b)
    distance = abs(mode - mean)
    width = 8 * std if distance == 0 else min(8 * std, 32 * std**2 / distance)
    lo, hi = max(a, mode - width), min(b, mode + width)
    while pending.size:
        if mass > 0.3:
            draw = rng.normal(mean, std, pending.size)
            accept = (draw >= a) & (draw <= b)
        else:
            draw = rng.uniform(lo, hi, pending.size)
            log_ratio = ((mode - mean) ** 2 - (draw - mean) ** 2) / (2 * std**2)
            accept = np.log(rng.random(pending.size)) < log_ratio
        out[pending[accept]] = draw[accept]
        pending = pending[~accept]
    return out


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Generator = None,
) -> Tensor:
    """Fill with N(mean, std²) truncated to [a, b]; as in PyTorch a and b are absolute bounds.

    Values outside are redrawn, so every value lies in [a, b] (in the tensor's dtype).
    """
    if not std > 0 or not a < b:
        raise ValueError(f"trunc_normal_: expected std > 0 and a < b, received {std=}, {a=}, {b=}")
    values = _truncated_normal(as_generator(generator), tensor.array.size, mean, std, a, b)
    return _fill(tensor, values.reshape(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """Glorot & Bengio (2010): U(-bound, bound), bound = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std²), std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
) -> Tensor:
    """He et al. (2015): U(-bound, bound), bound = gain·√(3 / fan), gain from ``nonlinearity``.

    ``a`` is the negative slope of a following leaky_relu; ``mode`` 'fan_in' keeps the
    forward variance, 'fan_out' the backward one.
    """
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
) -> Tensor:
    """He et al. (2015): N(0, std²), std = gain / √fan (arguments as :func:`kaiming_uniform_`)."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def lecun_normal_(tensor: Tensor, generator: Generator = None) -> Tensor:
    """Keras's lecun_normal: a normal truncated at ±2s, s = √(1/fan_in) / 0.8796…

    0.87962566103423978 is the standard deviation of N(0, 1) truncated to [-2, 2], so the
    values end up with standard deviation exactly √(1/fan_in).
    """
    fan_in, _ = fan_in_and_fan_out(tensor)
    s = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    return trunc_normal_(tensor, 0.0, s, -2 * s, 2 * s, generator)


def lecun_uniform_(tensor: Tensor, generator: Generator = None) -> Tensor:
    """Keras's lecun_uniform: U(-bound, bound), bound = √(3 / fan_in)."""
    bound = math.sqrt(3.0 / fan_in_and_fan_out(tensor)[0])
    return uniform_(tensor, -bound, bound, generator)


# Keras's names. Keras draws glorot_normal and he_normal from a normal truncated at 2 std
# (rescaled to the same variance); these keep PyTorch's plain normal.
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """Saxe et al. (2013): a (semi-)orthogonal matrix over (shape[0], everything else).

    Rows are orthonormal when shape[0] <= the rest (W Wᵀ = gain²·I), columns otherwise.
    Q of the QR of a Gaussian matrix, signs fixed by diag(R) so Q is uniform (Haar).
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: expected at least 2 dimensions, received {tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.array.size // rows
    flat = as_generator(generator).normal(size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Identity kernels: output channel d of each group copies input channel d of it.

    A 1 at the centre tap (index k // 2 on each spatial axis) of kernel [g·C_out/groups + d, d]
    for d < min(C_out/groups, C_in/groups); a 3-, 4- or 5-D weight, as in PyTorch.
    """
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: expected a 3-, 4- or 5-D weight, received {tensor.shape}")
    if groups < 1 or tensor.shape[0] % groups:
        raise ValueError(
            f"dirac_: expected out channels {tensor.shape[0]} divisible by groups, "
            f"received groups={groups}"
        )
    per_group = tensor.shape[0] // groups
    centre = tuple(k // 2 for k in tensor.shape[2:])
    zeros_(tensor)
    for g in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            tensor.array[(g * per_group + d, d) + centre] = 1
    return tensor


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix on a 2-D weight (ones on the main diagonal of a rectangle)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: expected a 2-D tensor, received shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def _as_bank(kernels: Any) -> list[np.ndarray]:
    """A list of 2-D float64 kernels from one kernel, a list of them or an (n, kH, kW) array."""
    if isinstance(kernels, (list, tuple)) and kernels and np.ndim(unwrap(kernels[0])) == 2:
        return [np.asarray(unwrap(k), dtype=np.float64) for k in kernels]
    array = np.asarray(unwrap(kernels), dtype=np.float64)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ShapeError(
            f"kernel_: expected a (kH, kW) kernel, a list of them or an (n, kH, kW) array, "
            f"received shape {array.shape}"
        )
    return [array] if array.ndim == 2 else list(array)


def kernel_(
    weight: Tensor, kernels: Any, scale_by_depth: bool = False, generator: Generator = None
) -> Tensor:
    """Set a conv weight from hand-designed 2-D kernels (e.g. from :mod:`kernelab.kernels`).

    ``kernels`` is one (kH, kW) kernel, a list of them or an (n, kH, kW) array; output channel
    o gets kernel o mod n, copied across its whole input depth (C_in/groups).

    Not scaled by default: the depth copies' responses add up, so on an input whose channels
    are equal (a grey image repeated as RGB) a feature map is depth × the 2-D kernel's
    response. ``scale_by_depth=True`` divides by the depth so it equals that response.
    ``generator`` is accepted so every initialiser has one signature; nothing is drawn.

    Shape:
        weight: (C_out, C_in/groups, kH, kW); each kernel (kH, kW).
    """
    if weight.ndim != 4:
        raise ShapeError(
            f"kernel_: expected a conv weight (C_out, C_in/groups, kH, kW), "
            f"received shape {tuple(weight.shape)}"
        )
    out_channels, depth, kh, kw = weight.shape
    bank = _as_bank(kernels)
    for i, k in enumerate(bank):
        if k.shape != (kh, kw):
            raise ShapeError(
                f"kernel_: expected kernels of shape {(kh, kw)} to match the weight of shape "
                f"{weight.shape}, received kernel {i} of shape {k.shape}"
            )
    stack = np.stack([bank[o % len(bank)] for o in range(out_channels)])  # (C_out, kH, kW)
    scale = 1.0 / depth if scale_by_depth else 1.0
    return _fill(weight, scale * stack[:, None])  # broadcast over depth
