"""What the ``kernelab`` subcommands do (argument parsing lives in ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, distributed, optim
from .. import functional as F
from ..apps import arch
from ..apps.train import BEST, CHECKPOINT, Trainer
from ..apps.transfer import read_weights, transfer
from ..autograd import no_grad
from ..core import rng as random
from ..core import serialization as io
from ..core.tensor import Tensor
from ..core.threads import set_num_threads
from ..kernels import init, viz
from ..kernels.summary import summary
from ..nn import Conv2d, Module

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "step", "none")
DEFAULT_EPOCHS = 5
# Peak rates of the default one-cycle schedule (Adam's 3e-3 reaches 99.3-99.4 % on MNIST in
# 5 epochs with the classic network, in kernelab and PyTorch alike).
_DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3}


def set_threads(threads: int | None) -> None:
    if threads:
        set_num_threads(threads)


# ---- data
def _images(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) → normalised float32 (N, C, H, W)."""
    x = images.astype(np.float32) / 255
    x = x[:, None] if x.ndim == 3 else x
    return (x - np.float32(mean)) / np.float32(std)


Split = tuple[np.ndarray, np.ndarray]  # normalised images (N, C, H, W), labels (N,)


def load_data(config: dict[str, Any]) -> tuple[data.DataSplits, Split, Split]:
    """The dataset, and the normalised training and test images."""
    splits = data.load_dataset(config["data"], root=config.get("data_dir"))
    train_images, train_labels = splits.train_images, splits.train_labels
    if config.get("limit"):
        limit = config["limit"]
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    mean = float(train_images.mean() / 255)
    std = float(train_images.std() / 255) or 1.0
    config.setdefault("mean", mean)
    config.setdefault("std", std)
    x_train = _images(train_images, config["mean"], config["std"])
    x_test = _images(splits.test_images, config["mean"], config["std"])
    return splits, (x_train, train_labels), (x_test, splits.test_labels)


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
            shifted = data.random_shift(x.data, self.pixels, generator=generator, fill=self.fill)
            yield Tensor(shifted), y


# ---- model and optimiser
def model_from_config(config: dict[str, Any]) -> Module:
    spec = config["arch"]
    return arch.build(spec, tuple(config["input_shape"]), generator=config["seed"])


def classic_spec(kernel_size: int) -> str:
    k = kernel_size
    return f"conv{k}x{k}x32-same,relu,maxpool2,conv{k}x{k}x64-same,relu,maxpool2,flatten,linear10"


def make_optimizer(model: Module, config: dict[str, Any]):
    name, lr, decay = config["optimizer"], config["lr"], config["weight_decay"]
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=config["momentum"], weight_decay=decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=config["momentum"], weight_decay=decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=decay)
    return optim.Adam(params, lr=lr, weight_decay=decay)


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


def initialise(model: Module, name: str, seed: int) -> None:
    """Apply the named initialiser to the first convolution's kernels (hand-designed banks) or
    to every convolution's kernels (statistical initialisers)."""
    if name == "default":
        return
    initializer = init.get_initializer(name)
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]
    targets = convs[:1] if name.split(":")[0] in init.HAND_DESIGNED else convs
    generator = np.random.default_rng(seed)
    for conv in targets:
        if conv.symmetry is None:
            initializer(conv.weight, generator)
        else:  # initialise the full kernel, keep its symmetric part
            kernel = Tensor(conv.materialize())
            initializer(kernel, generator)
            conv.weight = kernel


# ---- train
def _config(args: argparse.Namespace, input_shape: tuple[int, ...] | None = None) -> dict:
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    return {
        "data": args.data,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "augment": args.augment,
        "arch": args.arch or classic_spec(args.kernel_size),
        "init": args.init,
        "from": args.from_weights,
        "layers": args.layers,
        "freeze": args.freeze,
        "optimizer": args.optimizer,
        "lr": lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "schedule": args.schedule,
        "epochs": args.epochs if args.epochs is not None else DEFAULT_EPOCHS,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "patience": args.patience,
    }


