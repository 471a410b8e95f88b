"""products: matrix products split over kernelab's threads (BLAS on one thread in each) or
made on one BLAS thread, against PyTorch; the NumPy path gives big ones to BLAS's threads."""

import contextlib
import importlib

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close

import kernelab as kl
from kernelab.core import jit

products = importlib.import_module("kernelab.functional.products")

TOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture
def record(monkeypatch):
    """The ranges each pool run got and the one-BLAS-thread blocks entered."""
    seen = {"ranges": [], "one_thread": 0}

    @contextlib.contextmanager
    def one_thread():
        seen["one_thread"] += 1
        yield

    monkeypatch.setattr(products, "one_blas_thread", one_thread)
    if jit.active():
        pool = importlib.import_module("kernelab.functional.conv_compiled")
        run = pool.run

        def recorded(task, ranges):
            seen["ranges"].append(list(ranges))
            return run(task, ranges)

        monkeypatch.setattr(pool, "run", recorded)
    return seen


def torch_matmul(a, b):
    return torch.matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((2, 130, 300), (300, 257)),  # a stack of rows times a matrix: 20 million multiply-adds
        ((3, 1, 70, 200), (4, 200, 201)),  # broadcast stacks: 33.8 million
        ((1, 500, 300), (5, 300, 40)),  # a stack of one against five
        ((1, 3, 100, 300), (3, 300, 200)),  # split along the second axis: 18 million
        ((1, 1, 300, 300), (1, 300, 200)),  # one matrix each, split by rows: 18 million
    ],
)
def test_big_products_split_between_threads_and_match_pytorch(
    record, threads, dtype, a_shape, b_shape
):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    out = products.matmul(a, b)
    assert out.dtype == dtype
    assert_rel_close(out, torch_matmul(a, b), TOL[dtype], "product")
    if jit.active() and threads == 2:
        (ranges,) = record["ranges"]
        assert len(ranges) == 2 and record["one_thread"] == 0
        stack = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        longer = [size for size in stack if size > 1]
        split = int(np.prod(a_shape[:-1])) if len(b_shape) == 2 else (longer or [a_shape[-2]])[0]
        assert ranges[0][0] == 0 and ranges[0][1] == ranges[1][0] and ranges[1][1] == split
    elif jit.active():
        assert record["ranges"] == [] and record["one_thread"] == 1
    else:  # the NumPy path: BLAS's own threads
        assert record == {"ranges": [], "one_thread": 0}


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((64, 3136), (3136, 10)), ((7,), (7, 3)), ((4, 5, 6), (6,)), ((6,), (6,)), ((0, 8), (8, 3))],
)
def test_small_products_and_vectors_stay_on_one_blas_thread(record, threads, a_shape, b_shape):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    out = products.matmul(a, b)
    assert out.shape == np.matmul(a, b).shape
    assert_rel_close(out, torch_matmul(a, b), TOL[np.float64], "product")
    assert record == {"ranges": [], "one_thread": 1}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_dense_layer_big_enough_to_share_matches_pytorch(threads, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((96, 700)).astype(dtype)  # 96 · 700 · 300: 20 million
    w, bias = rng.standard_normal((300, 700)).astype(dtype), rng.standard_normal(300).astype(dtype)
    gy = rng.standard_normal((96, 300)).astype(dtype)
    ours = [kl.tensor(v, requires_grad=True) for v in (x, w, bias)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (x, w, bias)]
    y, ty = kl.nn.functional.linear(*ours), torch.nn.functional.linear(*theirs)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=True):
        assert_rel_close(a.grad.array, t.grad.numpy(), TOL[dtype], f"grad {name}")


def test_stacked_matmul_gradients_big_enough_to_share_match_pytorch(threads):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, 1, 60, 200)), rng.standard_normal((3, 200, 250))
    ka, kb = kl.tensor(a, requires_grad=True), kl.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (ka @ kb).sum().backward()
    (ta @ tb).sum().backward()
    assert_rel_close(ka.grad.array, ta.grad.numpy(), TOL[np.float64], "grad a")
    assert_rel_close(kb.grad.array, tb.grad.numpy(), TOL[np.float64], "grad b")
