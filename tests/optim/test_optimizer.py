"""The Optimizer base: groups, skipping, zero_grad, closures, and the state_dict round trip."""

import numpy as np
import pytest
import torch

import kernelab.optim as optim
from kernelab import nn
from kernelab.core.tensor import Tensor

CONFIGS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"momentum": 0.9, "centered": True}),
    ("Adadelta", {}),
    ("Adagrad", {"lr_decay": 0.01}),
    ("NAdam", {"weight_decay": 0.1}),
]


def _params(rng, dtype=np.float64):
    return [
        Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
        for s in [(3, 2, 3, 3), (4, 5), (4,)]
    ]


def _train(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = None if g is None else Tensor(g.copy())
        opt.step()


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=[n for n, _ in CONFIGS])
def test_state_dict_resume_is_bit_exact(name, options, checkpoint):
    rng = np.random.default_rng(1)
    start = [rng.standard_normal(s) for s in [(3, 2, 3, 3), (4, 5), (4,)]]
    # parameter 2 misses a gradient now and then, so the step counters differ
    grads = [
        [
            rng.standard_normal(a.shape) if (i, k % 4) != (2, 3) else None
            for i, a in enumerate(start)
        ]
        for k in range(10)
    ]

    def fresh(arrays, **opts):
        params = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}]
        return params, getattr(optim, name)(groups, **opts)

    straight, opt = fresh(start, **options)
    _train(opt, straight, grads)

    first, opt = fresh(start, **options)
    _train(opt, first, grads[:4])
    saved_params = [p.array.copy() for p in first]
    saved = checkpoint(opt.state_dict())
    _train(opt, first, grads[4:6])  # the snapshot must not move on with these

    resumed, opt = fresh(saved_params, lr=0.5)  # other options: the checkpoint's must win
    opt.load_state_dict(saved)
    assert opt.param_groups[1]["lr"] == 0.02
    _train(opt, resumed, grads[4:])
    for p, q in zip(resumed, straight, strict=True):
        assert np.array_equal(p.array, q.array)


def test_state_dict_structure():
    rng = np.random.default_rng(0)
    params = _params(rng)
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], amsgrad=True)
    for p in params[:2]:
        p.grad = Tensor(np.ones(p.shape))
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sorted(sd["state"]) == [0, 1]  # parameter 2 never had a gradient: no state
    assert sd["state"][0]["step"] == 1 and type(sd["state"][0]["step"]) is int
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][1]["lr"] == 0.1
    assert sd["param_groups"][0]["betas"] == [0.9, 0.999]
    sd["state"][0]["exp_avg"][...] = 7.0  # a copy: the optimiser is untouched
    assert not np.any(opt.state[params[0]]["exp_avg"] == 7.0)
    # torch numbers parameters and lays out groups the same way
    ref = torch.optim.Adam(
        [{"params": [torch.zeros(2), torch.zeros(2)]}, {"params": [torch.zeros(2)], "lr": 0.1}]
    ).state_dict()
    assert [g["params"] for g in ref["param_groups"]] == [[0, 1], [2]]


def test_load_state_dict_restores_tuples_and_casts_dtype(checkpoint):
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.Adam([p], betas=(0.5, 0.6))
    p.grad = Tensor(np.ones(3, np.float32))
    opt.step()
    saved = checkpoint(opt.state_dict())
    saved["state"]["0"]["exp_avg"] = saved["state"]["0"]["exp_avg"].astype(np.float64)
    saved["state"]["0"]["step"] = np.asarray(1)
    fresh = optim.Adam([p])
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["betas"] == (0.5, 0.6)
    assert fresh.state[p]["exp_avg"].dtype == np.float32
    assert fresh.state[p]["step"] == 1 and type(fresh.state[p]["step"]) is int


def test_load_state_dict_rejects_mismatches():
    a, b = (Tensor(np.zeros(s), requires_grad=True) for s in [(2,), (3,)])
    opt = optim.SGD([a, b], momentum=0.9)
    a.grad, b.grad = Tensor(np.ones(2)), Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="expected 2 parameter groups, got 1"):
        optim.SGD([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected 1 parameters in group 0, got 2"):
        optim.SGD([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"has shape \(2,\), expected \(3,\)"):
        optim.SGD([b, a]).load_state_dict(sd)


def test_skips_frozen_and_gradless_parameters():
    frozen = Tensor(np.ones(3), requires_grad=False)
    frozen.grad = Tensor(np.ones(3))
    gradless = Tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([frozen, gradless], lr=0.1)
    opt.step()
    assert np.array_equal(frozen.array, np.ones(3))
    assert np.array_equal(gradless.array, np.ones(3))
    assert opt.state_dict()["state"] == {}


def test_updates_in_place_and_leaves_grad_alone():
    p = Tensor(np.ones((2, 3)), requires_grad=True)
    view = p.array[0]  # a layer may hold a view of its parameter
    grad = np.full((2, 3), 0.5)
    p.grad = Tensor(grad)
    for make in (optim.SGD, optim.Adam, optim.NAdam, optim.RMSprop):
        make([p], lr=0.1, weight_decay=0.1, maximize=True).step()
    assert p.grad.array is grad and np.array_equal(grad, np.full((2, 3), 0.5))
    assert np.array_equal(view, p.array[0]) and view.base is p.array
    assert not np.array_equal(view, np.ones(3))


def test_zero_grad():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p])
    p.grad = Tensor(np.ones(3))
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and np.array_equal(grad, np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_closure_is_called_and_its_loss_returned():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.5)

    def closure():
        p.grad = 2 * p.detach()
        return float(np.sum(p.array**2))

    assert opt.step(closure) == 3.0
    assert np.array_equal(p.array, np.zeros(3))


def test_param_groups_and_add_param_group():
    a, b, c = (Tensor(np.zeros(2), requires_grad=True) for _ in range(3))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [c, a]})
    with pytest.raises(ValueError, match="the same parameter twice"):
        opt.add_param_group({"params": [c, c]})
    with pytest.raises(TypeError, match="ordered collection"):
        opt.add_param_group({"params": {c}})


