"""The JSON API of ``kernelab explain``, as plain methods: a request's fields in, a dict out.

:class:`Explainer` ties the parts together (the source model, one session per browser tab,
the test set) and validates every field it is given; the web layer (``app.py``) only reads
bodies and headers and turns :class:`ExplainError` into a 4xx response. Each method that
computes first has its cost checked by ``limits.Budget`` (a 413 past the server's limits),
then holds its session's lock, so one tab's requests never interleave.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from . import arithmetic, compute, inputs, kernel_view, limits
from .compute import ExplainError
from .source import Session, Sessions, Source, save_as_new_run
from .timeline_view import RunTimeline
from .training import TestSet, learning_curves

_MISSING = object()


def field(payload: dict, name: str, kind: type | tuple, default: Any = _MISSING) -> Any:
    """``payload[name]`` checked to be of ``kind`` (ints are not bools); a 400 otherwise."""
    if name not in payload or payload[name] is None:
        if default is _MISSING:
            raise ExplainError(f"missing field {name!r}")
        return default
    value = payload[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ExplainError(f"field {name!r} must be {names}, received {value!r}")
    return value


class Baselines:
    """The trained model's logits by input, for the last ``size`` inputs.

    After a kernel edit the page asks again for the input it was showing, whose unedited
    answer was kept when it was computed: the comparison then costs no second pass. The
    trained model is only read, so passes from several threads may run at once.
    """

    def __init__(self, source: Source, size: int = 256):
        self.model, self.size = source.model, size
        self._logits: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def logits(self, x: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        """The trained model's logits for x (1, C, H, W); ``known`` when they were just computed."""
        key = hashlib.blake2b(x.tobytes(), digest_size=16).digest()
        with self._lock:
            found = self._logits.get(key)
        if found is None:
            found = compute.model_logits(self.model, x) if known is None else known
        with self._lock:
            self._logits[key] = found
            self._logits.move_to_end(key)
            while len(self._logits) > self.size:
                self._logits.popitem(last=False)
        return found


