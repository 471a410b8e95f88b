"""The compiled SGD and Adam updates against the NumPy path and torch.optim, step by step."""

import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelab as kl
import kernelab.optim as optim
from kernelab.core.tensor import Tensor

# Against the NumPy path the rounding is the same operation by operation; against torch only
# the order of a few operations differs.
SAME = {np.float64: 1e-12, np.float32: 1e-6}
TORCH = {np.float64: 1e-9, np.float32: 2e-4}
SHAPES = [(4, 3, 3, 3), (7, 5), (5,), ()]  # a conv kernel, a linear weight, a bias, a scalar


@pytest.fixture(autouse=True)
def _on_both_kernel_paths():
    """Each test here runs both paths itself, side by side."""
    yield


sgd_options = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([0.1, 0.01]),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "dampening": st.sampled_from([0.0, 0.3]),
        "weight_decay": st.sampled_from([0.0, 0.01]),
        "nesterov": st.booleans(),
        "maximize": st.booleans(),
    }
).map(lambda o: o | {"dampening": 0.0} if o["nesterov"] else o)
sgd_options = sgd_options.map(lambda o: o | {"momentum": 0.9} if o["nesterov"] else o)

adam_options = st.fixed_dictionaries(
    {
        "lr": st.sampled_from([1e-3, 0.05]),
        "betas": st.sampled_from([(0.9, 0.999), (0.8, 0.99)]),
        "eps": st.sampled_from([1e-8, 1e-6]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "amsgrad": st.booleans(),
        "maximize": st.booleans(),
        "decoupled_weight_decay": st.booleans(),
    }
)


def run(path, name, options, arrays, grads):
    """Parameters after each step of kernelab's ``name`` on one kernel path."""
    params = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    history = []
    with kl.backends.kernels.using(path):
        opt = getattr(optim, name)(params, **options)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = Tensor(g)
            opt.step()
            history.append([p.array.copy() for p in params])
    return history


def run_torch(name, options, arrays, grads):
    """The same with torch.optim (Adam's step counter in the parameters' dtype)."""
    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    history = []
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if arrays[0].dtype == np.float64 else torch.float32)
    try:
        opt = getattr(torch.optim, name)(params, **options)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = None if g is None else torch.from_numpy(g.copy())
            opt.step()
            history.append([p.detach().numpy().copy() for p in params])
    finally:
        torch.set_default_dtype(previous)
    return history


def check(name, options, dtype, seed, steps=4):
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(rng.standard_normal(s), dtype) for s in SHAPES]
    grads = [[np.asarray(rng.standard_normal(s), dtype) for s in SHAPES] for _ in range(steps)]
    compiled = run("numba", name, options, arrays, grads)
    reference = run("numpy", name, options, arrays, grads)
    theirs = run_torch(name, options, arrays, grads)
    for ours, same, other in zip(compiled, reference, theirs, strict=True):
        for a, b, t in zip(ours, same, other, strict=True):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b, rtol=SAME[dtype], atol=SAME[dtype])
            np.testing.assert_allclose(a, t, rtol=TORCH[dtype], atol=TORCH[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=20)  # three optimisers per example: keep the file to seconds
@given(options=sgd_options, seed=st.integers(0, 2**16))
def test_sgd_matches_numpy_and_torch(dtype, options, seed):
    check("SGD", options, dtype, seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=20)
@given(options=adam_options, seed=st.integers(0, 2**16))
def test_adam_matches_numpy_and_torch(dtype, options, seed):
    check("Adam", options, dtype, seed)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_non_contiguous_parameter_takes_the_numpy_path(name):
    memory = np.arange(12.0).reshape(3, 4)
    p = Tensor(memory.T, requires_grad=True)  # a transposed view: no flat view of it exists
    p.grad = Tensor(np.ones((4, 3)))
    with kl.backends.kernels.using("numba"):
        getattr(optim, name)([p], lr=0.5, **({"momentum": 0.9} if name == "SGD" else {})).step()
    moved = np.arange(12.0).reshape(3, 4).T - 0.5
    np.testing.assert_allclose(p.array, moved, rtol=1e-7)


# mixed shapes, 9000 elements in all: more than one task's chunk of the one-launch kernels
GROUP_SHAPES = [(4, 3, 3, 3), (7, 5), (5,), (), (3, 2900), (2,)]
ONE_LAUNCH = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.05, "amsgrad": True, "maximize": True}),
]


def without_some(grads):
    """The gradients with None where a parameter has none: parameter 1 for the first two
    steps (its state starts later than the others'), the last parameter always."""
    return [
        [None if (i == 1 and step < 2) or i == len(gs) - 1 else g for i, g in enumerate(gs)]
        for step, gs in enumerate(grads)
    ]


def run_group(path, name, options, arrays, grads, one_group):
    """Parameters after each step, all in one group or each in a group of its own (then the
    compiled path launches one kernel per parameter)."""
    params = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    groups = [{"params": params}] if one_group else [{"params": [p]} for p in params]
    history = []
    with kl.backends.kernels.using(path):
        opt = getattr(optim, name)(groups, **options)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = None if g is None else Tensor(g)
            opt.step()
            history.append([p.array.copy() for p in params])
    return history


