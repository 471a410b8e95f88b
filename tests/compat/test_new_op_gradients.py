"""The operations added for PyTorch's tensor surface, against central differences in float64
(their agreement with PyTorch is in test_tensor_api.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_gradients

import kernelab as kl

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
MASK = RNG.random((3, 4)) > 0.5
C = RNG.standard_normal((3, 1))

CASES = {
    "clone": (lambda x: x.clone() * x, [X]),
    "clamp": (lambda x: x.clamp(-0.5, 0.5) * x, [X]),
    "clamp_min": (lambda x: x.clamp(min=0.1), [X]),
    "where": (lambda x, y: kl.where(kl.tensor(MASK), x, y), [X, Y]),
    "where_broadcast": (lambda x, c: kl.where(kl.tensor(MASK), x, c), [X, C]),
    "where_scalar": (lambda x: kl.where(x > 0, x * x, 0.5), [X]),
    "maximum": (lambda x, y: kl.maximum(x, y), [X, Y]),
    "minimum_broadcast": (lambda x, c: kl.minimum(x, c), [X, C]),
    "var": (lambda x: x.var(1), [X]),
    "var_all_biased": (lambda x: x.var(unbiased=False), [X]),
    "std": (lambda x: x.std(0, keepdim=True), [X]),
    "max": (lambda x: x.max(), [X]),
    "norm": (lambda x: x.norm(), [X]),
    "norm_dim_keepdim": (lambda x: x.norm(dim=1, keepdim=True), [X]),
    "norm_1": (lambda x: x.norm(1, dim=0), [X]),
    "norm_3": (lambda x: x.norm(3), [X]),
    "amax": (lambda x: x.amax(0), [X]),
    "amin_keepdim": (lambda x: x.amin(1, keepdim=True), [X]),
    "max_dim": (lambda x: x.max(1).values, [X]),
    "min_dim_keepdim": (lambda x: x.min(0, keepdim=True).values, [X]),
    "topk": (lambda x: x.topk(2, dim=1).values, [X]),
    "sort": (lambda x: x.sort(0, descending=True).values, [X]),
    "cat": (lambda x, c: kl.cat([x, c, x], dim=1), [X, C]),
    "stack": (lambda x, y: kl.stack([x, y], dim=1), [X, Y]),
    "expand": (lambda c: c.expand(2, 3, 5), [C]),
    "repeat": (lambda x: x.repeat(2, 1, 3), [X]),
    "squeeze_unsqueeze": (lambda c: c.unsqueeze(0).squeeze(-1), [C]),
    "masked_fill": (lambda x: x.masked_fill(kl.tensor(MASK), 2.0), [X]),
}


@pytest.mark.parametrize("name", CASES)
def test_gradient_matches_central_differences(name):
    fn, inputs = CASES[name]
    check_gradients(fn, inputs)


def test_tied_maxima_share_the_gradient_and_max_dim_picks_the_first():
    x = kl.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])
    x.grad = None
    values, indices = x.max(1)
    values.sum().backward()
    assert indices.tolist() == [1, 0]
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
