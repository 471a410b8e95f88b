"""The training loop: history, validation, progress, early stopping, the divergence guard,
determinism, exact resumption and a kill at every write of the run files (in process;
resumption after a real kill is tested with the command in test_cli.py)."""

import contextlib
import json
import math
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import kernelab as kl
from kernelab import data, optim
from kernelab.apps import arch
from kernelab.apps.train import (
    BEST,
    CHECKPOINT,
    METRICS,
    History,
    Trainer,
    TrainingDiverged,
    evaluate,
    fit,
)
from kernelab.core import serialization
from kernelab.core.rng import manual_seed
from kernelab.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

SPEC = "conv3x4-same,relu,maxpool2,flatten,dropout0.2,linear4"
STEPS_PER_EPOCH = 6  # 96 images in batches of 16


def pattern_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 8, 8) noisy images whose class (0..3) is the quadrant holding a bright square."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for c in range(4):
        top, left = 4 * (c // 2), 4 * (c % 2)
        images[labels == c, 0, top : top + 4, left : left + 4] += 1.5
    return images, labels


TRAIN, VAL = pattern_data(96, 0), pattern_data(64, 1)


def setup(seed=0, lr=0.01, optimizer="adam", epochs=3, schedule=True, loader_seed=None):
    """Model, shuffling loader, optimiser and per-batch one-cycle schedule, all from ``seed``.

    ``loader_seed=None`` lets the loader draw its seed from the default generator.
    """
    manual_seed(seed)
    model = arch.build(SPEC, (1, 8, 8), generator=seed)
    loader = data.DataLoader(data.TensorDataset(*TRAIN), 16, shuffle=True, generator=loader_seed)
    params = model.parameters()
    opt = optim.SGD(params, lr=lr) if optimizer == "sgd" else optim.Adam(params, lr=lr)
    scheduler = (
        OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=len(loader)) if schedule else None
    )
    return model, loader, opt, scheduler


def val_loader():
    return data.DataLoader(data.TensorDataset(*VAL), 32)


def trainer_for(parts, **options) -> Trainer:
    model, loader, opt, scheduler = parts
    options.setdefault("progress", False)
    return Trainer(
        model,
        loader,
        opt,
        val_loader=val_loader(),
        scheduler=scheduler,
        scheduler_step="batch" if scheduler is not None else "epoch",
        **options,
    )


def weights(model) -> dict[str, np.ndarray]:
    return {k: np.array(v.array) for k, v in model.state_dict().items()}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


class Interrupt(Exception):
    """Stands in for a kill in the middle of training."""


def interrupt_after(monkeypatch, epoch: int, steps: int) -> None:
    """Make Trainer._step raise before the step after ``steps`` steps of epoch ``epoch``."""
    real_step = Trainer._step

    def step(self, x, y):
        if (self.epoch, self.running.steps) == (epoch, steps):
            raise Interrupt
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "_step", step)


# ---- history, validation, files
def test_fit_records_history_validation_and_run_files(tmp_path):
    trainer = trainer_for(setup(), run_dir=tmp_path, config={"note": "x"})
    history = trainer.fit(3)
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3]
    keys = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert keys | {"images_per_s"} == set(history.epochs[0])
    assert history.epochs[-1]["val_acc"] >= 0.9  # the pattern is learnable
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.best("val_loss") == min(history.epochs, key=lambda row: row["val_loss"])
    assert history.best("val_acc")["val_acc"] == max(row["val_acc"] for row in history.epochs)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == {"config": {"note": "x"}, "epochs": history.epochs}
    state = serialization.load(tmp_path / CHECKPOINT)
    assert state["epoch"] == 3 and state["running"]["steps"] == 0
    assert_bit_identical(weights(trainer.model), {k: v.array for k, v in state["model"].items()})
    assert (tmp_path / "best.kl").exists()


def test_validation_matches_a_plain_loop():
    model, *_ = setup()
    x, y = VAL
    logits = model.eval()(kl.Tensor(x)).array
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    model.train()
    result = evaluate(model, val_loader())
    assert result["val_acc"] == np.mean(logits.argmax(axis=1) == y)
    assert math.isclose(result["val_loss"], -log_probs[np.arange(len(y)), y].mean(), rel_tol=1e-5)
    assert model.training  # evaluation mode was only borrowed