def counting(monkeypatch, name):
    """Count the calls of the compiled kernel ``name`` (sgd or adam)."""
    module = importlib.import_module("kernelab.optim.updates_compiled")
    calls = []
    kernel = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args: calls.append(1) or kernel(*args))
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, options", ONE_LAUNCH)
def test_a_group_in_one_launch_moves_as_one_launch_per_parameter(name, options, dtype, monkeypatch):
    """Bit for bit as the per-parameter launches and the NumPy path; near torch.optim."""
    rng = np.random.default_rng(7)
    arrays = [np.asarray(rng.standard_normal(s), dtype) for s in GROUP_SHAPES]
    grads = [[np.asarray(rng.standard_normal(s), dtype) for s in GROUP_SHAPES] for _ in range(4)]
    grads = without_some(grads)
    calls = counting(monkeypatch, "sgd" if name == "SGD" else "adam")
    together = run_group("numba", name, options, arrays, grads, one_group=True)
    assert len(calls) == len(grads)  # one launch a step
    apart = run_group("numba", name, options, arrays, grads, one_group=False)
    reference = run_group("numpy", name, options, arrays, grads, one_group=True)
    for ours, theirs, same in zip(together, apart, reference, strict=True):
        for a, b, c in zip(ours, theirs, same, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(together[-1][-1], arrays[-1])  # never had a gradient
    for a, t in zip(together[-1], run_torch(name, options, arrays, grads)[-1], strict=True):
        np.testing.assert_allclose(a, t, rtol=TORCH[dtype], atol=TORCH[dtype])


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_group_of_mixed_dtypes_takes_a_launch_per_dtype(name, monkeypatch):
    """float32 and float64 parameters in one group: a launch for each dtype; a float16 one,
    which no kernel takes, moves on the NumPy path. All bit for bit as the NumPy path."""
    rng = np.random.default_rng(3)
    dtypes = [np.float32, np.float64, np.float32, np.float16, np.float64]
    arrays = [np.asarray(rng.standard_normal((3, 4)), d) for d in dtypes]
    grads = [[np.asarray(rng.standard_normal((3, 4)), d) for d in dtypes] for _ in range(3)]
    options = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.05, "eps": 1e-3}
    calls = counting(monkeypatch, name.lower())
    together = run_group("numba", name, options, arrays, grads, one_group=True)
    assert len(calls) == 2 * len(grads)
    reference = run_group("numpy", name, options, arrays, grads, one_group=True)
    for ours, same in zip(together, reference, strict=True):
        for a, b, dtype in zip(ours, same, dtypes, strict=True):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_read_only_parameter_is_refused_as_numpy_refuses_it(name):
    """The kernels write through addresses; a read-only array goes the NumPy path, which
    raises instead of writing into it."""
    frozen = np.ones(4)
    frozen.flags.writeable = False
    p = Tensor(frozen, requires_grad=True)
    p.grad = Tensor(np.ones(4))
    with kl.backends.kernels.using("numba"), pytest.raises(ValueError, match="read-only"):
        getattr(optim, name)([p], lr=0.5).step()
    np.testing.assert_array_equal(frozen, np.ones(4))


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_kept_address_table_follows_new_arrays(name):
    """The compiled path reuses a group's address table between steps: a parameter given new
    memory (``.data =``), restored state and a deep copy of the optimiser each update their
    own arrays, as the NumPy path does."""
    import copy

    options = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.1}
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3,)]]
    runs = {}
    for path in ["numba", "numpy"]:
        params = [Tensor(a.copy(), requires_grad=True) for a in start]
        with kl.backends.kernels.using(path):
            opt = getattr(optim, name)(params, **options)

            def step(params=params, opt=opt):
                for p in params:
                    p.grad = Tensor(np.ones_like(p.array) * p.array)
                opt.step()

            step()
            step()
            params[0].data = Tensor(params[0].array * 2)  # new memory for the first
            step()
            twin_params, twin = copy.deepcopy((params, opt))
            step()
            for p in twin_params:
                p.grad = Tensor(np.ones_like(p.array))
            twin.step()
            opt.load_state_dict(opt.state_dict())  # new state arrays
            step()
            seen = [p.array.copy() for p in params + twin_params]
        runs[path] = seen
    for fast, reference in zip(runs["numba"], runs["numpy"], strict=True):
        np.testing.assert_allclose(fast, reference, rtol=SAME[np.float32], atol=1e-7)


def test_an_unhashable_optimiser_still_updates_on_the_compiled_path():
    """A subclass that defines ``__eq__`` (and so no hash) cannot key a kept address table:
    it tabulates every step and moves its parameters as SGD does."""

    class Compared(optim.SGD):
        def __eq__(self, other):
            return self is other

    start = np.arange(6, dtype=np.float32).reshape(2, 3)
    moved = []
    for cls in (optim.SGD, Compared):
        p = Tensor(start.copy(), requires_grad=True)
        with kl.backends.kernels.using("numba"):
            opt = cls([p], lr=0.1, momentum=0.9)
            for _ in range(3):
                p.grad = Tensor(np.ones_like(start))
                opt.step()
        moved.append(p.array)
    np.testing.assert_array_equal(moved[0], moved[1])


@pytest.mark.parametrize("name, options", ONE_LAUNCH)
def test_a_group_shared_between_threads_moves_as_on_the_numpy_path(name, options, threads):
    """Parameters of 220,000 elements (27 tasks, claimed by whichever thread comes first):
    bit for bit the NumPy path's steps, at one thread and at two; near torch.optim's."""
    rng = np.random.default_rng(8)
    shapes = [(300, 500), (7,), (64, 1100), (3,)]
    arrays = [np.asarray(rng.standard_normal(s), np.float32) for s in shapes]
    grads = [[np.asarray(rng.standard_normal(s), np.float32) for s in shapes] for _ in range(3)]
    grads = without_some(grads)
    shared = run_group("numba", name, options, arrays, grads, one_group=True)
    reference = run_group("numpy", name, options, arrays, grads, one_group=True)
    for ours, theirs in zip(shared, reference, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    tol = TORCH[np.float32]
    for a, t in zip(shared[-1], run_torch(name, options, arrays, grads)[-1], strict=True):
        np.testing.assert_allclose(a, t, rtol=tol, atol=tol)
