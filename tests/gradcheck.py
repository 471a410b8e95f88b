"""Central-difference gradient checking in float64 (Chainer's ``gradient_check`` style).

For ``y = fn(x_1, ..., x_k)`` and fixed random weights ``u`` of ``y``'s shape, the scalar
``L = Σ y · u`` has the analytic gradient that ``y.backward(u)`` computes. Each element of each
input is moved by ±eps and ``(L(x + eps) − L(x − eps)) / 2eps`` must match it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import kernelab as kl

TINY = 1e-300


def relative_error(actual, expected) -> float:
    """max|a − b| / max(max|b|, tiny): one number per array, scale-free.

    Equal infinities (a window of padding only) and NaN against NaN count as equal.
    """
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != expected {b.shape}"
    if a.size == 0:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.abs(np.where(same, 0.0, a) - np.where(same, 0.0, b))
    finite = np.abs(b[np.isfinite(b)])
    scale = float(finite.max()) if finite.size else 0.0
    return float(diff.max() / max(scale, TINY))


def assert_rel_close(actual, expected, tol: float, what: str = "") -> None:
    err = relative_error(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.1e}"


def numerical_gradients(
    fn: Callable[..., kl.Tensor],
    inputs: Sequence[np.ndarray],
    weights: np.ndarray,
    eps: float = 1e-6,
) -> list[np.ndarray]:
    """Central differences of ``Σ fn(*inputs) · weights`` for every element of every input."""
    arrays = [np.array(a, dtype=np.float64) for a in inputs]

    def scalar() -> float:
        with kl.no_grad():
            out = fn(*(kl.Tensor(a) for a in arrays))
        return float(np.sum(out.array * weights))

    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            original = a[index]
            a[index] = original + eps
            plus = scalar()
            a[index] = original - eps
            minus = scalar()
            a[index] = original
            g[index] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def check_gradients(
    fn: Callable[..., kl.Tensor],
    inputs: Sequence[np.ndarray],
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    seed: int = 0,
) -> None:
    """Assert that backward through ``fn`` matches central differences for every input.

    ``fn`` takes one tensor per input array and returns a tensor; everything else it needs
    (targets, settings, fixed masks) it closes over. All work is in float64.
    """
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    tensors = [kl.Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    assert out.dtype == np.float64, f"float64 inputs gave a {out.dtype} output"
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(weights)
    numeric = numerical_gradients(fn, arrays, weights, eps)
    for i, (t, n) in enumerate(zip(tensors, numeric, strict=True)):
        assert t.grad is not None, f"input {i} received no gradient"
        analytic = t.grad.numpy()
        assert analytic.dtype == np.float64, f"input {i}: gradient dtype {analytic.dtype}"
        scale = max(float(np.max(np.abs(n))), 1.0) if n.size else 1.0
        err = float(np.max(np.abs(analytic - n))) if n.size else 0.0
        assert err <= atol + rtol * scale, (
            f"input {i} of shape {n.shape}: max |analytic − numeric| = {err:.3e}\n"
            f"analytic:\n{analytic}\nnumeric:\n{n}"
        )
