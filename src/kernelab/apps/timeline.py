"""Kernel timelines: the convolutional part of a model, recorded at chosen steps of training.

A run's timeline lets the kernels be watched as they learn (``kernelab inspect --animate``,
the explain page's slider). It lives in ``RUN/timeline/``, one checkpoint-format file per
recorded step (``step-00000123.kl``: the exact values, never pickled), each written
atomically, so a kill leaves whole snapshots only and a resumed run just writes the rest.

What is recorded: the parameters and buffers of every module up to and including the last
``Conv2d`` (in ``state_dict`` order), enough to recompute the feature maps of those layers.
The classic network's are 52,096 float32 values, about 208 KB a snapshot.

When: the kernels move fastest at the start, so the schedule is dense there (every step)
and geometric after (each step about ``ratio`` times the previous one), with step 0 (the
initial kernels) and the planned last step always in. The number of snapshots is what the
byte budget holds; :func:`schedule` picks the smallest ratio that keeps within it. The
schedule depends only on the planned steps and the snapshot size, so a resumed run records
the same steps, with the same values (training resumes bit-identically), as a run never
interrupted.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd import unwrap
from ..core import serialization
from ..nn import Conv2d, Module

FOLDER = "timeline"
FORMAT = "kernelab-timeline/1"
DEFAULT_BUDGET = 4 * 2**20  # bytes: about 20 snapshots of the classic network
_NAME = re.compile(r"step-(\d{8})\.kl")
# What a snapshot file holds besides its arrays' values, over-estimated: the zip entry and
# .npy header of each array, and the JSON tree (names, checksums, step, loss).
_ARRAY_OVERHEAD = 512
_FILE_OVERHEAD = 2048


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """Where the snapshot of ``step`` is stored in the run folder ``run_dir``."""
    return Path(run_dir) / FOLDER / f"step-{step:08d}.kl"


def conv_part(model: Module) -> list[str]:
    """The ``state_dict`` keys of every module up to and including the last ``Conv2d``.

    Empty when the model has no convolution.
    """
    last = None
    for name, module in model.named_modules():
        if isinstance(module, Conv2d):
            last = name
    if last is None:
        return []
    keys = list(model.state_dict())
    prefix = f"{last}." if last else ""
    own = [i for i, key in enumerate(keys) if key.startswith(prefix)]
    return keys[: max(own) + 1]


def schedule(total_steps: int, count: int) -> list[int]:
    """At most ``count`` (>= 2) steps in 0..``total_steps``: 0, every step at first, then
    geometric, and ``total_steps``.

    Step ``s`` is followed by ``max(s + 1, floor(s · ratio))``: consecutive while
    ``s < 1 / (ratio - 1)``, then growing by ``ratio``. The ratio is the smallest (found by
    bisection) whose steps fit in ``count``, so the budget is used as fully as it can be.
    """
    if count < 2:
        raise ValueError(f"a timeline needs room for 2 snapshots at least, got {count}")
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    if count > total_steps:
        return list(range(total_steps + 1))
    if count == 2:
        return [0, total_steps]
    low, high = 1.0, float(total_steps)  # too dense, sparse enough (0, 1, total_steps)
    for _ in range(100):
        middle = (low + high) / 2
        if len(_geometric(total_steps, middle)) <= count:
            high = middle
        else:
            low = middle
    return _geometric(total_steps, high)


def _geometric(total_steps: int, ratio: float) -> list[int]:
    steps = [0, 1]
    while (step := max(steps[-1] + 1, math.floor(steps[-1] * ratio))) < total_steps:
        steps.append(step)
    return [*steps, total_steps]


def snapshot_bytes(model: Module) -> int:
    """A bound on the size of one snapshot file of ``model``'s convolutional part."""
    state = model.state_dict()
    names = conv_part(model)
    values = sum(unwrap(state[name]).nbytes for name in names)
    return values + _ARRAY_OVERHEAD * len(names) + _FILE_OVERHEAD


