"""What a run is: a folder with a trained model's checkpoint and the config that rebuilds it.

A run's config (a dict saved in every checkpoint and in ``metrics.json``) names the data set,
the architecture spec, the input shape, the normalisation (``mean``, ``std``), the classes
and the training recipe. From it this module rebuilds the model, loads the data normalised
as in training, initialises the kernels, makes the optimiser and its schedule, trains
(:func:`train_run`), evaluates, classifies image files, exports and draws the run's pictures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, distributed, onnx, optim
from .. import functional as F
from ..autograd import no_grad
from ..core import rng, serialization
from ..core.tensor import Tensor
from ..interop import save_safetensors
from ..kernels import initializers, viz
from ..nn import Conv2d, Module
from . import arch, precompile
from .timeline import FOLDER, TimelineRecorder
from .train import BEST, CHECKPOINT, History, Trainer
from .transfer import read_weights, transfer

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "step", "none")
DEFAULT_EPOCHS = 5
# Peak rates of the default one-cycle schedule (Adam's 3e-3 reaches 99.3-99.4 % on MNIST in
# 5 epochs with the classic network, in kernelab and PyTorch alike).
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3}
BATCH = 500  # images per forward pass when evaluating

Split = tuple[np.ndarray, np.ndarray]  # normalised images (N, C, H, W), labels (N,)


def join_ranks(threads: int | None) -> int | None:
    """Under mpiexec, join the process group; the BLAS threads this process should use.

    ``threads`` when given; under mpiexec None becomes this machine's cores shared by the ranks.
    """
    if distributed.launched_by_mpi():
        distributed.init_process_group()
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // distributed.get_world_size())
    return threads


# ---- data and model
def load_data(config: dict[str, Any]) -> tuple[data.DataSplits, Split, Split]:
    """The dataset, and the normalised training and test images.

    ``config["limit"]`` keeps the first training images only. A new config gets the
    training images' ``mean`` and ``std`` (scaled to [0, 1]); a run's own are kept.
    """
    splits = data.load_dataset(config["data"], root=config.get("data_dir"))
    train_images, train_labels = splits.train_images, splits.train_labels
    if config.get("limit"):
        limit = config["limit"]
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    mean = float(train_images.mean() / 255)
    std = float(train_images.std() / 255) or 1.0
    config.setdefault("mean", mean)
    config.setdefault("std", std)
    x_train = data.normalize_pixels(train_images, config["mean"], config["std"])
    x_test = data.normalize_pixels(splits.test_images, config["mean"], config["std"])
    return splits, (x_train, train_labels), (x_test, splits.test_labels)


def classic_spec(kernel_size: int) -> str:
    """The classic MNIST network's spec with ``kernel_size`` x ``kernel_size`` kernels."""
    k = kernel_size
    return f"conv{k}x{k}x32-same,relu,maxpool2,conv{k}x{k}x64-same,relu,maxpool2,flatten,linear10"


def model_from_config(config: dict[str, Any]) -> Module:
    """A new model for the config's spec and input shape, drawn from its seed."""
    spec = config["arch"]
    return arch.build(spec, tuple(config["input_shape"]), generator=config["seed"])


def initialise(model: Module, name: str, seed: int) -> None:
    """Apply the named initialiser to the first convolution's kernels (hand-designed banks) or
    to every convolution's kernels (statistical initialisers)."""
    if name == "default":
        return
    initializer = initializers.get_initializer(name)
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]
    targets = convs[:1] if name.split(":")[0] in initializers.HAND_DESIGNED else convs
    generator = np.random.default_rng(seed)
    for conv in targets:
        if conv.symmetry is None:
            initializer(conv.weight, generator)
        else:  # initialise the full kernel, keep its symmetric part
            kernel = Tensor(conv.materialize())
            initializer(kernel, generator)
            conv.weight = kernel


OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


def make_optimizer(model: Module, config: dict[str, Any]) -> optim.Optimizer:
    """The config's optimiser over the model's trainable parameters."""
    name, options = optimizer_spec(config)
    return getattr(optim, name)([p for p in model.parameters() if p.requires_grad], **options)


