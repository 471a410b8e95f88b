"""The training loop: epochs of batches, validation, checkpoints, resume and guards.

A run's state — weights, optimiser, schedule, the default random generator and where it is
in the data — is saved atomically to ``run_dir/checkpoint.kl`` after every epoch (and every
``checkpoint_every`` steps). A run killed at any moment and resumed from that file ends with
weights bit-identical to a run that was never interrupted, because the data order of epoch
``e`` depends only on the loader's seed and ``e`` and every random draw comes from saved
generators.

Crash consistency: an epoch has one commit point, the rename that puts its end-of-epoch
checkpoint in place. The other run files are functions of that checkpoint alone, written
after it: ``best.kl`` is the same state again when the epoch lowered the validation loss
(then ``bad_epochs`` is 0), and ``metrics.json`` is the config and history it holds. A kill
before the commit leaves the previous checkpoint, from which the epoch is trained again; a
kill after it leaves best.kl or metrics.json one epoch behind, and :meth:`Trainer.restore`
rewrites both from the checkpoint; :meth:`Trainer.fit` first removes the temporary files of
writes a kill interrupted. The checkpoint also says whether patience stopped the run, so a
run stopped early resumes as finished. Whatever instruction of the sequence a kill hits, the
resumed run ends with the files of a run that was never interrupted.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad, unwrap
from ..core import rng, serialization
from ..distributed import get_world_size
from ..nn import Module
from ..optim.lr_scheduler import ReduceLROnPlateau
from .progress import Progress

CHECKPOINT = "checkpoint.kl"
BEST = "best.kl"
METRICS = "metrics.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class History:
    """One dict per finished epoch (losses, accuracies, learning rate, time, images/s)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False

    def best(self, key: str = "val_loss") -> dict[str, float] | None:
        rows = [row for row in self.epochs if key in row]
        if not rows:
            return None
        pick = min if "loss" in key else max
        return pick(rows, key=lambda row: row[key])


