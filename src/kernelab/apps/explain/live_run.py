"""One tab's run in the Train view: trained in a worker thread, controlled between steps.

A :class:`Page` trains at most one run at a time with a ``Trainer`` built as ``kernelab train``
builds it (by ``live.LiveTraining``) and controls it between two steps through the Trainer's
``on_step`` hook: pause, one step while paused, a learning rate for the next step, stop.
Stopping saves the checkpoint at that step boundary (``Trainer.save``) and leaves the loop
with :class:`Stopped`: the folder is a valid run that ``kernelab train --resume`` continues.

The training thread publishes the page's state a few times a second (``PUBLISH_EVERY``): the
latest one only, already as JSON, which the stream sends as it is; the stream never waits
on training.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ... import data
from ...core.threads import set_num_threads
from .. import runs
from ..timeline import TimelineRecorder, has_timeline, load_timeline
from ..train import Trainer, TrainingDiverged
from . import inputs, live_view
from .compute import ExplainError

PUBLISH_EVERY = 0.25  # seconds between two published states while training
log = logging.getLogger("kernelab.explain")


class Stopped(Exception):  # noqa: N818 (a signal, not an error)
    """Raised out of the training loop after the checkpoint of a stopped run is saved."""


class Loaded:
    """A data set for the page's runs, read from this machine only (never downloaded): the
    training and test images normalised with the config's ``mean`` and ``std`` (a new
    config: the training images', as ``runs.load_data`` does)."""

    def __init__(self, config: dict[str, Any]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the offline subset is fine; ``source`` says so
            try:
                splits = data.load_dataset(
                    config["data"], root=config["data_dir"], download=False, progress=False
                )
            except Exception as error:  # missing files: the field's value cannot be served
                raise ExplainError(f"field 'data': {str(error).splitlines()[0]}", 404) from None
        images, labels = splits.train_images, splits.train_labels
        if config.get("limit"):
            images, labels = images[: config["limit"]], labels[: config["limit"]]
        self.key = (config["data"], config["data_dir"], config.get("limit"))
        self.mean = config.get("mean", float(images.mean() / 255))
        self.std = config.get("std", float(images.std() / 255) or 1.0)
        self.source, self.classes = splits.source, [str(c) for c in splits.classes]
        self.train = data.normalize_pixels(images, self.mean, self.std), labels
        self.test = data.normalize_pixels(splits.test_images, self.mean, self.std)
        self.test_labels = splits.test_labels
        self.nbytes = self.train[0].nbytes + self.test.nbytes


class StoppableLoader:
    """A validation loader that leaves through ``page.check_stop`` between two batches, so a
    Stop during a validation waits for one batch, not for the whole test set."""

    def __init__(self, loader, page: Page):
        self.loader, self.page = loader, page

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.page.check_stop()
            yield batch


class Page:
    """One tab's training: its run, the controls it sent, and the state it is shown."""

    def __init__(self):
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.controls = threading.Lock()  # held by a Start, Stop or Reset of this tab
        self.reserved = False  # counted among the tabs training while its run is prepared
        self.status, self.message = "idle", ""
        self.picked: dict[str, Any] | None = None
        self.config: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self.trainer: Trainer | None = None
        self.recorder: TimelineRecorder | None = None
        self.loaded: Loaded | None = None
        self.paused = self.stop_requested = False
        self.steps_allowed = 0  # steps to take while paused (Step)
        self.pending_lr: float | None = None
        self.pixels: np.ndarray | None = None  # the drawn input (C, H, W), else a test image
        self.test_index = 0
        self.input_changed = False
        self.rows: list[tuple[int, float, float]] = []
        self.epochs: list[dict] = []
        self.confusion: list[list[int]] | None = None
        self.streams = 0
        self.version, self.text = 0, ""
        self.published_at = self.stepped_at = 0.0
        self.step_time = 0.0  # seconds a step takes, averaged over the last few
        self.shown = -1  # the step of the state last published
        self.threads = 1  # threads the run computes with
        self._text_lock = threading.Lock()
        self.text = json.dumps(self.summary())

    # ---- called by the web layer's threads
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def request_stop(self) -> None:
        """Ask the run to save and end at the next step boundary; call with ``cond`` held."""
        if self.alive():
            self.stop_requested, self.paused = True, False
            self.cond.notify_all()

    def begin(self, picked, config, loaded: Loaded, trainer: Trainer, run_dir: Path, recorder):
        """Take a new (or resumed) run and its timeline recorder (or None); its thread
        starts next."""
        with self.cond:
            self.picked, self.config, self.loaded = picked, config, loaded
            self.trainer, self.run_dir, self.recorder = trainer, run_dir, recorder
            self.paused = self.stop_requested = False
            self.steps_allowed, self.pending_lr = 0, None
            self.status, self.message = "starting", ""

    def clear(self) -> None:
        """Forget the run (Reset): the next Start makes a new one."""
        with self.cond:
            self.picked = self.config = self.loaded = self.trainer = self.run_dir = None
            self.recorder = None
            self.rows, self.epochs, self.confusion = [], [], None
            self.status, self.message = "idle", ""
        self.publish()

    def show_input(self, pixels: np.ndarray | None, test_index: int) -> None:
        """A new input for the feature maps: redrawn at the next step, at once when paused,
        and here when no run is training."""
        with self.cond:
            self.pixels, self.test_index = pixels, test_index
            self.input_changed = True
            self.cond.notify_all()
            if self.alive():
                return
            self.input_changed = False
            self.publish()

    def at_step(self, step) -> dict:
        """The run's kernels, and the feature maps and prediction of the current input, with
        the convolutional part as its timeline recorded it at ``step`` (the layers after the
        last convolution as they are now). Only while the run is paused or over: a copy of
        the model is taken to that step; the run itself is not touched."""
        with self.cond:
            if self.trainer is None or self.alive() and self.status != "paused":
                raise ExplainError("the timeline is shown while the run is paused or over", 409)
            model = copy.deepcopy(self.trainer.model)
        try:
            recorded = load_timeline(self.run_dir)
        except FileNotFoundError as error:
            raise ExplainError(str(error), 404) from None
        if not isinstance(step, int) or isinstance(step, bool) or step not in recorded.steps:
            raise ExplainError(
                f"field 'step' must be a recorded step ({len(recorded.steps)} from "
                f"{recorded.steps[0]} to {recorded.steps[-1]}), received {step!r}"
            )
        model.load_state_dict(recorded.snapshot(step), strict=False)
        return {
            "step": step,
            "steps": recorded.steps,
            "kernels": live_view.kernels(model),
            "input": live_view.input_view(model, self.input_array()),
        }

    def recorded_steps(self) -> list[int]:
        """The steps the run's timeline holds so far (none before a run)."""
        if self.run_dir is None or not has_timeline(self.run_dir):
            return []
        return load_timeline(self.run_dir).steps

    # ---- what the page is shown
    def latest(self) -> tuple[int, str]:
        with self._text_lock:
            return self.version, self.text

    def summary(self) -> dict[str, Any]:
        """The run's status in a few fields (the answer to every control)."""
        trainer = self.trainer
        return {
            "status": self.status,
            "message": self.message,
            "step": trainer.step if trainer is not None else 0,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "lr": self.config["lr"] if self.config else None,
        }

    def publish(self) -> None:
        """Build the whole state (kernels, feature maps, curves) as JSON and make it the latest.
        Called by the training thread between two steps, or with no thread running."""
        state = self.summary()
        trainer = self.trainer
        if trainer is not None and self.loaded is not None:
            model = trainer.model
            config = self.config
            state.update(
                epoch=trainer.epoch + (1 if trainer.running.steps else 0),
                epochs=config["epochs"],
                steps_per_epoch=len(trainer.train_loader),
                config=self.picked,
                arch=config["arch"],
                data=self.loaded.source,
                classes=self.loaded.classes,
                curves=live_view.curves(self.rows, self.epochs),
                confusion=self.confusion,
                kernels=live_view.kernels(model),
                input=live_view.input_view(model, self.input_array()),
                test_index=None if self.pixels is not None else self.test_index,
            )
        text = json.dumps(state)
        self.shown = state["step"]
        with self._text_lock:
            self.version, self.text = self.version + 1, text
        self.published_at = time.monotonic()

    def input_array(self) -> np.ndarray:
        """The current input normalised as the run's data: (1, C, H, W)."""
        loaded, config = self.loaded, self.config
        if self.pixels is not None and self.pixels.shape == loaded.test.shape[1:]:
            return inputs.model_input(self.pixels, config["mean"], config["std"])
        return loaded.test[self.test_index : self.test_index + 1]

    # ---- the hooks, in the training thread
    def check_stop(self) -> None:
        """After a Stop: save the checkpoint at this step boundary and leave the loop."""
        if self.stop_requested:
            self.trainer.save()
            raise Stopped

    def on_step(self, row: dict[str, float]) -> None:
        self.rows.append((row["step"], row["loss"], row["acc"]))
        if self.recorder is not None:
            self.recorder.on_step(row)
        with self.cond:
            if self.pending_lr is not None:
                self.set_rate(self.pending_lr)
                self.pending_lr = None
            while self.paused and not self.stop_requested and not self.steps_allowed:
                if self.status != "paused" or self.input_changed or self.shown != row["step"]:
                    self.status, self.input_changed = "paused", False
                    self.cond.release()  # the page may send controls while this is built
                    try:
                        self.publish()
                    finally:
                        self.cond.acquire()
                    continue
                self.cond.wait()
            if self.steps_allowed:
                self.steps_allowed -= 1
            elif not self.paused:
                self.status = "running"
        self.check_stop()
        now = time.monotonic()
        self.step_time = 0.8 * self.step_time + 0.2 * (now - self.stepped_at)
        self.stepped_at = now
        # the step boundary nearest to a PUBLISH_EVERY after the last: not the first past it
        due = self.published_at + PUBLISH_EVERY - self.step_time / 2
        if now >= due or self.input_changed:
            self.input_changed = False
            self.publish()

    def set_rate(self, lr: float) -> None:
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr
        self.config["lr"] = lr  # the checkpoint's config: a resumed run keeps it

    def on_epoch(self, row: dict[str, float]) -> None:
        """A validation: its row, and the confusion matrix on the test set."""
        self.epochs.append(row)
        loaded, model = self.loaded, self.trainer.model
        predicted = []
        for start in range(0, len(loaded.test), runs.BATCH):
            if self.stop_requested:
                return  # the epoch is committed; the next step boundary saves and stops
            predicted.append(runs.predicted_classes(model, loaded.test[start : start + runs.BATCH]))
        model.train()
        matrix = runs.confusion_matrix(
            loaded.test_labels, np.concatenate(predicted), len(loaded.classes)
        )
        self.confusion = matrix.tolist()
        self.publish()

    def work(self) -> None:
        """The training thread: fit until the planned epochs end, a Stop, or an error."""
        set_num_threads(self.threads)  # numba's count is per thread: this one's too
        try:
            if self.recorder is not None and self.trainer.step == 0:
                self.recorder.record(0)  # the initial kernels
            self.publish()
            self.trainer.fit(self.config["epochs"])
            if self.recorder is not None:
                self.recorder.finish(self.trainer.step)
            self.status, self.message = "finished", f"trained {self.config['epochs']} epochs"
        except Stopped:
            self.status, self.message = "stopped", f"stopped at step {self.trainer.step}"
        except TrainingDiverged as error:
            self.status, self.message = "failed", str(error)
        except Exception as error:  # shown on the page; the server keeps serving
            log.exception("live training failed")
            self.status, self.message = "failed", f"training failed: {error}"
        finally:
            self.paused = self.stop_requested = False
            self.publish()
