"""Symmetric kernels (kernelab.kernels.constraints): orbit maps against symmetry conditions
and counts written here, the build P(θ) and its gradient against central differences and PyTorch."""

from pathlib import Path

import numpy as np
import pytest
import torch
from gradcheck import check_gradients

import kernelab as kl
import kernelab.functional as F
import kernelab.kernels.constraints as C

torch.set_num_threads(1)

TYPES = ["x", "y", "xy", "point", "antipoint", "rot90"]
SQUARE = [(k, k) for k in range(2, 8)]
NON_SQUARE = [(2, 3), (3, 2), (3, 5), (4, 7), (6, 5), (1, 4)]


def sizes_for(symmetry):
    return SQUARE + ([] if symmetry == "rot90" else NON_SQUARE)


ALL_CASES = [(s, size) for s in TYPES for size in sizes_for(s)]


def is_symmetric(w, symmetry) -> bool:
    """The defining condition, written out with NumPy's flips: exact equality, no tolerance."""
    ud, lr, rot180 = w[..., ::-1, :], w[..., :, ::-1], w[..., ::-1, ::-1]
    return {
        "x": lambda: np.array_equal(w, ud),
        "y": lambda: np.array_equal(w, lr),
        "xy": lambda: np.array_equal(w, ud) and np.array_equal(w, lr),
        "point": lambda: np.array_equal(w, rot180),
        "antipoint": lambda: np.array_equal(w, -rot180),
        "rot90": lambda: np.array_equal(w, np.rot90(w, 1, axes=(-2, -1))),
    }[symmetry]()


def group_average(w, symmetry):
    """The symmetric part, written out member by member."""
    ud, lr, rot180 = w[..., ::-1, :], w[..., :, ::-1], w[..., ::-1, ::-1]
    if symmetry == "x":
        return (w + ud) / 2
    if symmetry == "y":
        return (w + lr) / 2
    if symmetry == "xy":
        return (w + ud + lr + rot180) / 4
    if symmetry == "point":
        return (w + rot180) / 2
    if symmetry == "antipoint":
        return (w - rot180) / 2
    return sum(np.rot90(w, q, axes=(-2, -1)) for q in range(4)) / 4


def burnside_count(symmetry, size) -> int:
    """dim{W : W = s·T(W) for all (T, s)} = (1/|G|) Σ_g s_g · (#cells g leaves in place).

    The trace of the group-average projection, counted on an array of cell numbers.
    """
    cells = np.arange(size[0] * size[1]).reshape(size)
    ud, lr, rot180 = cells[::-1, :], cells[:, ::-1], cells[::-1, ::-1]
    group = {
        "x": [(cells, 1), (ud, 1)],
        "y": [(cells, 1), (lr, 1)],
        "xy": [(cells, 1), (ud, 1), (lr, 1), (rot180, 1)],
        "point": [(cells, 1), (rot180, 1)],
        "antipoint": [(cells, 1), (rot180, -1)],
        "rot90": [(np.rot90(cells, q), 1) for q in range(4)],
    }[symmetry]
    total = sum(s * int((moved == cells).sum()) for moved, s in group)
    assert total % len(group) == 0
    return total // len(group)


# ---- counts
HAND_COUNTS = {
    # 5x5 (from the issue): rows {0,4},{1,3},{2} → 3 row classes × 5 columns for x, etc.
    (5, 5): {"x": 15, "y": 15, "xy": 9, "point": 13, "antipoint": 12, "rot90": 7},
    # 3x3: point keeps the centre + 4 pairs; antipoint zeroes the centre; rot90: corners,
    # edge midpoints, centre.
    (3, 3): {"x": 6, "y": 6, "xy": 4, "point": 5, "antipoint": 4, "rot90": 3},
    # 4x4 has no centre cell: every orbit of rot90 has 4 cells, of point/antipoint 2.
    (4, 4): {"x": 8, "y": 8, "xy": 4, "point": 8, "antipoint": 8, "rot90": 4},
    # 2x3: x pairs the two rows (3 params); y pairs columns 0 and 2 (2 rows × 2 classes).
    (2, 3): {"x": 3, "y": 4, "xy": 2, "point": 3, "antipoint": 3},
}


@pytest.mark.parametrize("size", list(HAND_COUNTS))
def test_free_parameter_counts_by_hand(size):
    for symmetry, count in HAND_COUNTS[size].items():
        assert C.num_free(symmetry, size) == count, symmetry
    assert C.num_free(None, size) == size[0] * size[1]


def test_closed_forms_in_the_docs():
    half_up = lambda n: (n + 1) // 2  # noqa: E731
    for kh in range(1, 9):
        for kw in range(1, 9):
            size = (kh, kw)
            assert C.num_free("x", size) == half_up(kh) * kw
            assert C.num_free("y", size) == kh * half_up(kw)
            assert C.num_free("xy", size) == half_up(kh) * half_up(kw)
            assert C.num_free("point", size) == half_up(kh * kw)
            if size != (1, 1):
                assert C.num_free("antipoint", size) == kh * kw // 2
        assert C.num_free("rot90", (kh, kh)) == (kh * kh + 3) // 4


@pytest.mark.parametrize("symmetry, size", ALL_CASES)
def test_orbit_map_spans_exactly_the_symmetric_kernels(symmetry, size):
    orbits = C.orbits(symmetry, size)
    assert orbits.n_free == burnside_count(symmetry, size)
    # P maps the unit vectors to symmetric kernels that are linearly independent, and there
    # are as many as the symmetric subspace has dimensions: P is a bijection onto it.
    basis = C.expand(kl.tensor(np.eye(orbits.n_free)), orbits).array  # (n_free, kH, kW)
    assert is_symmetric(basis, symmetry)
    assert np.linalg.matrix_rank(basis.reshape(orbits.n_free, -1)) == orbits.n_free
    assert set(np.unique(orbits.sign)) <= {-1, 0, 1}
    assert np.array_equal(orbits.sign != 0, np.abs(basis).sum(axis=0) > 0)