class TimelineRecorder:
    """Records the convolutional part of ``model`` into ``run_dir/timeline/`` on schedule.

    ``total_steps`` is the planned number of optimiser steps (epochs x batches per epoch);
    ``budget`` the bytes the timeline may take. Pass :meth:`on_step` to
    ``Trainer(on_step=...)``, call :meth:`start` before a new run's first step (not when
    resuming) and :meth:`finish` after training (a run stopped early ends before its planned
    last step). A run continued past its plan (``--resume --epochs``) plans anew: the
    snapshots already written stay, later steps follow the new schedule.
    Checking a step costs one set lookup: the steps off the schedule cost nothing else.
    """

    def __init__(
        self,
        run_dir: str | Path,
        model: Module,
        total_steps: int,
        budget: int = DEFAULT_BUDGET,
    ):
        self.run_dir, self.model = Path(run_dir), getattr(model, "module", model)
        self.names = conv_part(self.model)
        if not self.names:
            raise ValueError("the model has no Conv2d whose kernels it could record")
        self.snapshot_bytes = snapshot_bytes(self.model)
        count = budget // self.snapshot_bytes
        if count < 2:
            raise ValueError(
                f"a kernel timeline of this model needs {2 * self.snapshot_bytes:,} bytes "
                f"at least (2 snapshots), the budget is {budget:,}"
            )
        self.total_steps = total_steps
        self.steps = schedule(total_steps, count)
        self._wanted = frozenset(self.steps)
        self.last: dict[str, float] | None = None  # the last on_step row
        for leftover in (self.run_dir / FOLDER).glob(".step-*.tmp"):  # what a kill left
            leftover.unlink(missing_ok=True)

    def start(self) -> None:
        """Begin a new run's timeline: remove the snapshots of any earlier run in the folder
        and record the initial parameters as step 0."""
        for path in (self.run_dir / FOLDER).glob("step-*.kl"):
            path.unlink()
        self.write(0)

    def record(self, step: int, loss: float | None = None, epoch: int | None = None) -> bool:
        """Write the snapshot of ``step`` if the schedule has it; whether it was written."""
        if step not in self._wanted:
            return False
        self.write(step, loss, epoch)
        return True

    def on_step(self, row: dict[str, float]) -> None:
        """The ``Trainer(on_step=...)`` hook: records the row's step with its batch loss."""
        self.last = row
        self.record(row["step"], row["loss"], row["epoch"])

    def finish(self, step: int) -> None:
        """Record the run's last step ``step``, unless it is already in the timeline (with
        the loss of the last step seen, when that was ``step``)."""
        if snapshot_path(self.run_dir, step).exists():
            return
        last = self.last if self.last is not None and self.last["step"] == step else {}
        self.write(step, last.get("loss"), last.get("epoch"))

    def write(self, step: int, loss: float | None = None, epoch: int | None = None) -> None:
        """Write the snapshot of ``step`` now, replacing any earlier one atomically."""
        state = self.model.state_dict()
        content = {
            "format": FORMAT,
            "step": int(step),
            "epoch": None if epoch is None else int(epoch),
            "loss": None if loss is None else float(loss),
            "total_steps": self.total_steps,
            "state": {name: unwrap(state[name]) for name in self.names},
        }
        serialization.save(content, snapshot_path(self.run_dir, step))


class Timeline:
    """A run's recorded snapshots: ``steps`` (sorted), and per step its ``snapshot`` (name ->
    array, read-only), ``loss`` (the batch loss of that step; None at step 0) and epoch."""

    def __init__(self, run_dir: Path, records: dict[int, dict[str, Any]]):
        self.run_dir = run_dir
        self.steps = sorted(records)
        self._records = records

    def __len__(self) -> int:
        return len(self.steps)

    def _record(self, step: int) -> dict[str, Any]:
        if step not in self._records:
            raise KeyError(
                f"step {step} is not in the timeline of {self.run_dir} (it has "
                f"{len(self.steps)} steps from {self.steps[0]} to {self.steps[-1]})"
            )
        return self._records[step]

    def snapshot(self, step: int) -> dict[str, np.ndarray]:
        """The recorded parameters and buffers at ``step``, by ``state_dict`` name."""
        return dict(self._record(step)["state"])

    def loss(self, step: int) -> float | None:
        return self._record(step)["loss"]

    def epoch(self, step: int) -> int | None:
        return self._record(step)["epoch"]

    @property
    def losses(self) -> list[float | None]:
        """The loss of each step of ``steps``, in order."""
        return [self._records[step]["loss"] for step in self.steps]


def has_timeline(run_dir: str | Path) -> bool:
    """Whether the run folder holds at least one timeline snapshot."""
    folder = Path(run_dir) / FOLDER
    return folder.is_dir() and any(_NAME.fullmatch(p.name) for p in folder.iterdir())


def load_timeline(run_dir: str | Path) -> Timeline:
    """Read every snapshot of the run folder's timeline (each checked as checkpoints are).

    Raises FileNotFoundError when the run has none, and
    :class:`kernelab.core.serialization.CheckpointError` for a damaged or foreign file.
    """
    run_dir = Path(run_dir)
    if not has_timeline(run_dir):
        raise FileNotFoundError(
            f"{run_dir} has no kernel timeline (no snapshots in {run_dir / FOLDER}); "
            f"runs trained with `kernelab train` record one"
        )
    records = {}
    for path in sorted((run_dir / FOLDER).iterdir()):
        match = _NAME.fullmatch(path.name)
        if match is None:
            continue
        content = _checked(serialization.load(path), path)
        if content["step"] != int(match.group(1)):
            raise serialization.CheckpointError(
                f"{path}: holds step {content['step']}, its name says {int(match.group(1))}"
            )
        for array in content["state"].values():
            array.flags.writeable = False
        records[content["step"]] = content
    return Timeline(run_dir, records)


def _checked(content: Any, path: Path) -> dict[str, Any]:
    """A loaded snapshot whose fields have the types :meth:`TimelineRecorder.write` gives."""
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise serialization.CheckpointError(f"{path}: not a kernel timeline snapshot")
    state, loss, epoch = content.get("state"), content.get("loss"), content.get("epoch")
    if not (
        type(content.get("step")) is int
        and isinstance(state, dict)
        and all(isinstance(v, np.ndarray) for v in state.values())
        and (loss is None or type(loss) in (int, float))
        and (epoch is None or type(epoch) is int)
    ):
        raise serialization.CheckpointError(f"{path}: a kernel timeline snapshot with bad fields")
    return content