def test_accepts_module_parameters_and_named_parameters():
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2
    named = optim.Adam(layer.named_parameters())
    assert named.param_groups[0]["param_names"] == ["weight", "bias"]
    assert named.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ps: optim.SGD(ps, lr=-1.0), "SGD: expected lr >= 0, got -1.0"),
        (lambda ps: optim.SGD(ps, nesterov=True), "Nesterov momentum needs momentum > 0"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.9)), r"expected 0 <= betas\[0\] < 1, got 1.0"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.1), "RMSprop: expected alpha >= 0"),
        (lambda ps: optim.Adadelta(ps, rho=1.5), "expected 0 <= rho <= 1, got 1.5"),
        (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Adagrad: expected lr_decay >= 0"),
        (lambda ps: optim.NAdam(ps, momentum_decay=-1), "NAdam: expected momentum_decay >= 0"),
        (lambda ps: optim.SGD([]), "SGD got an empty parameter list"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make([Tensor(np.zeros(2), requires_grad=True)])


def test_single_tensor_is_refused():
    with pytest.raises(TypeError, match="iterable of parameters or dicts"):
        optim.SGD(Tensor(np.zeros(2), requires_grad=True))


def _options(text: str) -> dict[str, float | str]:
    """The ``    key: value`` lines of an optimiser's repr, numbers as floats."""
    lines = [line.strip().split(": ") for line in text.splitlines() if line.startswith("    ")]
    pairs = {key: value for key, value in lines}
    return {k: float(v) if v[0].isdigit() else v for k, v in pairs.items()}


def test_repr_lists_each_groups_options_as_torch_does():
    ours = optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    assert (
        repr(ours).splitlines()[:2]
        == repr(theirs).splitlines()[:2]
        == ["SGD (", "Parameter Group 0"]
    )
    mine, torchs = _options(repr(ours)), _options(repr(theirs))
    assert {"lr", "momentum", "nesterov"} <= set(mine)
    assert mine == {key: torchs[key] for key in mine}


def test_load_state_dict_keeps_the_parameter_names_it_was_given():
    """A state saved without names, loaded by an optimiser built from named parameters."""
    layer = nn.Linear(3, 2)
    named = optim.SGD(layer.named_parameters(), lr=0.1)
    named.load_state_dict(optim.SGD(layer.parameters(), lr=0.2).state_dict())
    module = torch.nn.Linear(3, 2)
    theirs = torch.optim.SGD(module.named_parameters(), lr=0.1)
    theirs.load_state_dict(torch.optim.SGD(module.parameters(), lr=0.2).state_dict())
    for group in (named.param_groups[0], theirs.param_groups[0]):
        assert group["param_names"] == ["weight", "bias"] and group["lr"] == 0.2


def test_state_dict_turns_numpy_scalars_into_python_numbers(checkpoint):
    """A rate set from NumPy arithmetic is saved as a plain number."""
    opt = optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=0.1)
    opt.param_groups[0]["lr"] = np.float32(0.25)
    group = checkpoint(opt.state_dict())["param_groups"][0]
    assert group["lr"] == 0.25 and type(group["lr"]) is float


def test_sgd_without_momentum_keeps_no_state():
    p = Tensor(np.ones(3), requires_grad=True)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt, ref = optim.SGD([p], lr=0.1), torch.optim.SGD([q], lr=0.1)
    for _ in range(2):
        p.grad, q.grad = Tensor(np.ones(3)), torch.ones(3, dtype=torch.float64)
        opt.step()
        ref.step()
    assert opt.state_dict()["state"] == ref.state_dict()["state"] == {}


def test_load_state_dict_restores_lists_as_lists_and_betas_as_a_tuple(checkpoint):
    layer, module = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours = optim.Adam(layer.named_parameters())
    ours.load_state_dict(checkpoint(optim.Adam(layer.named_parameters(), lr=0.5).state_dict()))
    theirs = torch.optim.Adam(module.named_parameters())
    theirs.load_state_dict(torch.optim.Adam(module.named_parameters(), lr=0.5).state_dict())
    for group in (ours.param_groups[0], theirs.param_groups[0]):
        assert type(group["param_names"]) is list and type(group["betas"]) is tuple
        assert group["param_names"] == ["weight", "bias"] and group["lr"] == 0.5
