"""The page's training choices turned into a run config, as ``kernelab train`` makes them.

:func:`run_config` validates every field of a Start request (a 400 naming the field) and
returns the config dict ``apps.runs`` reads: the classic network with the page's kernel size,
kernel counts and symmetry, or an ``--arch`` spec; an initialiser (hand-designed kernels
included); the optimiser, learning rate and batch size. The learning rate stays constant
(``schedule: "none"``) so a change from the page holds from the next step on.
:func:`check_cost` refuses, before anything runs, a run past the server's caps on steps and
memory (413).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...kernels import constraints, initializers
from ...nn import Conv2d, Module
from .. import runs
from .api import field
from .compute import ExplainError, trace

DATASETS = ("mnist", "fashion-mnist", "kmnist", "cifar10")
MAX_STEPS = 20_000  # optimiser steps a page's run may plan
MAX_MEMORY = 2 * 1024**3  # bytes a page's run may hold: its data, model, and a batch's arrays
MAX_EPOCHS = 100
MAX_BATCH = 1024
MAX_KERNELS = 256  # kernels per layer of the classic network
MAX_KERNEL_SIZE = 28  # as large as an MNIST image
MAX_SPEC = 500  # characters of an --arch spec
TOO_LARGE = 413
# What a new page shows; the defaults of ``kernelab train`` except the constant learning rate.
DEFAULTS: dict[str, Any] = {
    "data": "mnist",
    "arch": "",
    "kernel_size": 5,
    "kernels": 32,
    "kernels2": 64,
    "symmetry": "",
    "init": "default",
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 64,
    "epochs": 5,
    "seed": 0,
}
# The choices that keep a run's model and optimiser: a change of any other one starts a new run.
RESUMABLE = ("lr", "epochs")


def options() -> dict:
    """The values the page offers in its menus."""
    return {
        "data": list(DATASETS),
        "optimizer": list(runs.OPTIMIZERS),
        "symmetry": ["", *constraints.SYMMETRIES],
        "init": ["default", *sorted(n for n in initializers.INITIALIZERS if n != "default")],
        "hand_designed": sorted(initializers.HAND_DESIGNED),
        "defaults": DEFAULTS,
        "max_steps": MAX_STEPS,
    }


def bounded(payload: dict, name: str, kind: type, low: float, high: float) -> Any:
    """A number field within [low, high] (its default when absent); a 400 naming it."""
    value = field(payload, name, (int, float) if kind is float else int, DEFAULTS[name])
    if not (low <= value <= high) or (kind is float and not math.isfinite(value)):
        raise ExplainError(f"field {name!r} must be from {low:g} to {high:g}, received {value!r}")
    return kind(value)


def choice(payload: dict, name: str, allowed) -> str:
    value = field(payload, name, str, DEFAULTS[name])
    if value not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ExplainError(f"field {name!r} must be one of {names}, received {value[:40]!r}")
    return value


def choices(payload: dict) -> dict[str, Any]:
    """The page's fields, each checked (a 400 naming the first bad one), defaults filled in."""
    known = set(DEFAULTS) | {"limit"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ExplainError(f"unknown field {unknown[0][:40]!r}; known: {', '.join(sorted(known))}")
    picked = {
        "data": choice(payload, "data", DATASETS),
        "arch": field(payload, "arch", str, "").strip(),
        "kernel_size": bounded(payload, "kernel_size", int, 1, MAX_KERNEL_SIZE),
        "kernels": bounded(payload, "kernels", int, 1, MAX_KERNELS),
        "kernels2": bounded(payload, "kernels2", int, 1, MAX_KERNELS),
        "symmetry": choice(payload, "symmetry", ["", *constraints.SYMMETRIES]),
        "init": field(payload, "init", str, "default").strip() or "default",
        "optimizer": choice(payload, "optimizer", runs.OPTIMIZERS),
        "lr": bounded(payload, "lr", float, 1e-7, 10.0),
        "batch_size": bounded(payload, "batch_size", int, 1, MAX_BATCH),
        "epochs": bounded(payload, "epochs", int, 1, MAX_EPOCHS),
        "seed": bounded(payload, "seed", int, 0, 2**31 - 1),
        "limit": field(payload, "limit", int, None),
    }
    if len(picked["arch"]) > MAX_SPEC:
        raise ExplainError(f"field 'arch' is {len(picked['arch'])} characters; at most {MAX_SPEC}")
    if picked["limit"] is not None and picked["limit"] < 1:
        raise ExplainError(f"field 'limit' must be at least 1, received {picked['limit']}")
    if picked["lr"] <= 0:
        raise ExplainError(f"field 'lr' must be positive, received {picked['lr']}")
    return picked


def spec_of(picked: dict[str, Any]) -> str:
    """The architecture spec: the ``arch`` field, else the classic network as chosen (the
    exact spec ``kernelab train --kernel-size K`` uses when counts and symmetry are default)."""
    if picked["arch"]:
        return picked["arch"]
    k, sym = picked["kernel_size"], picked["symmetry"]
    if (picked["kernels"], picked["kernels2"], sym) == (32, 64, ""):
        return runs.classic_spec(k)
    suffix = f"-sym{sym}" if sym else ""
    return (
        f"conv{k}x{k}x{picked['kernels']}-same{suffix},relu,maxpool2,"
        f"conv{k}x{k}x{picked['kernels2']}-same{suffix},relu,maxpool2,flatten,linear10"
    )


def run_config(picked: dict[str, Any], data_dir: str | None) -> dict[str, Any]:
    """The config of a new run, with every key ``kernelab train`` writes (so ``kernelab train
    --resume`` continues it)."""
    return {
        "data": picked["data"],
        "data_dir": data_dir,
        "limit": picked["limit"],
        "augment": 0,
        "arch": spec_of(picked),
        "init": picked["init"],
        "from": None,
        "layers": None,
        "freeze": False,
        "optimizer": picked["optimizer"],
        "lr": picked["lr"],
        "momentum": 0.9,
        "weight_decay": 0.0,
        "schedule": "none",  # the page sets the rate; a schedule would overwrite it each step
        "epochs": picked["epochs"],
        "batch_size": picked["batch_size"],
        "seed": picked["seed"],
        "patience": None,
        "checkpoint_every": None,
    }


def build_model(config: dict[str, Any], field_name: str) -> Module:
    """The config's model, initialised; a spec or initialiser that fails is a 400."""
    try:
        model = runs.model_from_config(config)
    except (ValueError, KeyError) as error:
        raise ExplainError(f"field {field_name!r}: {error}") from None
    try:
        initializers.get_initializer(config["init"])
        runs.initialise(model, config["init"], config["seed"])
    except ValueError as error:
        raise ExplainError(f"field 'init': {error}") from None
    return model


def training_bytes(model: Module, input_shape: tuple[int, ...], batch: int) -> int:
    """An upper estimate of what one training step holds: every layer's input and output and
    their gradients, each convolution's unfolded input (im2col) and its gradient, for
    ``batch`` images; and four copies of the parameters (weights, gradients, two moments)."""
    steps, _ = trace(model, np.zeros((1, *input_shape), np.float32))
    model.train()
    values = 0
    for step in steps:
        values += 2 * (step.x.size + step.y.size)
        if isinstance(step.module, Conv2d):
            kh, kw = step.module.kernel_size
            depth = step.module.in_channels // step.module.groups
            values += 2 * depth * kh * kw * int(np.prod(step.y.shape[1:]))
    params = sum(p.numel() for p in model.parameters())
    return 4 * (batch * values + 4 * params)


def check_cost(config: dict, model: Module, images: int, data_bytes: int, steps: int, memory: int):
    """Refuse (413) a run planning more than ``steps`` steps or holding more than ``memory``
    bytes (its data included), with the numbers and the way to fit."""
    per_epoch = math.ceil(images / config["batch_size"])
    planned = per_epoch * config["epochs"]
    if planned > steps:
        raise ExplainError(
            f"{config['epochs']} epochs of {per_epoch:,} steps (batch {config['batch_size']}, "
            f"{images:,} images) is {planned:,} steps; this server trains at most {steps:,} "
            "per run (fewer epochs or a larger batch)",
            TOO_LARGE,
        )
    shape = tuple(config["input_shape"])
    need = training_bytes(model, shape, config["batch_size"]) + data_bytes
    if need > memory:
        raise ExplainError(
            f"this run needs about {need / 1024**2:,.0f} MB (data, model and a batch of "
            f"{config['batch_size']}); this server gives a run at most {memory / 1024**2:,.0f} MB "
            "(a smaller batch or model)",
            TOO_LARGE,
        )


def page_defaults(source) -> dict[str, Any]:
    """The Train view's first choices for an explained run: its data, architecture (the
    classic network's fields when it is one) and recipe; nothing for a new model."""
    config = getattr(source, "config", None) or {}
    if "arch" not in config:
        return {}
    picked: dict[str, Any] = {"arch": config["arch"]}
    sizes = [k for k in range(1, MAX_KERNEL_SIZE + 1) if runs.classic_spec(k) == config["arch"]]
    if sizes:
        picked.update(arch="", kernel_size=sizes[0])
    if config.get("data") in DATASETS:
        picked["data"] = config["data"]
    for key in ("init", "optimizer", "lr", "batch_size", "seed"):
        if isinstance(config.get(key), type(DEFAULTS[key])):
            picked[key] = config[key]
    return picked


def new_config() -> dict[str, Any]:
    """The config of a new, untrained classic network on MNIST (what ``kernelab studio``
    shows before anything is trained)."""
    config = run_config(dict(DEFAULTS, limit=None), None)
    config.update(input_shape=[1, 28, 28], classes=[str(c) for c in range(10)])
    return config