def optimizer_spec(config: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The config's optimiser as its class's name in ``kernelab.optim`` and its options."""
    options = {"lr": config["lr"], "weight_decay": config["weight_decay"]}
    if config["optimizer"] in ("sgd", "rmsprop"):
        options["momentum"] = config["momentum"]
    return OPTIMIZERS.get(config["optimizer"], "Adam"), options


def make_scheduler(optimizer, config: dict[str, Any], steps_per_epoch: int):
    """(scheduler, "epoch" or "batch"): one-cycle and cosine move every batch."""
    epochs, name = config["epochs"], config["schedule"]
    if name == "onecycle":
        return optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config["lr"], epochs=epochs, steps_per_epoch=steps_per_epoch
        ), "batch"
    if name == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch), "batch"
    if name == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), (
            "epoch"
        )
    return None, "epoch"


# ---- training
class ShiftedLoader:
    """A loader whose batches are randomly shifted by up to ``pixels``, filled with ``fill``.

    The shifts of epoch e, batch b come from a generator seeded with (seed, e, b): they do
    not depend on what ran before, so a resumed run draws the same ones.
    """

    def __init__(self, loader: data.DataLoader, pixels: int, seed: int, fill: float):
        self.loader, self.pixels, self.seed, self.fill = loader, pixels, seed, fill
        self.dataset, self.epoch = loader.dataset, 0

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for b, (x, y) in enumerate(self.loader):
            generator = np.random.default_rng([self.seed, self.epoch, b])
            shifted = data.random_shift(x.array, self.pixels, generator=generator, fill=self.fill)
            yield Tensor(shifted), y


def make_train_loader(dataset: data.TensorDataset, config: dict[str, Any]) -> data.DataLoader:
    """Shuffled batches; under mpiexec each rank gets its share of every global batch."""
    world = distributed.get_world_size()
    if world == 1:
        return data.DataLoader(
            dataset, config["batch_size"], shuffle=True, generator=config["seed"]
        )
    if config["batch_size"] % world:
        raise ValueError(
            f"--batch-size {config['batch_size']} must divide evenly over {world} ranks"
        )
    sampler = distributed.DistributedSampler(dataset, seed=config["seed"])
    return data.DataLoader(dataset, config["batch_size"] // world, sampler=sampler)


def start_model(config: dict[str, Any], resume: bool, log: Callable[[str], None] = print) -> Module:
    """The config's model, initialised, with ``config["from"]``'s weights in a new run.

    The copied tensors are recorded in ``config["frozen"]`` when ``config["freeze"]``; frozen
    parameters (of a new or a resumed run) do not train.
    """
    model = model_from_config(config)
    initialise(model, config["init"], config["seed"])
    if config["from"] and not resume:
        layers = config["layers"].split(",") if config["layers"] else None
        copied = transfer(model, read_weights(config["from"]), layers, config["freeze"])
        log(
            f"transferred {len(copied)} tensors from {config['from']}"
            + (" (frozen)" if config["freeze"] else "")
        )
        config["frozen"] = [k for k in copied if config["freeze"]]
    frozen = set(config.get("frozen", []))
    for name, param in model.named_parameters():
        param.requires_grad = name not in frozen
    return model


def train_run(
    config: dict[str, Any],
    run_dir: Path,
    resume: bool = False,
    checkpoint_every: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[Module, History]:
    """Train the run ``config`` describes into ``run_dir``, or continue it with ``resume``.

    Fills in the config's ``input_shape``, ``classes`` and (new runs) ``mean`` and ``std``.
    Under mpiexec every rank trains its share and rank 0 alone writes the run folder and
    logs. Returns the model (wrapped for data parallelism over several ranks) and its history.
    """
    leader = distributed.get_rank() == 0
    rng.manual_seed(config["seed"])
    splits, (x_train, y_train), (x_test, y_test) = load_data(config)
    if leader:
        log(f"data: {splits.source}; {len(x_train)} training, {len(x_test)} test images")
    config["input_shape"] = list(x_train.shape[1:])
    config["classes"] = list(splits.classes)
    if leader:  # the loss's and the optimiser's kernels, compiled meanwhile if not cached
        batch = config["batch_size"] // distributed.get_world_size()
        spec = optimizer_spec(config)
        precompile.start(precompile.job_for(spec, batch, len(splits.classes), x_train, y_train))
    model = start_model(config, resume, log)
    loader = make_train_loader(data.TensorDataset(x_train, y_train), config)
    if distributed.get_world_size() > 1:
        model = distributed.DistributedDataParallel(model)
    train_loader = loader
    if config["augment"]:  # shifted-in pixels are background: 0 before normalisation
        background = -config["mean"] / config["std"]
        train_loader = ShiftedLoader(loader, config["augment"], config["seed"], background)
    optimizer = make_optimizer(model, config)
    scheduler, when = make_scheduler(optimizer, config, len(loader))
    recorder = (
        start_timeline(model, run_dir, config["epochs"] * len(loader), log) if leader else None
    )
    trainer = Trainer(
        model,
        train_loader,
        optimizer,
        val_loader=data.DataLoader(data.TensorDataset(x_test, y_test), BATCH),
        scheduler=scheduler,
        scheduler_step=when,
        run_dir=run_dir if leader else None,
        checkpoint_every=checkpoint_every,
        patience=config["patience"],
        progress=leader and progress,
        config=config,
        on_epoch=(lambda row: log(epoch_line(row))) if leader else None,
        on_step=None if recorder is None else recorder.on_step,
    )
    if resume:
        trainer.restore(run_dir / CHECKPOINT)
        step = f", step {trainer.running.steps}" if trainer.running.steps else ""
        log(f"resuming {run_dir} after epoch {trainer.epoch}{step}")
    if leader:
        world = distributed.get_world_size()
        log(f"run folder: {run_dir}" + (f" ({world} ranks)" if world > 1 else ""))
    if recorder is not None and trainer.step == 0:
        recorder.start()  # the initial kernels
    history = trainer.fit(config["epochs"])
    if recorder is not None:
        recorder.finish(trainer.step)  # a run stopped early ends before its planned last step
    return model, history


def start_timeline(
    model: Module, run_dir: Path, total_steps: int, log: Callable[[str], None] = print
) -> TimelineRecorder | None:
    """The recorder of the run's kernel timeline (``run_dir/timeline/``), or None, said in
    the log, when the model has no convolution or its snapshots overflow the budget."""
    try:
        recorder = TimelineRecorder(run_dir, model, total_steps)
    except ValueError as error:
        log(f"no kernel timeline: {error}")
        return None
    size = len(recorder.steps) * recorder.snapshot_bytes / 1e6
    log(f"kernel timeline: {len(recorder.steps)} steps (at most {size:.1f} MB) in {FOLDER}/")
    return recorder


def epoch_line(row: dict[str, float]) -> str:
    """One line per epoch: the epoch's mean training loss and accuracy, then held-out ones."""
    line = f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, acc {row['train_acc']:.4f}"
    if "val_loss" in row:
        line += f"; held-out loss {row['val_loss']:.4f}, acc {row['val_acc']:.4f}"
    return f"{line} ({row['images_per_s']:.0f} images/s)"


# ---- a run folder
def load_run(path: str | Path) -> tuple[Module, dict, Path]:
    """The trained model of a run folder (or checkpoint file), its config and its folder.

    A folder's ``best.kl`` (the epoch with the lowest validation loss) is preferred to its
    last ``checkpoint.kl``. The model is in evaluation mode.
    """
    path = Path(path)
    checkpoint = path / CHECKPOINT if path.is_dir() else path
    if path.is_dir() and (path / BEST).exists():
        checkpoint = path / BEST
    state = serialization.load(checkpoint)
    config = state["config"]
    model = model_from_config(config)
    model.load_state_dict(state["model"])
    return model.eval(), config, checkpoint.parent


def resume_config(
    run_dir: str | Path, epochs: int | None = None, data_dir: str | None = None
) -> dict[str, Any]:
    """The config of the stopped run in ``run_dir``, to continue it.

    ``epochs`` extends (or shortens) the run, except a one-cycle or cosine schedule, whose
    rates span the planned epochs; ``data_dir`` says where the data is now.
    """
    run_dir = Path(run_dir)
    config = dict(serialization.load(run_dir / CHECKPOINT)["config"])
    if epochs is not None and epochs != config["epochs"]:
        if config["schedule"] in ("onecycle", "cosine"):
            raise ValueError(
                f"--epochs {epochs}: this run's {config['schedule']} schedule was planned "
                f"for {config['epochs']} epochs and cannot be stretched; start a new run "
                f"(e.g. --from {run_dir / CHECKPOINT})"
            )
        config["epochs"] = epochs
    if data_dir:
        config["data_dir"] = data_dir
    return config


def write_pictures(model: Module, epochs: list[dict], run_dir: Path) -> None:
    """learning_curves.png and the first convolution's kernels.png (if the model has one).

    Raises ImportError without matplotlib.
    """
    viz.save(viz.plot_learning_curves(epochs), run_dir / "learning_curves.png")
    first = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
    if first is not None:  # a spec may have no convolution at all
        figure = viz.plot_kernels(first.weight.array, "first layer's learned kernels")
        viz.save(figure, run_dir / "kernels.png")


def export(model: Module, input_shape: tuple[int, ...], path: Path, format: str) -> Path:
    """Write the model as ONNX (batch axis free) or safetensors (PyTorch's state-dict keys)."""
    if format == "onnx":
        example = np.zeros((1,) + tuple(input_shape), dtype=np.float32)
        onnx.export(model, example, path)
    else:
        save_safetensors(model, path)
    return path


# ---- evaluate and classify
def predicted_classes(model: Module, images: np.ndarray) -> np.ndarray:
    """The class the model picks for each normalised image (N, C, H, W), without gradients."""
    predicted = []
    with no_grad():
        for start in range(0, len(images), BATCH):
            predicted.append(model(Tensor(images[start : start + BATCH])).array.argmax(axis=1))
    return np.concatenate(predicted)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(true class, predicted class) counts, int64 (classes, classes)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def evaluate(model: Module, config: dict[str, Any]) -> tuple[np.ndarray, data.DataSplits]:
    """The confusion matrix on the whole test set of the run's data set, and the data set."""
    splits, _, (x_test, y_test) = load_data(dict(config, limit=None))
    return confusion_matrix(y_test, predicted_classes(model, x_test), len(splits.classes)), splits


def accuracies(matrix: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """``{"accuracy": overall, "per_class": {class: accuracy}}`` of a confusion matrix."""
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "per_class": dict(zip(classes, per_class.tolist(), strict=True)),
    }


def classify(model: Module, config: dict[str, Any], path: str | Path) -> np.ndarray:
    """Class probabilities (classes,) for an image file, converted as the model expects."""
    pixels = data.model_pixels(path, tuple(config["input_shape"]))
    x = data.normalize_pixels(pixels[None], config["mean"], config["std"])
    with no_grad():
        return F.softmax(model(Tensor(x)), dim=1).array[0]