def test_each_epoch_trains_in_training_mode(monkeypatch):
    """A model left in evaluation mode (dropout off) is switched back to training by fit."""
    modes = []
    real_step = Trainer._step

    def step(self, x, y):
        modes.append(self.model.training)
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "_step", step)
    trainer = trainer_for(setup(epochs=2))
    trainer.model.eval()
    trainer.fit(2)
    assert modes == [True] * (2 * STEPS_PER_EPOCH)


def test_images_per_second_counts_the_epoch_and_every_rank(monkeypatch):
    """Throughput is the epoch's images over its seconds, times the processes sharing each
    batch (each rank sees its share of the batch)."""
    monkeypatch.setattr("kernelab.apps.train.get_world_size", lambda: 2)  # a plain model
    (row,) = trainer_for(setup(epochs=1)).fit(1).epochs  # ignores the world: its own batch
    assert row["images_per_s"] == pytest.approx(len(TRAIN[0]) / row["seconds"])
    monkeypatch.setattr(Trainer, "_ranks", lambda self: 2)
    (row,) = trainer_for(setup(epochs=1)).fit(1).epochs
    assert row["images_per_s"] == pytest.approx(2 * len(TRAIN[0]) / row["seconds"])


def test_validation_of_no_batches_is_zero_not_a_division_by_zero():
    empty = data.DataLoader(data.TensorDataset(VAL[0][:0], VAL[1][:0]), 32)
    assert evaluate(setup()[0], empty) == {"val_loss": 0.0, "val_acc": 0.0}


def test_history_records_the_first_groups_learning_rate():
    model, loader, _, _ = setup(schedule=False)
    first, *rest = model.parameters()
    opt = optim.SGD([{"params": [first]}, {"params": rest, "lr": 0.5}], lr=0.01)
    (row,) = trainer_for((model, loader, opt, None)).fit(1).epochs
    assert row["lr"] == 0.01


def test_progress_bar_is_drawn(capsys):
    trainer_for(setup(), progress=True).fit(1)
    err = capsys.readouterr().err
    assert "epoch 1" in err and "96/96" in err and "loss=" in err and "acc=" in err


def test_progress_line_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # import tqdm fails
    trainer_for(setup(), progress=True).fit(1)
    err = capsys.readouterr().err
    assert "\repoch 1 96/96" in err and "img/s" in err and "ETA" in err and err.endswith("\n")


def test_no_progress_is_silent(capsys):
    trainer_for(setup()).fit(1)
    assert capsys.readouterr().err == ""


def test_scheduler_step_must_be_epoch_or_batch():
    model, loader, opt, _ = setup()
    with pytest.raises(ValueError, match="scheduler_step must be 'epoch' or 'batch'"):
        Trainer(model, loader, opt, scheduler_step="step")


def test_reduce_on_plateau_watches_the_validation_loss(monkeypatch):
    model, loader, opt, _ = setup()
    plateau = ReduceLROnPlateau(opt)
    seen = []
    monkeypatch.setattr(plateau, "step", seen.append)
    history = Trainer(
        model, loader, opt, val_loader=val_loader(), scheduler=plateau, progress=False
    ).fit(2)
    assert seen == [row["val_loss"] for row in history.epochs]


def test_each_epoch_visits_the_data_in_its_own_order(monkeypatch):
    """Epoch e takes the samples in the DataLoader's documented order for e,
    ``default_rng([seed, e]).permutation(n)``, so no epoch replays another's."""
    seen = []  # (epoch, images of one batch)
    real_step = Trainer._step

    def step(self, x, y):
        seen.append((self.epoch, x.array.copy()))
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "_step", step)
    trainer_for(setup(loader_seed=7)).fit(3)
    for epoch in range(3):
        images = np.concatenate([x for e, x in seen if e == epoch])
        order = np.random.default_rng([7, epoch]).permutation(len(TRAIN[0]))
        assert np.array_equal(images, TRAIN[0][order]), epoch


