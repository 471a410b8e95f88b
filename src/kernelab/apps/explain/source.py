"""The model ``kernelab explain`` shows: loaded once, read-only, and one editable copy per tab.

A :class:`Source` is what was opened (a run folder, a checkpoint or an ONNX file) with the
trained model, which nothing ever modifies. Each browser tab gets a :class:`Session` with its
own deep copy of that model, so kernel edits in one tab are invisible to the others. The run
folder is only read; :func:`save_as_new_run` writes edits into a *new* folder next to it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import onnx as kl_onnx
from ...autograd import no_grad
from ...core import serialization
from ...core.tensor import Tensor
from ...data import MNIST_MEAN, MNIST_STD
from ...kernels.summary import guess_input_shape
from ...nn import Module
from .. import runs
from ..train import CHECKPOINT
from .compute import ExplainError, Step, trace

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Evicted session ids remembered, oldest forgotten first: a request naming one hears that its
# session expired instead of silently getting a fresh model. 4096 ids take under 1 MB.
EXPIRED_MEMORY = 4096
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class Source:
    """What ``kernelab explain`` opened. ``model`` is the trained model: never modified."""

    model: Module
    config: dict[str, Any]
    path: Path  # the run folder, the .onnx file, or a model's class name (kind "model")
    kind: str  # "run", "onnx", or "model" (a model in memory)
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: float
    std: float
    classes: list[str]
    checkpoint: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def run_dir(self) -> Path | None:
        return self.path if self.kind == "run" else None


def load_source(path: str | Path) -> Source:
    """A run folder (or checkpoint file) via ``runs.load_run``, or an ``.onnx`` file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    if not path.exists():
        raise FileNotFoundError(f"no run folder or checkpoint at {path}")
    model, config, run_dir = runs.load_run(path)
    checkpoint = path if path.is_file() else _checkpoint_of(path)
    shape = tuple(config.get("input_shape", (1, 28, 28)))
    return Source(
        model=model.eval(),
        config=dict(config),
        path=run_dir,
        kind="run",
        input_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        mean=float(config.get("mean", MNIST_MEAN if shape[0] == 1 else 0.0)),
        std=float(config.get("std", MNIST_STD if shape[0] == 1 else 1.0)),
        classes=[str(c) for c in config.get("classes", range(_outputs(model, shape)))],
        checkpoint=checkpoint,
    )


def model_source(
    model: Module,
    input_shape: tuple[int, int, int] | None = None,
    classes: list[str] | None = None,
) -> Source:
    """A model in memory (a notebook's), copied now: later training of ``model`` does not
    change what the page shows, and the page's edits never reach ``model``.

    ``input_shape`` (C, H, W) defaults to the one its first convolution suggests (28x28 for
    one channel, 32x32 otherwise); pixels are normalised as kernelab's datasets are (MNIST's
    mean and std for one channel, none for colour).
    """
    shape = input_shape or guess_input_shape(model)
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"{type(model).__name__}: expected a model that takes images (C, H, W), "
            f"got input shape {shape}; pass input_shape=(C, H, W)"
        )
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    copied = copy.deepcopy(model).eval()
    mean, std = (MNIST_MEAN, MNIST_STD) if shape[0] == 1 else (0.0, 1.0)
    return Source(
        model=copied,
        config={"input_shape": list(shape)},
        path=Path(type(model).__name__),
        kind="model",
        input_shape=shape,
        mean=float(mean),
        std=float(std),
        classes=[str(c) for c in (classes or range(_outputs(copied, shape)))],
    )


def _checkpoint_of(run_dir: Path) -> Path:
    best = run_dir / "best.kl"
    return best if best.exists() else run_dir / CHECKPOINT


def _outputs(model: Module, shape) -> int:
    with no_grad():
        return int(model(Tensor(np.zeros((1, *shape), np.float32))).shape[-1])


