"""Kernel timelines: the schedule, what a snapshot holds, the byte budget, and a run killed and
resumed ending with the timeline of a run never interrupted."""

import math

import numpy as np
import pytest
from test_train import STEPS_PER_EPOCH, Interrupt, interrupt_after, setup, trainer_for

from kernelab.apps import arch, runs
from kernelab.apps.timeline import (
    DEFAULT_BUDGET,
    FOLDER,
    FORMAT,
    TimelineRecorder,
    conv_part,
    has_timeline,
    load_timeline,
    schedule,
    snapshot_path,
)
from kernelab.apps.train import CHECKPOINT
from kernelab.core import serialization

EPOCHS = 3
TOTAL = EPOCHS * STEPS_PER_EPOCH
BUDGET = 26_000  # bytes: 8 snapshots of the pattern network (40 values each)


# ---- the schedule
@pytest.mark.parametrize("total", [1, 2, 7, 19, 20, 100, 937, 4690, 10**6])
@pytest.mark.parametrize("count", [2, 3, 5, 19, 40])
def test_schedule_holds_the_first_and_last_steps_and_fits_the_count(total, count):
    steps = schedule(total, count)
    assert steps[0] == 0 and steps[-1] == total
    assert all(np.diff(steps) > 0)
    assert len(steps) == min(count, total + 1)  # the budget is used, never passed


def test_schedule_is_dense_at_the_start_then_geometric():
    steps = schedule(4690, 19)
    assert steps[:4] == [0, 1, 2, 3]
    gaps = np.diff(steps[:-1])  # the last step closes the run wherever it falls
    assert all(np.diff(gaps) >= 0)
    ratios = np.array(steps[5:-1]) / np.array(steps[4:-2])
    assert ratios.max() - ratios.min() < 0.1  # each step about the same factor past the last
    assert schedule(5, 19) == [0, 1, 2, 3, 4, 5]  # everything when it fits
    assert schedule(0, 19) == [0]


def test_schedule_refuses_a_budget_of_fewer_than_two_snapshots():
    with pytest.raises(ValueError, match="2 snapshots"):
        schedule(10, 1)


# ---- what is recorded
def test_conv_part_runs_to_the_last_convolution():
    classic = arch.build(runs.classic_spec(5), (1, 28, 28), generator=0)
    assert conv_part(classic) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    spec = "conv3x4-same,bn,relu,conv3x6-nobias,bn,relu,flatten,linear2"
    keys = conv_part(arch.build(spec, (1, 8, 8), generator=0))
    assert keys[0] == "0.weight" and keys[-1] == "3.weight"
    assert "1.running_mean" in keys and not any(k.startswith("4.") for k in keys)
    assert conv_part(arch.build("flatten,linear2", (1, 4, 4), generator=0)) == []


def test_a_model_without_convolution_or_a_tiny_budget_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no Conv2d"):
        TimelineRecorder(tmp_path, arch.build("flatten,linear2", (1, 4, 4), generator=0), 10)
    model = arch.build(runs.classic_spec(5), (1, 28, 28), generator=0)
    with pytest.raises(ValueError, match="2 snapshots"):
        TimelineRecorder(tmp_path, model, 10, budget=300_000)


def train_recording(run_dir, epochs=EPOCHS, **options):
    """Train the pattern network from seed 0 with a timeline; the weights and loss seen at
    every step, and the recorder."""
    parts = setup(seed=0)
    recorder = TimelineRecorder(run_dir, parts[0], TOTAL, budget=BUDGET)
    seen = {0: ({k: np.array(v.array) for k, v in parts[0].state_dict().items()}, None)}

    def on_step(row):
        recorder.on_step(row)
        weights = {k: np.array(v.array) for k, v in parts[0].state_dict().items()}
        seen[row["step"]] = (weights, row["loss"])

    trainer = trainer_for(parts, run_dir=run_dir, on_step=on_step, **options)
    recorder.start()
    trainer.fit(epochs)
    return seen, recorder


def test_snapshots_hold_the_exact_kernels_and_loss_of_their_step(tmp_path):
    seen, recorder = train_recording(tmp_path)
    timeline = load_timeline(tmp_path)
    assert timeline.steps == recorder.steps and len(timeline) < TOTAL + 1
    assert timeline.steps[0] == 0 and timeline.steps[-1] == TOTAL
    for step in timeline.steps:
        weights, loss = seen[step]
        snapshot = timeline.snapshot(step)
        assert list(snapshot) == ["0.weight", "0.bias"]
        for name, values in snapshot.items():
            assert values.dtype == weights[name].dtype
            assert np.array_equal(values, weights[name]), (step, name)
        assert timeline.loss(step) == loss
    assert timeline.losses[0] is None and all(math.isfinite(v) for v in timeline.losses[1:])
    assert timeline.epoch(TOTAL) == EPOCHS
    with pytest.raises(KeyError, match="step 10000 is not in the timeline"):
        timeline.snapshot(10_000)


def test_the_classic_network_over_five_mnist_epochs_fits_the_default_budget(tmp_path):
    model = arch.build(runs.classic_spec(5), (1, 28, 28), generator=0)
    total = 5 * math.ceil(60_000 / 64)
    recorder = TimelineRecorder(tmp_path, model, total)
    for step in range(total + 1):
        recorder.record(step, loss=1.0, epoch=1)
    files = list((tmp_path / FOLDER).iterdir())
    assert len(files) == len(recorder.steps) >= 15
    assert sum(f.stat().st_size for f in files) <= DEFAULT_BUDGET
    assert max(f.stat().st_size for f in files) <= recorder.snapshot_bytes