# ---- early stopping
@pytest.mark.parametrize(("patience", "epochs"), [(0, 2), (1, 2), (2, 3), (4, 5)])
def test_early_stopping_after_patience_epochs_without_improvement(tmp_path, patience, epochs):
    """With lr 0 the validation loss never improves after the first epoch; as Keras, patience
    N stops at the N-th epoch in a row without improvement (0 and 1 at the first)."""
    trainer = trainer_for(setup(lr=0.0, schedule=False), patience=patience, run_dir=tmp_path)
    history = trainer.fit(10)
    assert len(history.epochs) == epochs and history.stopped_early
    assert serialization.load(tmp_path / CHECKPOINT)["bad_epochs"] == epochs - 1


def test_no_early_stop_while_improving():
    history = trainer_for(setup(), patience=0).fit(3)
    losses = [row["val_loss"] for row in history.epochs]
    assert losses == sorted(losses, reverse=True)  # improving every epoch
    assert len(history.epochs) == 3 and not history.stopped_early


# ---- divergence
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
@pytest.mark.parametrize(
    ("start_lr", "huge_lr", "symptom"),
    [(1e12, 1e12, "the loss became nan"), (0.01, math.inf, "the weights became infinite or NaN")],
    ids=["logits-overflow", "weights-overflow"],
)
def test_huge_learning_rate_stops_with_a_clear_error_and_keeps_the_last_finite_checkpoint(
    tmp_path, start_lr, huge_lr, symptom
):
    """Either the logits overflow (finite weights, NaN loss) or a step makes the weights
    infinite: the run stops and the checkpoint on disk holds the last finite weights."""
    model, loader, opt, _ = setup(lr=start_lr, optimizer="sgd", schedule=False)
    snapshots = []  # the weights after every step, finite or not
    real_step = opt.step

    def step(*args):
        if len(snapshots) == 2:
            opt.param_groups[0]["lr"] = huge_lr
        real_step(*args)
        snapshots.append(weights(model))

    opt.step = step
    trainer = Trainer(model, loader, opt, run_dir=tmp_path, checkpoint_every=1, progress=False)
    with pytest.raises(TrainingDiverged) as caught:
        trainer.fit(5)
    message = str(caught.value)
    assert message.startswith(symptom)
    assert str(tmp_path / CHECKPOINT) in message and "lower learning rate" in message
    finite = [s for s in snapshots if all(np.isfinite(v).all() for v in s.values())]
    assert len(finite) >= 2  # it diverged after some good steps
    state = serialization.load(tmp_path / CHECKPOINT)
    assert_bit_identical({k: v.array for k, v in state["model"].items()}, finite[-1])
    fresh, *_ = setup()
    fresh.load_state_dict(state["model"])  # the kept checkpoint loads


def test_a_nan_loss_stops_training():
    model, loader, opt, _ = setup(schedule=False)
    trainer = Trainer(
        model, loader, opt, loss_fn=lambda logits, y: logits.sum() * math.nan, progress=False
    )
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at epoch 1, step 1"):
        trainer.fit(1)


# ---- determinism and resumption
def run(parts, epochs=3, **options) -> dict[str, np.ndarray]:
    trainer = trainer_for(parts, **options)
    trainer.fit(epochs)
    return weights(trainer.model)


def test_same_seed_gives_bit_identical_weights():
    first, second = run(setup(seed=3, loader_seed=7)), run(setup(seed=3, loader_seed=7))
    assert_bit_identical(first, second)
    other = run(setup(seed=4, loader_seed=7))
    assert not np.array_equal(first["0.weight"], other["0.weight"])


@pytest.mark.parametrize(("epoch", "steps"), [(0, 4), (1, 0), (1, 3), (2, 5)])
def test_resume_is_bit_identical(tmp_path, monkeypatch, epoch, steps):
    """Stop at (epoch, steps), build everything anew, restore, finish: the same weights.

    The new loader draws a different shuffling seed from the default generator, and the model
    starts from other weights: all of it must come from the checkpoint (dropout's random
    draws included).
    """
    reference = run(setup(seed=0))
    interrupt_after(monkeypatch, epoch, steps)
    with pytest.raises(Interrupt):
        run(setup(seed=0), run_dir=tmp_path, checkpoint_every=1)
    monkeypatch.undo()
    state = serialization.load(tmp_path / CHECKPOINT)
    assert (state["epoch"], state["running"]["steps"]) == (epoch, steps)
    parts = setup(seed=99)  # everything different until restored
    trainer = trainer_for(parts, run_dir=tmp_path, checkpoint_every=1)
    trainer.restore(tmp_path / CHECKPOINT)
    history = trainer.fit(3)
    assert_bit_identical(weights(trainer.model), reference)
    assert len(history.epochs) == 3