@pytest.mark.parametrize("symmetry, size", ALL_CASES)
def test_project_is_the_group_average(symmetry, size):
    w = np.random.default_rng(0).standard_normal((3, 2) + size)
    orbits = C.orbits(symmetry, size)
    average = group_average(w, symmetry)
    np.testing.assert_allclose(C.expand(C.project(w, orbits), orbits).array, average, atol=1e-15)
    np.testing.assert_allclose(C.symmetrize(w, symmetry), average, atol=1e-15)
    # on a symmetric kernel, project inverts expand
    theta = w.reshape(6, -1)[:, : orbits.n_free].reshape(3, 2, -1)
    np.testing.assert_allclose(C.project(C.expand(theta, orbits), orbits), theta, atol=1e-15)


def test_forced_zero_centre_of_odd_antipoint_kernels():
    orbits = C.orbits("antipoint", (5, 5))
    assert orbits.sign[2, 2] == 0 and np.count_nonzero(orbits.sign == 0) == 1
    w = C.expand(kl.tensor(np.full((1, 1, 12), np.inf)), orbits).array
    assert w[0, 0, 2, 2] == 0  # a gather, not a product with 0: no NaN leaks into the centre


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="'x', 'y', 'xy', 'point', 'antipoint', 'rot90'"):
        C.orbits("mirror", (3, 3))
    with pytest.raises(ValueError, match="square kernel, got 3x5"):
        C.orbits("rot90", (3, 5))
    with pytest.raises(ValueError, match="1x1"):
        C.orbits("antipoint", (1, 1))
    with pytest.raises(ValueError, match="kernels of size"):
        C.project(np.zeros((2, 3, 3)), C.orbits("x", (5, 5)))


# ---- gradients
GRADIENT_CASES = [
    (s, size) for s in TYPES for size in [(3, 3), (4, 4), (2, 3)] if s != "rot90" or size != (2, 3)
]


@pytest.mark.parametrize("symmetry, size", GRADIENT_CASES)
def test_gradient_matches_central_differences(symmetry, size):
    orbits = C.orbits(symmetry, size)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((3, 2, orbits.n_free))
    x = rng.standard_normal((2, 2, 6, 5))
    target = rng.standard_normal((2, 3, 6, 5))

    def loss(theta, x):
        kernel = C.expand(theta, orbits)
        y = F.conv2d(x, kernel, None, stride=1, padding="same")
        return F.mse_loss(y, kl.Tensor(target[:, :, : y.shape[2], : y.shape[3]]))

    check_gradients(loss, [theta, x])


def torch_symmetric_conv(theta, orbits, x, bias, stride, padding, dilation, groups):
    """The same parametrisation written in PyTorch: W = sign · θ[..., index], then conv2d."""
    index = torch.tensor(orbits.index.ravel())
    sign = torch.tensor(orbits.sign.ravel(), dtype=theta.dtype)
    kernel = (theta[..., index] * sign).reshape(theta.shape[:2] + orbits.kernel_size)
    return torch.nn.functional.conv2d(x, kernel, bias, stride, padding, dilation, groups)


TORCH_CASES = [
    # (symmetry, kernel size, C_in, C_out, stride, padding, dilation, groups)
    ("x", (5, 3), 3, 4, 1, 2, 1, 1),
    ("y", (3, 4), 2, 4, (2, 1), 1, 1, 2),
    ("xy", (4, 4), 4, 2, 2, (1, 2), (1, 2), 1),
    ("point", (5, 5), 2, 6, 1, 2, 1, 2),
    ("antipoint", (3, 3), 3, 3, 1, 1, 2, 3),
    ("antipoint", (2, 4), 2, 2, 1, 0, 1, 1),
    ("rot90", (7, 7), 1, 3, 2, 3, 1, 1),
    ("rot90", (2, 2), 2, 4, 1, 0, 1, 1),
]


@pytest.mark.parametrize(
    "symmetry, size, c_in, c_out, stride, padding, dilation, groups", TORCH_CASES
)
def test_gradient_matches_pytorch(symmetry, size, c_in, c_out, stride, padding, dilation, groups):
    rng = np.random.default_rng(2)
    conv = kl.nn.Conv2d(
        c_in, c_out, size, stride, padding, dilation, groups, symmetry=symmetry, generator=3
    ).double()
    conv.weight_free.array[...] = rng.standard_normal(conv.weight_free.shape)
    x = rng.standard_normal((2, c_in, 9, 8))
    xk = kl.tensor(x, requires_grad=True)
    y = conv(xk)
    u = rng.standard_normal(y.shape)
    y.backward(u)

    theta_t = torch.tensor(conv.weight_free.array, requires_grad=True)
    bias_t = torch.tensor(conv.bias.array, requires_grad=True)
    x_t = torch.tensor(x, requires_grad=True)
    orbits = C.orbits(symmetry, size)
    y_t = torch_symmetric_conv(theta_t, orbits, x_t, bias_t, stride, padding, dilation, groups)
    y_t.backward(torch.tensor(u))

    np.testing.assert_allclose(y.array, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight_free.grad, theta_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, bias_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xk.grad, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---- the documented table
def test_docs_table_is_the_generated_one():
    page = Path(__file__).parents[1] / "docs" / "symmetric-kernels.md"
    assert C.free_parameter_table(range(2, 8)) in page.read_text()
