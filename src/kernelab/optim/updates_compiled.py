"""Compiled twins of the SGD and Adam updates (``sgd.py``, ``adam.py``): one pass per parameter.

The NumPy updates make a temporary array per operation; these read each element of the
parameter, its gradient and its state once and write them back in place, on all threads.
Every hyper-parameter arrives already cast to the parameter's dtype and each operation is
done in the same order as the NumPy reference, so a float32 run rounds exactly as NumPy's
float32 arithmetic does (NumPy casts a Python float to the array's dtype first).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..core import jit


def flat(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a 1-D view, or None when it is not C-contiguous (no copy is ever made)."""
    return a.reshape(-1) if a.flags.c_contiguous else None  # (size,)


def flat_arrays(dtype, *arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of parameter-sized arrays of one float dtype, or None if any cannot be."""
    if dtype not in (np.float32, np.float64):
        return None
    views = [flat(a) if a.dtype == dtype else None for a in arrays]
    return None if any(v is None for v in views) else views


@jit.kernel(parallel=True)
def sgd(p, grad, buf, lr, momentum, keep, weight_decay, nesterov, maximize, first):
    """SGD on flat ``p`` in place; ``buf`` is the momentum buffer (empty without momentum).

    ``keep`` is ``1 − dampening``; ``first`` says the buffer starts from this gradient.
    """
    for i in prange(p.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p[i]
        if momentum != 0:
            b = g if first else buf[i] * momentum + keep * g
            buf[i] = b
            g = g + momentum * b if nesterov else b
        p[i] = p[i] - lr * g


@jit.kernel(parallel=True)
def adam(p, grad, m, v, v_max, hyper, decoupled, amsgrad, maximize):
    """Adam on flat ``p`` in place, with its moments ``m``, ``v`` and (amsgrad) ``v_max``.

    ``hyper`` holds, in the parameter's dtype: weight decay (or the decoupled shrink factor
    ``1 − lr·weight_decay``), ``1 − β1``, ``β2``, ``1 − β2``, the step size ``lr / (1 − β1^t)``,
    ``√(1 − β2^t)`` and eps.
    """
    decay, rest1, beta2, rest2 = hyper[0], hyper[1], hyper[2], hyper[3]
    step_size, correction2, eps = hyper[4], hyper[5], hyper[6]
    for i in prange(p.size):
        g = -grad[i] if maximize else grad[i]
        if decoupled:
            p[i] = p[i] * decay
        elif decay != 0:
            g = g + decay * p[i]
        mi = m[i] + rest1 * (g - m[i])  # torch's lerp towards g
        m[i] = mi
        vi = v[i] * beta2 + rest2 * g * g
        v[i] = vi
        if amsgrad:
            w = v_max[i]
            if w > vi or w != w:  # np.maximum: NaN wins
                vi = w
            v_max[i] = vi
        p[i] = p[i] - step_size * mi / (np.sqrt(vi) / correction2 + eps)