def test_a_resumed_epochs_progress_counts_the_images_seen_before(tmp_path, monkeypatch, capsys):
    interrupt_after(monkeypatch, 0, 2)
    with pytest.raises(Interrupt):
        run(setup(seed=0), run_dir=tmp_path, checkpoint_every=1)
    monkeypatch.undo()
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # the plain progress line
    trainer = trainer_for(setup(seed=0), run_dir=tmp_path, progress=True)
    trainer.restore(tmp_path / CHECKPOINT)
    capsys.readouterr()
    trainer.fit(1)
    err = capsys.readouterr().err
    assert "epoch 1 32/96" in err and "epoch 1 96/96" in err and "epoch 1 16/96" not in err


def test_resume_through_fit_with_checkpoint_every(tmp_path, monkeypatch):
    model, loader, opt, scheduler = setup(seed=1, epochs=2)
    expected_history = fit(
        model,
        loader,
        2,
        opt,
        val_loader=val_loader(),
        scheduler=scheduler,
        scheduler_step="batch",
        progress=False,
    )
    expected = weights(model)
    interrupt_after(monkeypatch, 1, 4)
    model, loader, opt, scheduler = setup(seed=1, epochs=2)
    options = dict(
        scheduler=scheduler,
        scheduler_step="batch",
        progress=False,
        run_dir=tmp_path,
        checkpoint_every=3,
    )
    with pytest.raises(Interrupt):
        fit(model, loader, 2, opt, val_loader=val_loader(), **options)
    monkeypatch.undo()
    assert (
        serialization.load(tmp_path / CHECKPOINT)["running"]["steps"] == 3
    )  # the last multiple of 3
    model, loader, opt, scheduler = setup(seed=1, epochs=2)
    options["scheduler"] = scheduler
    history = fit(
        model, loader, 2, opt, val_loader=val_loader(), resume=tmp_path / CHECKPOINT, **options
    )
    assert_bit_identical(weights(model), expected)
    for got, want in zip(history.epochs, expected_history.epochs, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert got[key] == want[key], key


# ---- crash consistency: a kill at every write of the save sequence
class Killed(BaseException):
    """Stands in for SIGKILL: no handler of the library catches it (it is no Exception)."""


def watch_writes(monkeypatch, run_dir: Path, kill_at=None, snapshot=None) -> list[str]:
    """Record every write into ``run_dir``: before its temporary file is written, before the
    rename and after it. At event number ``kill_at``, copy the folder to ``snapshot`` as a
    kill would leave it (temporary files included) and raise :class:`Killed`."""
    events = []
    real_writer, real_replace = serialization.atomic_writer, os.replace

    def event(what: str) -> None:
        if len(events) == kill_at:
            shutil.copytree(run_dir, snapshot)
            raise Killed
        events.append(what)

    @contextlib.contextmanager
    def writer(path):
        event(f"write {Path(path).name}")
        with real_writer(path) as file:
            yield file

    def replace(source, target):
        if Path(target).parent != run_dir:  # e.g. a compiled-kernel cache
            return real_replace(source, target)
        event(f"rename {Path(target).name}")
        real_replace(source, target)
        event(f"renamed {Path(target).name}")

    monkeypatch.setattr(serialization, "atomic_writer", writer)
    monkeypatch.setattr(os, "replace", replace)
    return events


TIMING = ("seconds", "images_per_s")  # wall-clock measurements: no two runs share them


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def run_files(run_dir: Path) -> dict[str, object]:
    """Every file of a run folder: a checkpoint as its members (each array's .npy bytes and
    the parsed tree), metrics.json parsed; the timing fields of the history left out."""
    files = {}
    for path in sorted(run_dir.iterdir()):
        if path.suffix == ".kl":
            with zipfile.ZipFile(path) as archive:
                members = {name: archive.read(name) for name in archive.namelist()}
            tree = json.loads(members.pop("tree.json"))
            tree["content"]["history"] = without_timing(tree["content"]["history"])
            files[path.name] = {"tree": tree, **members}
        elif path.name == METRICS:
            metrics = json.loads(path.read_text())
            files[path.name] = {**metrics, "epochs": without_timing(metrics["epochs"])}
        else:
            files[path.name] = path.read_bytes()
    return files


KILL_SCENARIOS = {
    # better every epoch, with checkpoints after steps 3 and 6 of each epoch too
    "improving": ({"epochs": 2}, {"checkpoint_every": 3}, 2),
    # lr 0: epoch 2 is no better, and patience 1 stops the run there, 2 epochs early
    "early-stop": ({"lr": 0.0, "schedule": False}, {"patience": 1}, 4),
}


def kill_scenario_run(name: str, run_dir: Path, seed: int = 0, resume: bool = False) -> None:
    """Train scenario ``name`` into ``run_dir``; ``resume``: restore its checkpoint first, as
    ``kernelab train --resume`` does, or start again if the kill came before the first."""
    parts, options, epochs = KILL_SCENARIOS[name]
    resume = resume and (run_dir / CHECKPOINT).exists()
    trainer = trainer_for(setup(seed=99 if resume else seed, **parts), run_dir=run_dir, **options)
    if resume:
        trainer.restore(run_dir / CHECKPOINT)
    trainer.fit(epochs)


def writes(*names: str) -> list[str]:
    """The events :func:`watch_writes` records for writing these files in turn."""
    return [f"{when} {name}" for name in names for when in ("write", "rename", "renamed")]


@pytest.mark.parametrize(
    ("scenario", "last_epoch", "kill_points"),
    [
        ("improving", writes(CHECKPOINT, CHECKPOINT, CHECKPOINT, BEST, METRICS), 30),
        ("early-stop", writes(CHECKPOINT, METRICS), 15),  # no better: best.kl stays
    ],
)
def test_a_kill_at_any_write_resumes_to_the_files_of_an_uninterrupted_run(
    tmp_path, monkeypatch, scenario, last_epoch, kill_points
):
    """Kill before each write, before each rename and after it, then resume: the checkpoint,
    best.kl (every array and the whole tree) and metrics.json equal an uninterrupted run's,
    and no other file is left."""
    reference = tmp_path / "reference"
    reference.mkdir()
    events = watch_writes(monkeypatch, reference)
    kill_scenario_run(scenario, reference)
    monkeypatch.undo()
    expected = run_files(reference)
    assert sorted(expected) == [BEST, CHECKPOINT, METRICS]
    assert events[-len(last_epoch) :] == last_epoch
    assert len(events) == kill_points
    for k, event in enumerate(events):
        run_dir, killed = tmp_path / f"run{k}", tmp_path / f"killed{k}"
        run_dir.mkdir()
        watch_writes(monkeypatch, run_dir, kill_at=k, snapshot=killed)
        with pytest.raises(Killed):
            kill_scenario_run(scenario, run_dir)
        monkeypatch.undo()
        kill_scenario_run(scenario, killed, resume=True)
        assert run_files(killed) == expected, f"killed at {event} (kill point {k})"


def test_history_best_without_rows():
    assert History().best() is None


def test_on_step_counts_steps_over_epochs_and_across_a_resume(tmp_path, monkeypatch):
    """96 images in batches of 16: 6 steps an epoch, counted on from the checkpoint."""
    rows = []
    run(setup(seed=0), epochs=2, on_step=rows.append)
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert [r["epoch"] for r in rows] == [1] * 6 + [2] * 6
    assert all(0 <= r["acc"] <= 1 and math.isfinite(r["loss"]) and r["lr"] > 0 for r in rows)
    interrupt_after(monkeypatch, 1, 2)
    with pytest.raises(Interrupt):
        run(setup(seed=0), epochs=2, run_dir=tmp_path, checkpoint_every=1)
    monkeypatch.undo()
    resumed = []
    trainer = trainer_for(setup(seed=0), run_dir=tmp_path, on_step=resumed.append)
    trainer.restore(tmp_path / CHECKPOINT)
    trainer.fit(2)
    assert [r["step"] for r in resumed] == list(range(9, 13))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in rows[8:]]
