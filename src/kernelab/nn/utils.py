"""Gradient clipping and flat parameter vectors, in place where torch is, as torch does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import unwrap
from ..core.tensor import Tensor
from ..functional.shape import cat


def _with_grads(parameters: Any) -> list[Any]:
    if hasattr(parameters, "grad"):  # a single parameter
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def get_total_norm(
    tensors: Iterable[np.ndarray], norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """The ``norm_type``-norm of all the arrays together, as if concatenated into one vector.

    Computed as the norm of the per-array norms (exact for any p-norm, inf and -inf).
    """
    norm_type = float(norm_type)
    norms = [np.linalg.norm(np.ravel(unwrap(t)), norm_type) for t in tensors]
    if not norms:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    total = np.asarray(np.linalg.norm(np.stack(norms), norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            f"non-finite ({total}), so it cannot be clipped. To scale the gradients by it "
            f"anyway, set error_if_nonfinite=False"
        )
    return Tensor(total)


def clip_grads_with_norm_(parameters: Any, max_norm: float, total_norm: Any) -> None:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))``."""
    norm = total_norm.array if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    # 1e-6 keeps the coefficient finite for an all-zero gradient (torch's constant)
    coef = np.minimum(float(max_norm) / (norm + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # an inf norm gives inf·0 = nan, as torch, silently
        for p in _with_grads(parameters):
            p.grad.array *= coef.astype(p.grad.dtype)


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Rescale the gradients so that their joint norm is at most ``max_norm``; in place.

    ``parameters`` is one parameter or an iterable of them; those without a gradient are
    left out. Returns the total norm before clipping, a 0-d tensor (``inf`` for the max-norm).
    As torch, every gradient is multiplied, by exactly 1.0 when the norm is within bounds.
    """
    params = _with_grads(parameters)
    total = get_total_norm([p.grad.array for p in params], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        np.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Every parameter flattened and joined into one vector, in order (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in order, as their new data."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    values, offset = vec.array, 0
    for p in parameters:
        size = p.array.size
        if offset + size > values.size:
            raise RuntimeError(
                f"vector_to_parameters: a vector of {values.size} values is too short for the "
                f"parameters (the one of shape {tuple(p.array.shape)} needs {offset + size})"
            )
        p.data = Tensor(values[offset : offset + size].reshape(p.array.shape))  # (shape of p)
        offset += size