@dataclass
class Running:
    """Sums over the batches of one epoch so far (saved with mid-epoch checkpoints)."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    steps: int = 0

    def add(self, loss: float, correct: int, count: int) -> None:
        self.loss += loss * count
        self.correct += correct
        self.seen += count
        self.steps += 1

    def summary(self, prefix: str) -> dict[str, float]:
        seen = max(self.seen, 1)
        return {f"{prefix}_loss": self.loss / seen, f"{prefix}_acc": self.correct / seen}


def _correct(logits: np.ndarray, target: np.ndarray) -> int:
    """Right answers of a classifier; 0 when the targets are not class indices."""
    if target.dtype.kind not in "iu" or logits.ndim != 2:
        return 0
    return int((logits.argmax(axis=1) == target).sum())


def _batch_size(batch: Any) -> int:
    return len(batch[0])


def evaluate(
    model: Module, loader: Iterable, loss_fn: Callable = F.cross_entropy
) -> dict[str, float]:
    """Mean loss and accuracy over ``loader`` in evaluation mode, without a graph."""
    was_training = model.training
    model.eval()
    running = Running()
    with no_grad():
        for x, y in loader:
            logits = model(x)
            loss = loss_fn(logits, y)
            running.add(float(loss.item()), _correct(logits.array, y.array), _batch_size((x, y)))
    model.train(was_training)
    return running.summary("val")


def _unwrapped(model: Module) -> Module:
    """The model inside a data-parallel wrapper: checkpoints never depend on the rank count."""
    return getattr(model, "module", model)


def _lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class Trainer:
    """Trains ``model`` on ``train_loader``; see :func:`fit` for the arguments."""

    def __init__(
        self,
        model: Module,
        train_loader: Iterable,
        optimizer,
        loss_fn: Callable = F.cross_entropy,
        val_loader: Iterable | None = None,
        scheduler=None,
        scheduler_step: str = "epoch",
        run_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        patience: int | None = None,
        progress: bool = True,
        config: dict | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        on_step: Callable[[dict[str, float]], None] | None = None,
    ):
        if scheduler_step not in ("epoch", "batch"):
            raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
        self.model, self.train_loader, self.optimizer = model, train_loader, optimizer
        self.loss_fn, self.val_loader = loss_fn, val_loader
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.checkpoint_every, self.patience, self.progress = checkpoint_every, patience, progress
        self.config, self.on_epoch, self.on_step = config or {}, on_epoch, on_step
        self.history = History()
        self.epoch, self.running = 0, Running()
        self.step = 0  # optimiser steps since the run began, over all epochs
        self.best_val, self.bad_epochs = math.inf, 0

    # ---- checkpoints
    def state(self) -> dict[str, Any]:
        loader_state = getattr(self.train_loader, "state_dict", None)
        return {
            "model": _unwrapped(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "running": vars(self.running).copy(),
            "rng": rng.default_generator().bit_generator.state,
            "history": self.history.epochs,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.history.stopped_early,
            "config": self.config,
            # the loader's shuffling seed, which it may have drawn from the default generator
            "loader": loader_state() if callable(loader_state) else None,
        }

    def save(self, name: str = CHECKPOINT) -> dict[str, Any] | None:
        """Write the state to ``run_dir/name`` and return it (None without a ``run_dir``);
        weights that are not finite are never written."""
        if self.run_dir is None:
            return None
        values = _unwrapped(self.model).state_dict().values()
        if not all(np.isfinite(unwrap(v)).all() for v in values):
            where = f"epoch {self.epoch + 1}, step {self.running.steps}"
            raise TrainingDiverged(self._diverged(f"the weights became infinite or NaN at {where}"))
        state = self.state()
        serialization.save(state, self.run_dir / name)
        return state

    def _finish_epoch(self, state: dict[str, Any]) -> None:
        """Write best.kl and metrics.json as the end-of-epoch checkpoint ``state`` implies.

        Both depend on ``state`` alone and are rewritten whole: doing it again is harmless.
        """
        if _new_best(state):
            serialization.save(state, self.run_dir / BEST)
        metrics = json.dumps({"config": state["config"], "epochs": state["history"]}, indent=1)
        with serialization.atomic_writer(self.run_dir / METRICS) as file:
            file.write(metrics.encode())

    def _diverged(self, what: str) -> str:
        kept = self.run_dir is not None and (self.run_dir / CHECKPOINT).exists()
        where = f"; the last good checkpoint is {self.run_dir / CHECKPOINT}" if kept else ""
        return f"{what}{where}. Try a lower learning rate."

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`save`. An end-of-epoch checkpoint also
        rewrites best.kl and metrics.json, which a kill just after its commit left behind."""
        state = serialization.load(path)
        _unwrapped(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.running = state["epoch"], Running(**state["running"])
        self.step = state.get("step", 0)  # older checkpoints did not count steps
        rng.default_generator().bit_generator.state = state["rng"]
        self.history.epochs = list(state["history"])
        self.best_val, self.bad_epochs = state["best_val"], state["bad_epochs"]
        self.history.stopped_early = state.get("stopped_early", False)  # older checkpoints
        if state.get("loader") is not None and hasattr(self.train_loader, "load_state_dict"):
            self.train_loader.load_state_dict(state["loader"])
        if self.run_dir is not None and state["running"]["steps"] == 0:  # an epoch's end
            self._finish_epoch(state)

    # ---- the loop
    def _step(self, x, y) -> tuple[float, int]:
        self.optimizer.zero_grad()
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        value = float(loss.item())
        if not math.isfinite(value):
            where = f"epoch {self.epoch + 1}, step {self.running.steps + 1}"
            raise TrainingDiverged(self._diverged(f"the loss became {value} at {where}"))
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_step == "batch":
            self.scheduler.step()
        return value, _correct(logits.array, y.array)

    def _train_epoch(self) -> dict[str, float]:
        loader = self.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        total = len(loader.dataset) if hasattr(loader, "dataset") else 0
        bar = Progress(total, f"epoch {self.epoch + 1}", self.progress)
        bar.update(self.running.seen)
        start = time.perf_counter()
        seen_before = self.running.seen
        self.model.train()
        for x, y in itertools.islice(loader, self.running.steps, None):
            loss, correct = self._step(x, y)
            self.step += 1
            self.running.add(loss, correct, _batch_size((x, y)))
            mean = self.running.summary("train")  # the epoch's running means, not the batch's
            bar.update(_batch_size((x, y)), loss=mean["train_loss"], acc=mean["train_acc"])
            if self.checkpoint_every and self.running.steps % self.checkpoint_every == 0:
                self.save()
            if self.on_step is not None:
                batch = _batch_size((x, y))
                self.on_step(
                    {
                        "step": self.step,
                        "epoch": self.epoch + 1,
                        "loss": loss,
                        "acc": correct / max(batch, 1),
                        "lr": _lr(self.optimizer),
                    }
                )
        bar.close()
        seconds = time.perf_counter() - start
        row = self.running.summary("train")
        row.update(
            epoch=self.epoch + 1,
            lr=_lr(self.optimizer),
            seconds=seconds,
            images_per_s=(self.running.seen - seen_before) * self._ranks() / max(seconds, 1e-9),
        )
        return row

    def _ranks(self) -> int:
        """Processes sharing each batch: a data-parallel model's world, else 1."""
        return get_world_size() if self.model is not _unwrapped(self.model) else 1

    def fit(self, epochs: int) -> History:
        if self.run_dir is not None:  # what a killed run's writes left
            for name in (CHECKPOINT, BEST, METRICS):
                serialization.discard_temporaries(self.run_dir / name)
        while self.epoch < epochs and not self.history.stopped_early:
            row = self._train_epoch()
            if self.val_loader is not None:
                row.update(evaluate(self.model, self.val_loader, self.loss_fn))
            if self.scheduler is not None and self.scheduler_step == "epoch":
                _step_scheduler(self.scheduler, row)
            self.history.epochs.append(row)
            self.epoch, self.running = self.epoch + 1, Running()
            improved = row.get("val_loss", -math.inf) < self.best_val
            if improved:
                self.best_val, self.bad_epochs = row.get("val_loss", math.inf), 0
            else:
                self.bad_epochs += 1
            # patience N: stop at the N-th epoch in a row without a better validation loss
            self.history.stopped_early = (
                self.patience is not None and not improved and self.bad_epochs >= self.patience
            )
            state = self.save()  # the epoch's commit point
            if state is not None:
                self._finish_epoch(state)
            if self.on_epoch is not None:
                self.on_epoch(row)
        return self.history


def _new_best(state: dict[str, Any]) -> bool:
    """Whether an end-of-epoch checkpoint is the best model so far: its epoch was validated
    and lowered the validation loss, the only case that resets ``bad_epochs`` to 0."""
    rows = state["history"]
    return state["bad_epochs"] == 0 and bool(rows) and "val_loss" in rows[-1]


def _step_scheduler(scheduler, row: dict[str, float]) -> None:
    """ReduceLROnPlateau watches a metric; the others just count epochs."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(row.get("val_loss", row["train_loss"]))
    else:
        scheduler.step()


def fit(
    model: Module,
    train_loader: Iterable,
    epochs: int,
    optimizer,
    loss_fn: Callable = F.cross_entropy,
    val_loader: Iterable | None = None,
    resume: str | Path | None = None,
    **options: Any,
) -> History:
    """Train for ``epochs`` epochs and return the :class:`History`.

    ``options``: ``scheduler``, ``scheduler_step`` ("epoch" or "batch"), ``run_dir`` (where
    checkpoints and metrics.json go), ``checkpoint_every`` (steps), ``patience`` (epochs
    without a better validation loss before stopping early), ``progress`` (show the bar),
    ``config`` (stored in checkpoints), ``on_epoch`` (called with each epoch's metrics),
    ``on_step`` (called after each optimiser step with its ``step`` count over the whole
    run, ``epoch``, the batch's ``loss`` and ``acc``, and ``lr``).
    ``resume``: a checkpoint to continue from.
    """
    trainer = Trainer(model, train_loader, optimizer, loss_fn, val_loader, **options)
    if resume is not None:
        trainer.restore(resume)
    return trainer.fit(epochs)
