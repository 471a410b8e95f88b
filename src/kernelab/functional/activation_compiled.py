"""Compiled twins of the element-wise activations in ``activation.py``, one pass each.

An element-wise op does not care about axes, so each kernel runs over the array's memory as
one flat vector, whatever its layout (channel-major after a convolution included): outputs and
gradients come back in the input's layout without a transposing copy. What a backward needs is
kept as small as it can be: a byte per element for ReLU and LeakyReLU, the output (which
exists anyway) for Sigmoid and Tanh.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..core import jit


class Flat:
    """The memory order of an array's layout, to read same-shaped arrays as flat vectors.

    ``order`` lists the axes from the largest stride to the smallest: transposed by it, a dense
    array of any layout is C-contiguous, so :meth:`of` is a view; an array that is not dense
    (a slice, a broadcast) is read in C order instead, through one copy.
    """

    def __init__(self, x: np.ndarray):
        order = tuple(int(a) for a in np.argsort([-abs(s) for s in x.strides], kind="stable"))
        if not x.transpose(order).flags.c_contiguous:
            order = tuple(range(x.ndim))
        self.order, self.inverse = order, tuple(int(a) for a in np.argsort(order))
        self.shape = tuple(x.shape[a] for a in order)

    def of(self, a: np.ndarray) -> np.ndarray:
        """An array of the original shape as a vector in this memory order (copied if need be)."""
        return np.ascontiguousarray(a.transpose(self.order)).reshape(-1)

    def back(self, vector: np.ndarray) -> np.ndarray:
        """A vector in this memory order as an array of the original shape (a view)."""
        return vector.reshape(self.shape).transpose(self.inverse)


def elementwise(kernel, x: np.ndarray, *extra):
    """Run ``kernel(x, out, *extra)`` over x's memory; the result has x's shape and layout."""
    flat = Flat(x)
    vector = flat.of(x)
    out = np.empty_like(vector)
    kernel(vector, out, *extra)
    return flat.back(out), flat


# ---- ReLU


def relu(x: np.ndarray, keep_mask: bool):
    """max(x, 0) (NaN stays NaN); with ``keep_mask`` also the mask ``not x ≤ 0`` and the Flat
    that reads gradients in its order, else None for both."""
    zero = x.dtype.type(0)  # of x's dtype, so the kernels never widen to float64
    if not keep_mask:
        return elementwise(relu_forward, x, zero)[0], None, None
    flat = Flat(x)
    vector = flat.of(x)
    y, mask = np.empty_like(vector), np.empty(vector.shape, np.bool_)
    relu_forward_mask(vector, y, mask, zero)
    return flat.back(y), mask, flat


@jit.kernel(parallel=True)
def relu_forward(x, y, zero):
    """y = x where x is not ≤ 0 (so NaN passes), else 0."""
    for i in prange(x.size):
        y[i] = zero if x[i] <= 0 else x[i]


@jit.kernel(parallel=True)
def relu_forward_mask(x, y, mask, zero):
    """relu_forward and the mask of elements whose gradient passes (x > 0 or NaN)."""
    for i in prange(x.size):
        v = x[i]
        passes = not v <= 0
        mask[i] = passes
        y[i] = v if passes else zero


def relu_grad(g: np.ndarray, mask: np.ndarray, flat: Flat) -> np.ndarray:
    """g where the mask holds, 0 elsewhere (PyTorch's threshold_backward)."""
    gv = flat.of(g)
    gx = np.empty_like(gv)
    select_backward(gv, mask, gx, gv.dtype.type(0))
    return flat.back(gx)


@jit.kernel(parallel=True)
def select_backward(g, mask, gx, zero):
    """gx = g where mask, else 0."""
    for i in prange(g.size):
        gx[i] = g[i] if mask[i] else zero


# ---- LeakyReLU


def leaky_relu(x: np.ndarray, negative_slope: float):
    """x where x > 0, else negative_slope·x; the mask x > 0 and the Flat of x's memory."""
    flat = Flat(x)
    vector = flat.of(x)
    y, mask = np.empty_like(vector), np.empty(vector.shape, np.bool_)
    leaky_relu_forward(vector, y, mask, x.dtype.type(negative_slope))
    return flat.back(y), mask, flat


@jit.kernel(parallel=True)
def leaky_relu_forward(x, y, mask, slope):
    """y = x where x > 0, else slope·x (NaN stays NaN)."""
    for i in prange(x.size):
        v = x[i]
        positive = v > 0
        mask[i] = positive
        y[i] = v if positive else v * slope


def leaky_relu_grad(g, mask, flat: Flat, negative_slope):
    """g where x > 0, else negative_slope·g."""
    gv = flat.of(g)
    gx = np.empty_like(gv)
    leaky_relu_backward(gv, mask, gx, gv.dtype.type(negative_slope))
    return flat.back(gx)


@jit.kernel(parallel=True)
def leaky_relu_backward(g, mask, gx, slope):
    """gx = g where mask, else slope·g."""
    for i in prange(g.size):
        gx[i] = g[i] if mask[i] else g[i] * slope


# ---- Sigmoid and Tanh


def sigmoid(x: np.ndarray):
    """1 / (1 + exp(−x)), and the Flat of x's memory."""
    return elementwise(sigmoid_forward, x)


@jit.kernel(parallel=True)
def sigmoid_forward(x, y):
    """exp of a non-positive number only, so large |x| neither overflows nor loses digits."""
    for i in prange(x.size):
        v = x[i]
        if v >= 0:
            y[i] = 1 / (1 + np.exp(-v))
        else:
            e = np.exp(v)
            y[i] = e / (1 + e)


def tanh(x: np.ndarray):
    """tanh(x), and the Flat of x's memory."""
    return elementwise(tanh_forward, x)


@jit.kernel(parallel=True)
def tanh_forward(x, y):
    """y = tanh(x)."""
    for i in prange(x.size):
        y[i] = np.tanh(x[i])


def output_grad(kernel, g: np.ndarray, out: np.ndarray, flat: Flat) -> np.ndarray:
    """The gradient of Sigmoid or Tanh from the output ``out``: ``kernel(g, out, gx)``."""
    gv = flat.of(g)
    gx = np.empty_like(gv)
    kernel(gv, flat.of(out), gx)
    return flat.back(gx)


@jit.kernel(parallel=True)
def sigmoid_backward(g, y, gx):
    """gx = g·y·(1 − y)."""
    for i in prange(g.size):
        gx[i] = g[i] * y[i] * (1 - y[i])


@jit.kernel(parallel=True)
def tanh_backward(g, y, gx):
    """gx = g·(1 − y²)."""
    for i in prange(g.size):
        gx[i] = g[i] * (1 - y[i] * y[i])
