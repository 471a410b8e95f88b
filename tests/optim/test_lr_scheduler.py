"""Learning-rate schedules against torch.optim.lr_scheduler, step by step, and their state_dict."""

import inspect
import math

import numpy as np
import pytest
import torch

import kernelab.optim as optim
from kernelab.core.tensor import Tensor
from kernelab.optim import lr_scheduler

STEPS = 30


class Warmup:
    """A callable object: LambdaLR saves its attributes (functions it cannot)."""

    def __init__(self, length):
        self.length = length

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.length)


CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [3, 10, 10, 25], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.001}),  # 30 steps: past T_max and back
    ("CosineAnnealingLR", {"T_max": 7}),
    ("LambdaLR", {"lr_lambda": lambda e: 0.95**e}),
    ("LambdaLR", {"lr_lambda": [Warmup(5), lambda e: 1 / (1 + e)]}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": STEPS, "anneal_strategy": "linear"}),
    ("OneCycleLR", {"max_lr": 0.5, "epochs": 3, "steps_per_epoch": 10, "three_phase": True}),
    (
        "OneCycleLR",
        {
            "max_lr": 0.5,
            "total_steps": STEPS,
            "pct_start": 0.25,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
            "base_momentum": [0.8, 0.7],
            "max_momentum": 0.9,
        },
    ),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS, "cycle_momentum": False}),
]

# ids that are the same in every process (a lambda's repr holds its address)
CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]

OPTIMIZERS = ["SGD", "Adam"]  # momentum and beta1, for OneCycleLR's cycle_momentum


def _pair(optimizer, scheduler, options):
    """The same two-group optimiser and schedule, in kernelab and in torch."""
    extra = {"momentum": 0.9} if optimizer == "SGD" else {}
    ours = getattr(optim, optimizer)(
        [
            {"params": [Tensor(np.zeros(3), requires_grad=True)]},
            {"params": [Tensor(np.zeros(2), requires_grad=True)], "lr": 0.05},
        ],
        lr=0.1,
        **extra,
    )
    theirs = getattr(torch.optim, optimizer)(
        [{"params": [torch.zeros(3)]}, {"params": [torch.zeros(2)], "lr": 0.05}], lr=0.1, **extra
    )
    return (
        getattr(lr_scheduler, scheduler)(ours, **options),
        getattr(torch.optim.lr_scheduler, scheduler)(theirs, **options),
    )


def _momenta(optimizer):
    """Each group's momentum, or its whole betas pair (OneCycleLR cycles the first only)."""
    key = "betas" if "betas" in optimizer.defaults else "momentum"
    return [tuple(g[key]) if key == "betas" else g[key] for g in optimizer.param_groups]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(("scheduler", "options"), CASES, ids=CASE_IDS)
def test_matches_torch(scheduler, options, optimizer):
    ours, theirs = _pair(optimizer, scheduler, options)
    for _ in range(STEPS):  # the same float operations in the same order: equal to the bit
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert [g["lr"] for g in ours.optimizer.param_groups] == ours.get_last_lr()
        assert _momenta(ours.optimizer) == _momenta(theirs.optimizer)
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("scheduler", sorted({n for n, _ in CASES} | {"ReduceLROnPlateau"}))
def test_default_arguments_match_torch(scheduler):
    ours = inspect.signature(getattr(lr_scheduler, scheduler)).parameters
    theirs = inspect.signature(getattr(torch.optim.lr_scheduler, scheduler)).parameters
    for name, parameter in ours.items():
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == theirs[name].default, name


@pytest.mark.parametrize(("scheduler", "options"), CASES, ids=CASE_IDS)
def test_step_counters_match_torch(scheduler, options):
    """The counters a state_dict saves are torch's, from construction on."""
    ours, theirs = _pair("SGD", scheduler, options)
    for _ in range(3):
        for key in ("last_epoch", "_step_count"):
            assert ours.state_dict()[key] == theirs.state_dict()[key], key
        theirs.optimizer.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize(("scheduler", "options"), CASES, ids=CASE_IDS)