class Explainer:
    """Everything the page asks for, for one source model shared by many sessions.

    A model the page cannot serve within ``limits`` (or ``session_limit`` copies of it) is
    refused here, with a ValueError naming the limit, before anything is served.
    """

    def __init__(self, source: Source, session_limit: int = 32):
        self.source = source
        blank = np.zeros((1, *source.input_shape), np.float32)
        steps = compute.trace(source.model, blank)[0]
        self.budget = limits.Budget(steps, source.model)
        limits.check_model(self.budget, source.input_shape, session_limit)
        self.sessions = Sessions(source, session_limit)
        self.test_set = TestSet(source)
        self.baselines = Baselines(source)
        self.layers = compute.structure(steps)
        self.run_timeline = RunTimeline(source)

    def session(self, session_id: str | None) -> Session:
        """The session of an id, made (the model copied and traced) on its first use."""
        found = self.sessions.find(session_id)
        if found is None:
            self.budget.session()
        return found or self.sessions.get(session_id)

    # ---- the model and an input
    def model(self) -> dict:
        source = self.source
        return {
            "name": source.path.name,
            "path": str(source.path),
            "kind": source.kind,
            "input_shape": list(source.input_shape),
            "classes": source.classes,
            "mean": source.mean,
            "std": source.std,
            "layers": self.layers,
            "params": sum(p.numel() for p in source.model.parameters()),
            "notes": source.notes,
            "can_save": source.kind == "run",
        }

    def _input(self, payload: dict) -> tuple[np.ndarray, np.ndarray]:
        """The uint8 pixels (C, H, W) and normalised model input (1, C, H, W) of a request."""
        pixels = inputs.decode_pixels(field(payload, "pixels", str), self.source.input_shape)
        if field(payload, "centre", bool, False):
            pixels = inputs.centre_like_mnist(pixels)
        return pixels, inputs.model_input(pixels, self.source.mean, self.source.std)

    def forward(self, session: Session, payload: dict) -> dict:
        """Every feature map of the image, the logits and probabilities, and the pixels seen.

        ``baseline_logits``, ``baseline_probabilities`` and ``baseline_prediction`` are the
        trained model's answer for the same input: what the session's kernel edits changed.
        """
        start = time.perf_counter()
        self.budget.forward(passes=2 if session.edits or session.step is not None else 1)
        pixels, x = self._input(payload)
        with session.lock:
            steps, logits = compute.trace(session.model, x)
            view = compute.forward_view(x, steps, logits)
            edits, step = len(session.edits), session.step
        baseline = self.baselines.logits(x, None if edits or step is not None else logits)
        view.update(compute.answer(baseline, "baseline_"))
        view["pixels"] = inputs.encode_pixels(pixels)
        view["edits"] = edits
        view["step"] = step  # the timeline step the convolutions are at (None: trained)
        view["ms"] = (time.perf_counter() - start) * 1e3
        return view

    def arithmetic(self, session: Session, payload: dict) -> dict:
        """The numbers behind output (channel, y, x) of a layer for the posted image."""
        self.budget.arithmetic()
        _, x = self._input(payload)
        layer = field(payload, "layer", int)
        channel, y, x_ = (field(payload, k, int, 0) for k in ("channel", "y", "x"))
        with session.lock:
            steps, _ = compute.trace(session.model, x)
            return arithmetic.arithmetic(steps, layer, channel, y, x_)

    def upload(self, body: bytes) -> dict:
        """An uploaded image converted as the model expects: pixels (C, H, W) as base64."""
        pixels = inputs.read_upload(body, self.source.input_shape)
        return {"pixels": inputs.encode_pixels(pixels), "shape": list(pixels.shape)}

    # ---- kernels
    def kernels(self, session: Session, layer: int) -> dict:
        self.budget.kernels(layer)
        with session.lock:
            return kernel_view.layer_kernels(session.layers, session, layer)

    def kernel(self, session: Session, layer: int, channel: int) -> dict:
        self.budget.kernel(layer)
        with session.lock:
            return kernel_view.kernel_detail(session.layers, self.source, session, layer, channel)

    def edit_kernel(self, session: Session, payload: dict) -> dict:
        """Replace a kernel (or one slice) by typed values or a hand-designed kernel."""
        layer, channel = field(payload, "layer", int), field(payload, "channel", int)
        values = field(payload, "values", list, None)
        spec = field(payload, "spec", str, None)
        in_channel = field(payload, "in_channel", int, None)
        match = field(payload, "match_scale", bool, False)
        self.budget.kernel(layer, edit=True)
        with session.lock:
            text = kernel_view.edit_kernel(
                session.layers, session, layer, channel, in_channel, values, spec, match
            )
            detail = kernel_view.kernel_detail(session.layers, self.source, session, layer, channel)
        return dict(detail, done=text)

    def reset_kernel(self, session: Session, payload: dict) -> dict:
        """Trained kernels back: one (layer and channel), a layer's, or all (no fields)."""
        layer = field(payload, "layer", int, None)
        channel = field(payload, "channel", int, None)
        if channel is not None and layer is None:
            raise ExplainError("resetting one kernel needs its 'layer' too")
        self.budget.copy_all("resetting kernels")
        with session.lock:
            count = kernel_view.reset_kernels(session.layers, self.source, session, layer, channel)
            if session.step is not None:  # the tab's unedited kernels are that step's
                self.run_timeline.restore_kernels(session, layer, channel)
        return {"reset": count, "edits": len(session.edits)}

    def save(self, session: Session, payload: dict) -> dict:
        """The session's model as a new run folder next to the source run."""
        name = field(payload, "name", str, None)
        self.budget.copy_all("saving a run")
        with session.lock:
            path = save_as_new_run(self.source, session, name or None)
        return {"path": str(path), "name": path.name}

    # ---- the kernel timeline
    def timeline(self, session: Session) -> dict:
        """The run's recorded steps (``available`` False, with the reason, without any)."""
        return self.run_timeline.describe(session)

    def show_step(self, session: Session, payload: dict) -> dict:
        """Take the session's convolutions to a recorded ``step`` (null: the trained ones)."""
        step = field(payload, "step", int, None)
        self.budget.copy_all("loading a timeline step")
        with session.lock:
            return self.run_timeline.show(session, step)

    # ---- training
    def training(self) -> dict:
        return {"curves": learning_curves(self.source)}

    def test_summary(self) -> dict:
        return self.test_set.summary()

    def test_image(self, index: int) -> dict:
        return self.test_set.image(index)