def test_finish_records_the_last_step_of_a_run_stopped_early(tmp_path):
    model = setup(seed=0)[0]
    recorder = TimelineRecorder(tmp_path, model, 1000, budget=8 * 2**10)
    recorder.on_step({"step": 999, "epoch": 2, "loss": 0.5, "acc": 1.0, "lr": 0.1})
    assert not (tmp_path / FOLDER).exists()  # off the schedule
    recorder.finish(999)
    recorder.finish(1000)
    timeline = load_timeline(tmp_path)
    assert timeline.steps == [999, 1000] and timeline.loss(999) == 0.5
    assert timeline.epoch(999) == 2 and timeline.loss(1000) is None


def test_a_new_run_removes_the_snapshots_of_an_earlier_one_in_its_folder(tmp_path):
    model = setup(seed=0)[0]
    earlier = TimelineRecorder(tmp_path, model, 1000, budget=BUDGET)
    earlier.start()
    earlier.finish(777)
    TimelineRecorder(tmp_path, model, 10, budget=BUDGET).start()
    assert load_timeline(tmp_path).steps == [0]


# ---- resuming
def assert_same_timeline(a, b) -> None:
    assert a.steps == b.steps and a.losses == b.losses
    for step in a.steps:
        snap_a, snap_b = a.snapshot(step), b.snapshot(step)
        assert list(snap_a) == list(snap_b)
        for name in snap_a:
            assert np.array_equal(snap_a[name], snap_b[name]), (step, name)


@pytest.mark.parametrize(("epoch", "steps"), [(0, 0), (0, 3), (1, 0), (2, 5)])
def test_a_run_killed_and_resumed_ends_with_the_timeline_of_one_never_killed(
    tmp_path, monkeypatch, epoch, steps
):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    train_recording(reference)
    interrupt_after(monkeypatch, epoch, steps)
    with pytest.raises(Interrupt):
        train_recording(killed, checkpoint_every=1)
    monkeypatch.undo()
    # a kill in the middle of a snapshot's write leaves a temporary file beside it
    (killed / FOLDER / ".step-00000001.kl.1234.tmp").write_bytes(b"partial")
    resume = (killed / CHECKPOINT).exists()  # else started again, as a new run
    parts = setup(seed=99 if resume else 0)  # everything different until restored
    recorder = TimelineRecorder(killed, parts[0], TOTAL, budget=BUDGET)
    trainer = trainer_for(parts, run_dir=killed, on_step=recorder.on_step, checkpoint_every=1)
    if resume:
        trainer.restore(killed / CHECKPOINT)
    if trainer.step == 0:
        recorder.start()
    trainer.fit(EPOCHS)
    recorder.finish(trainer.step)
    assert_same_timeline(load_timeline(killed), load_timeline(reference))
    assert sorted(p.name for p in (killed / FOLDER).iterdir()) == sorted(
        p.name for p in (reference / FOLDER).iterdir()
    )


# ---- reading
def test_a_run_without_timeline_or_with_a_foreign_file_is_refused(tmp_path):
    assert not has_timeline(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no kernel timeline"):
        load_timeline(tmp_path)
    serialization.save({"weights": np.zeros(3)}, snapshot_path(tmp_path, 5))
    assert has_timeline(tmp_path)
    with pytest.raises(serialization.CheckpointError, match="not a kernel timeline snapshot"):
        load_timeline(tmp_path)


@pytest.mark.parametrize(
    "change",
    [{"step": "3"}, {"state": "x"}, {"state": {"w": [1.0]}}, {"loss": "low"}, {"epoch": 1.5}],
)
def test_a_snapshot_with_bad_fields_is_refused(tmp_path, change):
    content = {"format": FORMAT, "step": 3, "epoch": 1, "loss": 0.5, "total_steps": 10}
    content["state"] = {"0.weight": np.zeros((2, 1, 3, 3), np.float32)}
    serialization.save(dict(content, **change), snapshot_path(tmp_path, 3))
    with pytest.raises(serialization.CheckpointError, match="bad fields"):
        load_timeline(tmp_path)


def test_a_damaged_snapshot_is_refused(tmp_path):
    TimelineRecorder(tmp_path, setup(seed=0)[0], 10).write(3)
    path = snapshot_path(tmp_path, 3)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(serialization.CheckpointError):
        load_timeline(tmp_path)


def test_a_snapshot_under_another_steps_name_is_refused(tmp_path):
    model = setup(seed=0)[0]
    TimelineRecorder(tmp_path, model, 10).write(3)
    snapshot_path(tmp_path, 3).rename(snapshot_path(tmp_path, 4))
    with pytest.raises(serialization.CheckpointError, match="holds step 3, its name says 4"):
        load_timeline(tmp_path)


def test_snapshots_are_read_only(tmp_path):
    model = setup(seed=0)[0]
    TimelineRecorder(tmp_path, model, 10).write(0)
    with pytest.raises(ValueError):
        load_timeline(tmp_path).snapshot(0)["0.weight"][...] = 0