def test_state_dict_resume(scheduler, options, checkpoint):
    def record(scheduler):
        return scheduler.get_last_lr(), _momenta(scheduler.optimizer)

    straight, _ = _pair("Adam", scheduler, options)
    expected = [record(straight)]
    for _ in range(STEPS):
        straight.step()
        expected.append(record(straight))

    first, _ = _pair("Adam", scheduler, options)
    for _ in range(12):
        first.step()
    saved_optimizer = checkpoint(first.optimizer.state_dict())
    saved_scheduler = checkpoint(first.state_dict())

    resumed, _ = _pair("Adam", scheduler, options)  # as torch: scheduler, then optimizer state
    resumed.optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    got = [record(resumed)]
    for _ in range(12, STEPS):
        resumed.step()
        got.append(record(resumed))
    assert got == expected[12:]


def test_lambda_lr_saves_callable_objects(checkpoint):
    ours, _ = _pair("SGD", "LambdaLR", {"lr_lambda": [Warmup(5), lambda e: 1.0]})
    state = checkpoint(ours.state_dict())
    assert state["lr_lambdas"] == [{"length": 5}, None]
    ours.lr_lambdas[0].length = 99
    ours.load_state_dict(state)
    assert ours.lr_lambdas[0].length == 5


METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.8, 0.81, 0.82, 0.83, 0.84, 0.7]
METRICS = METRICS + [0.7 + 0.001 * i for i in range(17)]

PLATEAU_CASES = [
    {},
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "factor": 0.5, "cooldown": 2, "threshold": 0.05},
    {"mode": "max", "patience": 0, "threshold_mode": "abs", "threshold": 0.01},
    {"patience": 0, "factor": 0.2, "min_lr": [0.01, 0.004], "threshold_mode": "abs"},
    {"patience": 0, "factor": 0.9, "min_lr": 0.05, "eps": 0.008},
    {"mode": "max", "patience": 1, "threshold": 0.05},
]


@pytest.mark.parametrize("options", PLATEAU_CASES, ids=str)
def test_reduce_on_plateau_matches_torch(options, checkpoint):
    ours, theirs = _pair("SGD", "ReduceLROnPlateau", options)
    for i, metric in enumerate(METRICS):
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr()
        if i == 10:  # swap in a scheduler restored from a checkpoint: it carries on the same
            saved_optimizer = checkpoint(ours.optimizer.state_dict())
            saved = checkpoint(ours.state_dict())
            ours, _ = _pair("SGD", "ReduceLROnPlateau", options)
            ours.optimizer.load_state_dict(saved_optimizer)
            ours.load_state_dict(saved)
    assert theirs.get_last_lr() != [0.1, 0.05]  # the sequence did reduce the rates


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_reduce_on_plateau_threshold_modes_match_torch(mode, threshold_mode):
    """An improvement by 0.15 from 2.0 beats an absolute threshold of 0.1 (2.0 - 0.1), not a
    relative one (2.0 * 0.9)."""
    options = {"mode": mode, "threshold_mode": threshold_mode, "threshold": 0.1, "patience": 0}
    ours, theirs = _pair("SGD", "ReduceLROnPlateau", options)
    sign = 1.0 if mode == "min" else -1.0
    for metric in (2.0, 1.85, 1.7, 1.62, 1.6, 1.5, 1.45):
        ours.step(sign * metric)
        theirs.step(sign * metric)
        assert ours.get_last_lr() == theirs.get_last_lr()


def test_reduce_on_plateau_reduces_a_group_added_later():
    """One min_lr for all groups also bounds a group added after the scheduler was made."""
    ours, theirs = _pair("SGD", "ReduceLROnPlateau", {"patience": 0, "min_lr": 0.02})
    ours.optimizer.add_param_group({"params": [Tensor(np.zeros(1))], "lr": 0.04})
    theirs.optimizer.add_param_group({"params": [torch.zeros(1)], "lr": 0.04})
    for metric in (1.0, 1.0, 1.0, 1.0):
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.state_dict()["default_min_lr"] == theirs.state_dict()["default_min_lr"]


