"""Every optimiser against torch.optim: same parameters, same gradients, step by step."""

import numpy as np
import pytest
import torch

import kernelab.optim as optim
from kernelab.core.tensor import Tensor

SHAPES = [(4, 3, 3, 3), (5, 7), (5,)]  # a conv kernel, a linear weight, a bias

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"alpha": 0.9, "eps": 1e-6, "centered": True, "maximize": True}),
    ("RMSprop", {"lr": 0.001, "momentum": 0.5}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {"rho": 0.0}),  # both ends of rho's range, as torch takes them
    ("Adadelta", {"rho": 1.0}),
    ("Adagrad", {}),
    (
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
    ),
    ("Adagrad", {"eps": 1e-6, "maximize": True}),
    ("Adagrad", {"weight_decay": 1.0}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 1.0, "decoupled_weight_decay": True}),
    (
        "NAdam",
        {
            "betas": (0.8, 0.99),
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "momentum_decay": 0.01,
            "maximize": True,
        },
    ),
]


def _groups(params, lr_scale):
    """Two groups, the second with its own learning rate, to exercise per-group options."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr_scale}]


def _run_side_by_side(name, options, dtype, steps=10, seed=0):
    """Yield (ours, torch's) parameter arrays after each step on the same gradients."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    lr = options.get("lr", getattr(torch.optim, name)([torch.zeros(1)]).defaults["lr"])
    opt = getattr(optim, name)(_groups(ours, 0.5 * lr), **options)
    ref = getattr(torch.optim, name)(_groups(theirs, 0.5 * lr), **options)
    for step in range(steps):
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            if i == 2 and step % 3 == 2:  # no gradient this step: skipped, its state waits
                p.grad, q.grad = None, None
                continue
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = Tensor(g)
            q.grad = torch.from_numpy(g.copy())
        opt.step()
        ref.step()
        yield [p.array for p in ours], [q.detach().numpy() for q in theirs]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_matches_torch_float64(name, options, torch_float64):
    for ours, theirs in _run_side_by_side(name, options, np.float64):
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_float32_stays_float32(name):
    options = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    for ours, theirs in _run_side_by_side(name, options, np.float32, steps=5):
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_state_arrays_keep_float32(name):
    p = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    options = {"momentum": 0.9, "centered": True} if name == "RMSprop" else {}
    options = {"momentum": 0.9} if name == "SGD" else options
    opt = getattr(optim, name)([p], **options)
    p.grad = Tensor(np.full((2, 3), 0.5, np.float32))
    opt.step()
    assert p.array.dtype == np.float32
    for value in opt.state[p].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32
        else:
            assert type(value) in (int, float)  # step counters and mu_product stay Python numbers


def test_defaults_match_torch():
    p = torch.zeros(1)
    for name in sorted({n for n, _ in CASES}):
        ours = getattr(optim, name)([Tensor(np.zeros(1), requires_grad=True)]).defaults
        theirs = getattr(torch.optim, name)([p]).defaults
        for key, value in ours.items():
            assert theirs[key] == value, (name, key)


def _adam_then_adamw(lib, params, wrap, grads) -> bool:
    """Three Adam steps with L2 decay, then AdamW loads Adam's state and takes the rest;
    returns whether AdamW's group ends up decoupling its decay."""
    adam = lib.Adam(params, lr=0.05, weight_decay=0.5)
    adamw = lib.AdamW(params, lr=0.05, weight_decay=0.5)
    for step, step_grads in enumerate(grads):
        if step == 3:
            adamw.load_state_dict(adam.state_dict())
        for p, g in zip(params, step_grads, strict=True):
            p.grad = wrap(g.copy())
        (adam if step < 3 else adamw).step()
    return adamw.param_groups[0]["decoupled_weight_decay"]


def test_adamw_loading_an_adam_state_still_decouples_its_decay(torch_float64):
    """An Adam state (its groups say: decay through the gradient) loaded into AdamW continues
    as AdamW, with decoupled decay, as torch's AdamW does."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    our_flag = _adam_then_adamw(optim, ours, Tensor, grads)
    their_flag = _adam_then_adamw(torch.optim, theirs, torch.from_numpy, grads)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.array, q.detach().numpy(), rtol=1e-10, atol=1e-13)
    assert our_flag == their_flag


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_step_counts_match_torch(name):
    """Each parameter's step count, which a resumed run continues from, is torch's."""
    p = Tensor(np.ones(3), requires_grad=True)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt, ref = getattr(optim, name)([p]), getattr(torch.optim, name)([q])
    for _ in range(4):
        p.grad, q.grad = Tensor(np.full(3, 0.5)), torch.full((3,), 0.5, dtype=torch.float64)
        opt.step()
        ref.step()
    if "step" in ref.state[q]:
        assert opt.state[p]["step"] == float(ref.state[q]["step"]) == 4


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_a_parameter_in_fortran_order_is_updated_as_torch_does(name, torch_float64):
    """A parameter whose memory is not C-ordered (a transposed weight) still takes each step."""
    rng = np.random.default_rng(5)
    a = np.asfortranarray(rng.standard_normal((4, 5)))
    p, q = Tensor(a.copy(order="K"), requires_grad=True), torch.tensor(a, requires_grad=True)
    assert not p.array.flags.c_contiguous
    opt, ref = getattr(optim, name)([p]), getattr(torch.optim, name)([q])
    for _ in range(3):
        g = rng.standard_normal(a.shape)
        p.grad, q.grad = Tensor(g), torch.from_numpy(g.copy())
        opt.step()
        ref.step()
    np.testing.assert_allclose(p.array, q.detach().numpy(), rtol=1e-10, atol=1e-13)