def _resume_config(args: argparse.Namespace) -> tuple[dict, Path]:
    run_dir = Path(args.resume)
    state = io.load(run_dir / CHECKPOINT)
    config = dict(state["config"])
    if args.epochs is not None and args.epochs != config["epochs"]:
        if config["schedule"] in ("onecycle", "cosine"):  # its rates span the planned epochs
            raise ValueError(
                f"--epochs {args.epochs}: this run's {config['schedule']} schedule was planned "
                f"for {config['epochs']} epochs and cannot be stretched; start a new run "
                f"(e.g. --from {run_dir / CHECKPOINT})"
            )
        config["epochs"] = args.epochs  # extends (or shortens) the run
    if args.data_dir:  # the data may have moved since
        config["data_dir"] = args.data_dir
    return config, run_dir


def _new_run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    return Path("runs") / time.strftime("%Y-%m-%d-%H%M%S")


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


def train(args: argparse.Namespace) -> int:
    if distributed.launched_by_mpi():
        distributed.init_process_group()
        if args.threads is None:  # share the cores between the ranks on this machine
            args.threads = max(1, (os.cpu_count() or 1) // distributed.get_world_size())
    set_threads(args.threads)
    leader = distributed.get_rank() == 0
    if args.resume:
        config, run_dir = _resume_config(args)
    else:
        config, run_dir = _config(args), _new_run_dir(args)
    random.manual_seed(config["seed"])
    splits, (x_train, y_train), (x_test, y_test) = load_data(config)
    if leader:
        print(f"data: {splits.source}; {len(x_train)} training, {len(x_test)} test images")
    config["input_shape"] = list(x_train.shape[1:])
    config["classes"] = list(splits.classes)
    model = model_from_config(config)
    initialise(model, config["init"], config["seed"])
    if config["from"] and not args.resume:
        layers = config["layers"].split(",") if config["layers"] else None
        copied = transfer(model, read_weights(config["from"]), layers, config["freeze"])
        print(
            f"transferred {len(copied)} tensors from {config['from']}"
            + (" (frozen)" if config["freeze"] else "")
        )
        config["frozen"] = [k for k in copied if config["freeze"]]
    frozen = set(config.get("frozen", []))
    for name, param in model.named_parameters():
        param.requires_grad = name not in frozen
    loader = make_train_loader(data.TensorDataset(x_train, y_train), config)
    if distributed.get_world_size() > 1:
        model = distributed.DistributedDataParallel(model)
    if config["augment"]:  # shifted-in pixels are background: 0 before normalisation
        background = -config["mean"] / config["std"]
        train_loader = ShiftedLoader(loader, config["augment"], config["seed"], background)
    else:
        train_loader = loader
    test_loader = data.DataLoader(data.TensorDataset(x_test, y_test), 500)
    optimizer = make_optimizer(model, config)
    scheduler, when = make_scheduler(optimizer, config, len(loader))
    trainer = Trainer(
        model,
        train_loader,
        optimizer,
        val_loader=test_loader,
        scheduler=scheduler,
        scheduler_step=when,
        run_dir=run_dir if leader else None,
        checkpoint_every=args.checkpoint_every,
        patience=config["patience"],
        progress=leader and not args.no_progress,
        config=config,
    )
    if args.resume:
        trainer.restore(run_dir / CHECKPOINT)
        step = f", step {trainer.running.steps}" if trainer.running.steps else ""
        print(f"resuming {run_dir} after epoch {trainer.epoch}{step}")
    if leader:
        print(
            f"run folder: {run_dir}"
            + (
                f" ({distributed.get_world_size()} ranks)"
                if distributed.get_world_size() > 1
                else ""
            )
        )
    history = trainer.fit(config["epochs"])
    if not leader:
        return 0
    last = history.epochs[-1]
    write_pictures(model, history.epochs, run_dir)
    print(
        f"done: test accuracy {last['val_acc']:.4f} after {len(history.epochs)} epochs "
        f"({last['images_per_s']:.0f} images/s); run folder {run_dir}"
    )
    return 0


def write_pictures(model: Module, epochs: list[dict], run_dir: Path) -> None:
    try:
        viz.save(viz.plot_learning_curves(epochs), run_dir / "learning_curves.png")
        first = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
        if first is not None:  # a spec may have no convolution at all
            figure = viz.plot_kernels(first.weight.data, "first layer's learned kernels")
            viz.save(figure, run_dir / "kernels.png")
    except ImportError as error:
        print(f"no pictures: {error}")


def summarize(args: argparse.Namespace) -> int:
    if args.arch:
        shape = tuple(int(n) for n in args.input_shape.split(","))
        model = arch.build(args.arch, shape)
    elif args.run:
        model, config, _ = load_run(args.run)
        shape = tuple(config["input_shape"])
    else:
        raise ValueError("give a run folder or --arch SPEC")
    print(summary(model, shape))
    return 0


def export(args: argparse.Namespace) -> int:
    model, config, run_dir = load_run(args.run)
    out = Path(args.out) if args.out else run_dir / f"model.{args.format}"
    if args.format == "onnx":
        from .. import onnx

        example = np.zeros((1,) + tuple(config["input_shape"]), dtype=np.float32)
        onnx.export(model, example, out)
    else:
        from ..interop import save_safetensors

        save_safetensors(model, out)
    print(f"wrote {out}")
    return 0


# ---- evaluate and predict
def load_run(path: str | Path) -> tuple[Module, dict, Path]:
    """The trained model of a run folder (or checkpoint file) and its config."""
    path = Path(path)
    checkpoint = path / CHECKPOINT if path.is_dir() else path
    if path.is_dir() and (path / BEST).exists():
        checkpoint = path / BEST
    state = io.load(checkpoint)
    config = state["config"]
    model = model_from_config(config)
    model.load_state_dict(state["model"])
    return model.eval(), config, checkpoint.parent


def evaluate(args: argparse.Namespace) -> int:
    model, config, run_dir = load_run(args.run)
    if args.data_dir:
        config["data_dir"] = args.data_dir
    config["limit"] = None
    splits, _, (x_test, y_test) = load_data(config)
    loader = data.DataLoader(data.TensorDataset(x_test, y_test), 500)
    predictions = []
    with no_grad():
        for x, _ in loader:
            predictions.append(model(x).data.argmax(axis=1))
    predicted = np.concatenate(predictions)
    n = len(splits.classes)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (y_test, predicted), 1)
    accuracy = float(np.trace(matrix) / matrix.sum())
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    print(f"test accuracy {accuracy:.4f} on {len(y_test)} images ({splits.source})")
    for name, value in zip(splits.classes, per_class, strict=True):
        print(f"  class {name}: {value:.4f}")
    result = {
        "accuracy": accuracy,
        "per_class": dict(zip(splits.classes, per_class.tolist(), strict=True)),
    }
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=1))
    try:
        viz.save(viz.plot_confusion(matrix, splits.classes), run_dir / "confusion.png")
        print(f"confusion matrix: {run_dir / 'confusion.png'}")
    except ImportError as error:
        print(f"no picture: {error}")
    return 0


def predict(args: argparse.Namespace) -> int:
    model, config, _ = load_run(args.run)
    shape = tuple(config["input_shape"])
    for path in args.images:
        image = data.read_image(path, size=shape[1:], channels=shape[0], like_mnist=shape[0] == 1)
        x = _images(image[None], config["mean"], config["std"])
        with no_grad():
            probabilities = F.softmax(model(Tensor(x)), dim=1).data[0]
        best = int(probabilities.argmax())
        listing = " ".join(
            f"{c}:{p:.3f}" for c, p in zip(config["classes"], probabilities, strict=True)
        )
        print(f"{path}: {config['classes'][best]} ({probabilities[best]:.1%})  {listing}")
    return 0