def _load_onnx(path: Path) -> Source:
    """An ONNX graph through ``kernelab.onnx.load``; its input shape from the graph."""
    load = getattr(kl_onnx, "load", None)
    if load is None:
        raise RuntimeError(
            f"cannot open {path}: this kernelab has no ONNX importer (kernelab.onnx.load); "
            "explain a run folder instead"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    model = load(path).eval()
    shape = _onnx_input_shape(path)
    mean, std = (MNIST_MEAN, MNIST_STD) if shape[0] == 1 else (0.0, 1.0)
    return Source(
        model=model,
        config={},
        path=path,
        kind="onnx",
        input_shape=shape,
        mean=float(mean),
        std=float(std),
        classes=[str(c) for c in range(_outputs(model, shape))],
        notes=[
            f"ONNX files carry no input normalisation: pixels are normalised with mean "
            f"{mean:.4f} and std {std:.4f} (MNIST's) before the model sees them"
        ],
    )


def _onnx_input_shape(path: Path) -> tuple[int, int, int]:
    """(C, H, W) of the graph's image input: (N, C, H, W) with fixed C, H and W."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    first = next(i for i in graph.input if i.name not in weights)
    dims = [
        d.dim_value if d.HasField("dim_value") else None for d in first.type.tensor_type.shape.dim
    ]
    if len(dims) != 4 or None in dims[1:]:
        raise ValueError(
            f"{path}: expected an image input (N, C, H, W) with fixed C, H and "
            f"W, found input {first.name!r} of shape {dims}"
        )
    return int(dims[1]), int(dims[2]), int(dims[3])


class Session:
    """One tab's copy of the model and the kernels it edited (layer, kernel) → description."""

    def __init__(self, source: Source):
        self.model = copy.deepcopy(source.model)
        # the layers in call order (a probe with a blank image), for lookups by layer index
        self.layers: list[Step] = trace(self.model, np.zeros((1, *source.input_shape), np.float32))[
            0
        ]
        self.lock = threading.Lock()  # the web layer computes on this copy one at a time
        self.edits: dict[tuple[int, int], str] = {}
        self.step: int | None = None  # the timeline step its convolutions are at; None: trained
        self.used = time.monotonic()


class SessionExpired(ExplainError):
    """A request naming a session that was evicted to make room for newer ones (410 Gone)."""

    def __init__(self, limit: int):
        super().__init__(
            f"session expired (the server keeps {limit} session{'s' * (limit != 1)}); your "
            "kernel edits were lost, the model was reloaded",
            410,
        )


class Sessions:
    """Sessions by id, created on first use; the least recently used go past ``limit``.

    An evicted id stays refused with :class:`SessionExpired` (until the last
    :data:`EXPIRED_MEMORY` evictions no longer include it): its edits are gone, and the client
    is told so rather than handed the trained model under the same name.
    """

    def __init__(self, source: Source, limit: int = 32):
        self.source, self.limit = source, limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._expired: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, session_id: str | None) -> Session | None:
        """The live session of an id, None for an id not seen (or forgotten); quick.

        Raises :class:`SessionExpired` for an evicted id, a 400 for a malformed one.
        """
        if not session_id or not SESSION_ID.fullmatch(session_id):
            raise ExplainError(
                "missing or malformed X-Kernelab-Session header: expected an id of 8 to 64 "
                f"letters, digits, '-' or '_', received {session_id!r}"
            )
        with self._lock:
            session = self._find(session_id)
        if session is not None:
            session.used = time.monotonic()
        return session

    def get(self, session_id: str | None) -> Session:
        """The session of an id, made on its first use (a copy of the model, outside the lock)."""
        session = self.find(session_id)
        if session is None:
            fresh = Session(self.source)
            with self._lock:  # the same id may have been made meanwhile: that one counts
                session = self._find(session_id) or self._add(session_id, fresh)
        return session

    def _find(self, session_id: str) -> Session | None:
        """The live session of an id, now the most recently used; call with the lock held."""
        if session_id in self._expired:
            raise SessionExpired(self.limit)
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions.move_to_end(session_id)
        return session

    def _add(self, session_id: str, session: Session) -> Session:
        """Keep a new session, evicting the least recently used; call with the lock held."""
        self._sessions[session_id] = session
        while len(self._sessions) > self.limit:
            evicted, _ = self._sessions.popitem(last=False)
            self._expired[evicted] = None
        while len(self._expired) > EXPIRED_MEMORY:
            self._expired.popitem(last=False)
        return session

    def __len__(self) -> int:
        return len(self._sessions)


def save_as_new_run(source: Source, session: Session, name: str | None = None) -> Path:
    """Write the session's model as a new run folder next to the source run; never overwrite.

    The folder holds ``checkpoint.kl`` with the keys ``runs.load_run`` reads (``model``,
    ``config``) and ``edits.json`` listing what was changed. Returns the new folder.
    """
    if source.kind != "run":
        what = "an ONNX file" if source.kind == "onnx" else "a model in memory"
        raise ExplainError(f"only a run folder can be saved as a new run (this is {what})")
    parent = source.path.parent
    if name is None:
        stem = f"{source.path.name}-edited"
        name = next(
            f"{stem}-{i}" if i > 1 else stem
            for i in range(1, 10_000)
            if not (parent / (f"{stem}-{i}" if i > 1 else stem)).exists()
        )
    if not RUN_NAME.fullmatch(name):
        raise ExplainError(
            f"run name {name!r}: expected 1 to 64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    target = parent / name
    try:
        target.mkdir()  # fails if it exists: an existing run is never overwritten
    except FileExistsError:
        raise ExplainError(f"{target} already exists; choose another name", 409) from None
    edits = [
        {"layer": layer, "kernel": kernel, "edit": text}
        for (layer, kernel), text in sorted(session.edits.items())
    ]
    config = dict(source.config, edited_from=str(source.path), edits=edits)
    record = {"from": str(source.path), "edits": edits}
    if session.step is not None:  # the convolutions are those of a step of the timeline
        config["timeline_step"] = record["timeline_step"] = session.step
    serialization.save({"model": session.model.state_dict(), "config": config}, target / CHECKPOINT)
    (target / "edits.json").write_text(json.dumps(record, indent=1))
    return target
