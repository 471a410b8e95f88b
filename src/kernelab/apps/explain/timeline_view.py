"""The kernel timeline on the explain page: a tab's model taken to a recorded step of training.

A run trained with ``kernelab train`` keeps snapshots of its convolutional part
(:mod:`kernelab.apps.timeline`). Scrubbing to step k copies that snapshot into the tab's
session model, so its kernels, their frequency responses and the feature maps of every layer
up to the last convolution are those of step k, exactly. The layers after it keep their
trained weights (they are not recorded), which the page says beside the prediction.
Step ``None`` brings the trained values back. The trained model itself is never touched.
Kernels edited at a step and reset return to that step's values; a tab at a step saved as a
new run says so in its config (``timeline_step``).
"""

from __future__ import annotations

import threading

import numpy as np

from ... import nn
from ...core.serialization import CheckpointError
from ..timeline import FOLDER, Timeline, load_timeline
from .compute import ExplainError
from .source import Session, Source

NOTE = (
    "Layers after the last convolution keep their trained weights: the prediction mixes "
    "step {step}'s kernels with the trained classifier."
)


class RunTimeline:
    """The source run's timeline, checked against its model, read on first use and again
    when its folder holds other snapshots (a run still training adds them)."""

    def __init__(self, source: Source):
        self.source = source
        self._timeline: Timeline | None = None
        self._files: list[str] = []  # the snapshot files ``_timeline`` was read from
        self._lock = threading.Lock()

    def get(self) -> Timeline:
        """The timeline; a 404 ExplainError saying why when there is none to show."""
        run_dir = self.source.run_dir
        if run_dir is None:
            what = "an ONNX file" if self.source.kind == "onnx" else "a model in memory"
            raise ExplainError(f"this is {what}: only a run folder has a timeline", 404)
        with self._lock:
            files = sorted(p.name for p in (run_dir / FOLDER).glob("step-*.kl"))
            if self._timeline is None or files != self._files:
                try:
                    timeline = load_timeline(run_dir)
                except FileNotFoundError as error:
                    raise ExplainError(str(error), 404) from None
                except CheckpointError as error:
                    raise ExplainError(f"the kernel timeline is unreadable: {error}", 500) from None
                check_matches(timeline, self.source)
                self._timeline, self._files = timeline, files
        return self._timeline

    def describe(self, session: Session) -> dict:
        """The recorded steps with their epoch and loss, and the step the tab shows (None:
        the trained model); ``available`` False, with the reason, for a run without one."""
        try:
            timeline = self.get()
        except ExplainError as error:
            if error.status != 404:
                raise
            return {"available": False, "message": str(error), "steps": []}
        return {
            "available": True,
            "steps": timeline.steps,
            "epochs": [timeline.epoch(step) for step in timeline.steps],
            "losses": timeline.losses,
            "current": session.step,
            "layers": list(timeline.snapshot(timeline.steps[0])),
        }

    def show(self, session: Session, step: int | None) -> dict:
        """Copy the snapshot of ``step`` (or the trained values) into the session's model.

        The tab's kernel edits are dropped: they were made on the kernels being replaced.
        Call with the session's lock held.
        """
        timeline = self.get()
        if step is None:
            trained = self.source.model.state_dict()
            values = {name: trained[name] for name in timeline.snapshot(timeline.steps[0])}
        elif step not in timeline.steps:
            nearest = min(timeline.steps, key=lambda s: (abs(s - step), s))
            raise ExplainError(
                f"step {step} was not recorded: the timeline has {len(timeline)} steps "
                f"from {timeline.steps[0]} to {timeline.steps[-1]} (the nearest is {nearest})"
            )
        else:
            values = timeline.snapshot(step)
        session.model.load_state_dict(values, strict=False)
        session.edits.clear()
        session.step = step
        if step is None:
            return {"step": None, "edits": 0}
        return {
            "step": step,
            "epoch": timeline.epoch(step),
            "loss": timeline.loss(step),
            "edits": 0,
            "note": NOTE.format(step=step),
        }

    def restore_kernels(self, session: Session, layer: int | None, channel: int | None) -> None:
        """Copy the kernels of the step the session shows back into conv ``layer`` (every
        conv when None; one kernel with ``channel``): a reset in a tab at a timeline step
        returns to that step's kernels, not the trained ones. Call with the session's lock."""
        snapshot = self.get().snapshot(session.step)
        params = dict(session.model.named_parameters())
        convs = [s for s in session.layers if isinstance(s.module, nn.Conv2d)]
        for conv in (s for s in convs if layer in (None, s.index)):
            for key in (f"{conv.name}.weight", f"{conv.name}.weight_free"):
                if key not in snapshot or key not in params:
                    continue
                if channel is None:
                    np.copyto(params[key].array, snapshot[key])
                else:
                    params[key].array[channel] = snapshot[key][channel]


def check_matches(timeline: Timeline, source: Source) -> None:
    """Refuse (409) a timeline whose arrays do not fit the run's model (another architecture)."""
    own = source.model.state_dict()
    for name, values in timeline.snapshot(timeline.steps[0]).items():
        if name not in own or tuple(own[name].shape) != np.shape(values):
            raise ExplainError(
                f"the kernel timeline does not match this run's model: {name!r} is "
                f"{np.shape(values)} in the timeline, "
                f"{tuple(own[name].shape) if name in own else 'absent'} in the model",
                409,
            )
