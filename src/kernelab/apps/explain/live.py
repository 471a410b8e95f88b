"""The Train view of ``kernelab explain --train``: each tab trains a CNN and watches it learn.

:class:`LiveTraining` (one per server) keeps a :class:`~.live_run.Page` per tab (its session
id) and turns the page's requests into runs: a Start builds the run as ``kernelab train``
builds it (``apps.runs``: the model and its initialisation, the loader, the optimiser; a
``Trainer``) in a new folder under the runs directory, after checking its cost against the
caps on steps and memory; the training itself runs in the page's worker thread
(``live_run.py``), off the request path. Every method validates its fields (a 4xx naming the
field) and answers at once; nothing is written outside the runs directory.

One run per tab, and at most ``max_jobs`` tabs training at once (409 past it): the others'
requests keep a core. A tab's last stream closing (the tab closed) stops its run.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ... import data
from ...core import rng
from ...data import MNIST_MEAN, MNIST_STD
from .. import runs
from ..train import CHECKPOINT, Trainer
from . import inputs, live_config
from .api import field
from .compute import ExplainError
from .live_run import Loaded, Page, StoppableLoader, log
from .source import SESSION_ID, Source

STOP_WAIT = 5.0  # seconds a control waits for a stopping run to save and end
MAX_PAGES = 64  # tabs remembered; the oldest without a running job go first
CONTROLS = ("pause", "resume", "step", "stop", "reset")
CONFLICT = 409


class LiveTraining:
    """Every tab's training. ``runs_dir``: where runs go (made on the first Start);
    ``data_dir``: where data sets are read from (else the cache, else MNIST's offline subset);
    ``max_steps`` and ``max_memory``: a run's caps; ``max_jobs``: tabs training at once;
    ``threads``: the threads a run computes with (1 keeps the other core for the page)."""

    def __init__(
        self,
        runs_dir: str | Path = "runs",
        data_dir: str | None = None,
        max_steps: int = live_config.MAX_STEPS,
        max_memory: int = live_config.MAX_MEMORY,
        max_jobs: int = 1,
        defaults: dict[str, Any] | None = None,
        threads: int = 1,
    ):
        self.runs_dir, self.data_dir = Path(runs_dir), data_dir
        self.max_steps, self.max_memory, self.max_jobs = max_steps, max_memory, max_jobs
        self.threads = threads
        self.defaults = dict(live_config.DEFAULTS, **(defaults or {}))
        self.pages: OrderedDict[str, Page] = OrderedDict()
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None  # the last data set read, kept for the next run

    # ---- tabs
    def page(self, session_id: str | None) -> Page:
        """The tab's page, made on first use (a 400 for a malformed id)."""
        if not session_id or not SESSION_ID.fullmatch(session_id):
            raise ExplainError(
                "missing or malformed session id: expected 8 to 64 letters, digits, '-' or '_', "
                f"received {session_id!r}"
            )
        with self._lock:
            page = self.pages.get(session_id) or Page()
            self.pages[session_id] = page
            self.pages.move_to_end(session_id)
            idle = [k for k, p in self.pages.items() if not p.alive() and not p.streams]
            for key in idle[: max(0, len(self.pages) - MAX_PAGES)]:
                del self.pages[key]
        return page

    def options(self) -> dict:
        return dict(live_config.options(), defaults=self.defaults, max_steps=self.max_steps)

    def attach(self, page: Page) -> None:
        with page.cond:
            page.streams += 1

    def detach(self, page: Page) -> None:
        """A stream closed; the last one closing (the tab gone) stops the run."""
        with page.cond:
            page.streams -= 1
            if page.streams <= 0:
                page.request_stop()

    # ---- start
    def start(self, session_id: str, payload: dict) -> dict:
        """Start a run with the page's choices, or continue the tab's run: a paused one
        (with a new learning rate), or a stopped one from its folder (with a new learning
        rate or number of epochs). Any other change starts a new run."""
        page = self.page(session_id)
        picked = live_config.choices(dict(payload))
        with page.controls:  # one Start or Stop of a tab at a time
            with page.cond:
                same = page.picked is not None and all(
                    page.picked[k] == picked[k] for k in picked if k not in live_config.RESUMABLE
                )
                if page.alive() and same and picked["epochs"] == page.picked["epochs"]:
                    page.picked, page.paused, page.steps_allowed = picked, False, 0
                    page.pending_lr = picked["lr"]
                    page.cond.notify_all()
                    return page.summary()
            self.end(page)
            resume = same and page.status == "stopped" and (page.run_dir / CHECKPOINT).exists()
            self.reserve(page)
            try:
                self.prepare(page, picked, resume)
                page.thread = threading.Thread(target=page.work, daemon=True, name="explain-train")
                page.thread.start()
            finally:
                page.reserved = False
        return page.summary()

    def reserve(self, page: Page) -> None:
        """Count the tab among those training, or refuse (409) past ``max_jobs``."""
        with self._lock:
            busy = sum(p.alive() or p.reserved for p in self.pages.values() if p is not page)
            if busy >= self.max_jobs:
                raise ExplainError(
                    f"another tab is training; this server trains {self.max_jobs} run"
                    f"{'s' * (self.max_jobs != 1)} at once: stop it first",
                    CONFLICT,
                )
            page.reserved = True

    def prepare(self, page: Page, picked: dict[str, Any], resume: bool) -> None:
        """The run's config, data, model and Trainer, checked against the caps; then its
        folder (new, or the stopped run's)."""
        if resume:
            config = runs.resume_config(page.run_dir, picked["epochs"])
            config["lr"] = picked["lr"]
        else:
            config = live_config.run_config(picked, self.data_dir)
        loaded = self.dataset(config)
        config["mean"], config["std"] = loaded.mean, loaded.std
        config["input_shape"] = list(loaded.train[0].shape[1:])
        config["classes"] = loaded.classes
        field_name = "arch" if picked["arch"] else "kernel_size"
        model = live_config.build_model(config, field_name)
        live_config.check_cost(
            config, model, len(loaded.train[1]), loaded.nbytes, self.max_steps, self.max_memory
        )
        run_dir = page.run_dir if resume else self.new_run_dir()
        trainer = self.trainer(page, config, model, loaded, run_dir)
        if resume:
            trainer.restore(run_dir / CHECKPOINT)
        else:
            page.rows, page.epochs, page.confusion = [], [], None
        planned = config["epochs"] * len(trainer.train_loader)
        recorder = runs.start_timeline(model, run_dir, planned, log.info)
        page.begin(picked, config, loaded, trainer, run_dir, recorder)
        page.threads = self.threads

    def dataset(self, config: dict[str, Any]) -> Loaded:
        """The config's data, read once and kept for the next run on the same data."""
        loaded = self._loaded
        key = (config["data"], config["data_dir"], config.get("limit"))
        same_scale = loaded is not None and config.get("mean", loaded.mean) == loaded.mean
        if loaded is None or loaded.key != key or not same_scale:
            self._loaded = loaded = Loaded(config)
        return loaded

    def trainer(self, page: Page, config: dict, model, loaded: Loaded, run_dir: Path) -> Trainer:
        """The Trainer ``runs.train_run`` makes, with the page's hooks."""
        rng.manual_seed(config["seed"])
        loader = runs.make_train_loader(data.TensorDataset(*loaded.train), config)
        optimizer = runs.make_optimizer(model, config)
        scheduler, when = runs.make_scheduler(optimizer, config, len(loader))
        tests = data.TensorDataset(loaded.test, loaded.test_labels)
        return Trainer(
            model,
            loader,
            optimizer,
            val_loader=StoppableLoader(data.DataLoader(tests, runs.BATCH), page),
            scheduler=scheduler,
            scheduler_step=when,
            run_dir=run_dir,
            progress=False,
            config=config,
            on_epoch=page.on_epoch,
            on_step=page.on_step,
        )

    def new_run_dir(self) -> Path:
        """A new folder under the runs directory, named by the time (never an existing one)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        stem = f"live-{time.strftime('%Y-%m-%d-%H%M%S')}"
        for i in range(1, 1000):
            folder = self.runs_dir / (stem if i == 1 else f"{stem}-{i}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
        raise ExplainError(f"no free run folder name in {self.runs_dir}", CONFLICT)

    # ---- controls
    def control(self, session_id: str, action: str) -> dict:
        """Pause, resume, one step (while paused), stop (saved, resumable) or reset."""
        if action not in CONTROLS:
            raise ExplainError(f"unknown control {action[:40]!r}; known: {', '.join(CONTROLS)}")
        page = self.page(session_id)
        if action in ("stop", "reset"):
            with page.controls:
                self.end(page)
                if action == "reset":
                    page.clear()
            return page.summary()
        with page.cond:
            if not page.alive():
                raise ExplainError(f"{action}: no run is training in this tab; press Start", 409)
            if action == "step" and not page.paused:
                raise ExplainError("step: the run is not paused; pause it first", CONFLICT)
            page.paused = action != "resume"
            page.steps_allowed += action == "step"
            page.cond.notify_all()
            return page.summary()

    def end(self, page: Page) -> None:
        """Stop the tab's run (saved at a step boundary) and wait for its thread to end."""
        with page.cond:
            page.request_stop()
        if page.thread is not None:
            page.thread.join(STOP_WAIT)
            if page.thread.is_alive():
                raise ExplainError(
                    f"the run did not stop within {STOP_WAIT:.0f} s; try again", CONFLICT
                )

    def set_lr(self, session_id: str, payload: dict) -> dict:
        """A new learning rate, used from the next step on (or when the run continues)."""
        page = self.page(session_id)
        lr = live_config.bounded(payload, "lr", float, 1e-7, 10.0)
        with page.cond:
            if page.picked is not None:
                page.picked["lr"] = lr
            page.pending_lr = lr
            page.cond.notify_all()
        return dict(page.summary(), lr=lr)

    def set_input(self, session_id: str, payload: dict) -> dict:
        """The image whose feature maps and prediction the page shows: drawn pixels
        (base64, C·H·W uint8, ``centre`` like MNIST) or a test image's ``test_index``."""
        page = self.page(session_id)
        index = field(payload, "test_index", int, None)
        shape = tuple(page.config["input_shape"]) if page.config else (1, 28, 28)
        pixels = None
        if index is None:
            text = field(payload, "pixels", str)
            if page.config and len(text) != 4 * math.ceil(math.prod(shape) / 3):
                return dict(page.summary(), message=f"a drawing is not a {shape} input")
            pixels = inputs.decode_pixels(text, shape)
            if field(payload, "centre", bool, False):
                pixels = inputs.centre_like_mnist(pixels)
        elif page.loaded is not None and not 0 <= index < len(page.loaded.test):
            raise ExplainError(
                f"field 'test_index' must be from 0 to {len(page.loaded.test) - 1}, "
                f"received {index}"
            )
        page.show_input(pixels, index or 0)
        return page.summary()

    def timeline(self, session_id: str, payload: dict) -> dict:
        """The tab's run at a recorded step (``step``), or its recorded steps (no field)."""
        page = self.page(session_id)
        if "step" not in payload:
            return {"steps": page.recorded_steps()}
        return page.at_step(payload["step"])

    def stop_all(self) -> None:
        """Stop every tab's run (the server is shutting down): each leaves a resumable folder."""
        for page in list(self.pages.values()):
            self.end(page)


def new_source() -> Source:
    """A new classic network (untrained, default initialisation) for the explain page when
    ``kernelab studio`` opens without a run; normalised with MNIST's statistics."""
    config = live_config.new_config()
    config.update(mean=float(MNIST_MEAN), std=float(MNIST_STD))
    return Source(
        model=runs.model_from_config(config).eval(),
        config=config,
        path=Path("new classic network"),
        kind="new",
        input_shape=(1, 28, 28),
        mean=config["mean"],
        std=config["std"],
        classes=config["classes"],
        notes=["untrained: train it in the Train view"],
    )