def test_reduce_on_plateau_counters_match_torch():
    """The counters a checkpoint saves, from construction on and after each epoch, are torch's
    (an infinite first metric is no improvement: it counts as a bad epoch)."""
    ours, theirs = _pair("SGD", "ReduceLROnPlateau", {"patience": 2})
    keys = ("last_epoch", "num_bad_epochs", "best", "cooldown_counter")
    for metric in [math.inf] + METRICS:
        assert [getattr(ours, k) for k in keys] == [getattr(theirs, k) for k in keys]
        ours.step(metric)
        theirs.step(metric)
    assert [getattr(ours, k) for k in keys] == [getattr(theirs, k) for k in keys]


@pytest.mark.parametrize("pct_start", [0.0, 1.0, -0.1, 1.1])
def test_one_cycle_takes_pct_start_in_torchs_range(pct_start):
    """pct_start is a float in [0, 1], both ends included, as in torch."""
    options = {"max_lr": 0.5, "total_steps": 10, "pct_start": pct_start}
    if not 0.0 <= pct_start <= 1.0:
        ours = optim.SGD([Tensor(np.zeros(1))], momentum=0.9)
        theirs = torch.optim.SGD([torch.zeros(1)], momentum=0.9)
        with pytest.raises(ValueError, match="pct_start"):
            lr_scheduler.OneCycleLR(ours, **options)
        with pytest.raises(ValueError, match="pct_start"):
            torch.optim.lr_scheduler.OneCycleLR(theirs, **options)
        return
    ours, theirs = _pair("SGD", "OneCycleLR", options)
    for _ in range(9):
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()


def test_cosine_resumed_with_last_epoch_matches_torch():
    ours, theirs = _pair("SGD", "CosineAnnealingLR", {"T_max": 10})
    for _ in range(4):
        theirs.optimizer.step()
        ours.step()
        theirs.step()
    ours = lr_scheduler.CosineAnnealingLR(ours.optimizer, T_max=10, last_epoch=4)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(theirs.optimizer, T_max=10, last_epoch=4)
    for _ in range(8):
        assert ours.get_last_lr() == theirs.get_last_lr()
        theirs.optimizer.step()
        ours.step()
        theirs.step()


def test_cosine_closed_form():
    ours, _ = _pair("SGD", "CosineAnnealingLR", {"T_max": 10, "eta_min": 0.01})
    for t in range(1, 21):
        ours.step()
        closed = 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 10)) / 2
        assert ours.get_last_lr()[0] == pytest.approx(closed, rel=1e-12)


def test_one_cycle_refuses_too_many_steps():
    ours, _ = _pair("SGD", "OneCycleLR", {"max_lr": 0.5, "total_steps": 3})
    for _ in range(3):
        ours.step()
    with pytest.raises(ValueError, match="stepped 4 times, but total_steps is 3"):
        ours.step()


@pytest.mark.parametrize(
    ("scheduler", "options", "message"),
    [
        ("OneCycleLR", {"max_lr": 0.1}, "give total_steps, or both epochs and steps_per_epoch"),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 0}, "positive int total_steps, got 0"),
        ("OneCycleLR", {"max_lr": 0.1, "epochs": 0, "steps_per_epoch": 5}, "int epochs, got 0"),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 9, "pct_start": 1}, "float pct_start"),
        ("OneCycleLR", {"max_lr": [0.1], "total_steps": 9}, "one value per parameter group"),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 9, "anneal_strategy": "x"}, "'linear'"),
        ("LambdaLR", {"lr_lambda": [lambda e: 1.0]}, "expected 2 lr_lambdas"),
        ("ReduceLROnPlateau", {"factor": 1.0}, "expected factor < 1.0, got 1.0"),
        ("ReduceLROnPlateau", {"mode": "up"}, "expected mode 'min' or 'max', got 'up'"),
    ],
)
def test_bad_arguments(scheduler, options, message):
    opt = optim.SGD([{"params": [Tensor(np.zeros(1))]}, {"params": [Tensor(np.zeros(1))]}])
    with pytest.raises(ValueError, match=message):
        getattr(lr_scheduler, scheduler)(opt, **options)


def test_cycle_momentum_needs_momentum():
    opt = optim.Adagrad([Tensor(np.zeros(1), requires_grad=True)])
    with pytest.raises(ValueError, match="momentum or betas, got Adagrad"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5)
