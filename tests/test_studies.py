"""The studies (``kernelab study NAME``), each run tiny on synthetic MNIST-format files."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mnist_files import write_mnist

from kernelab import cli
from kernelab.apps import arch
from kernelab.apps.studies import STUDIES, Config, Recipe, runner
from kernelab.core.threads import get_num_threads, set_num_threads
from kernelab.kernels.constraints import num_free
from kernelab.kernels.summary import summary

TRAIN, TEST, SEEDS = 128, 64, 2


def _synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright 4-pixel-wide vertical bar at column 2 + 2c, on noise."""
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, c in enumerate(labels):
        images[i, 4:24, 2 + 2 * c : 6 + 2 * c] = 250
    return images, labels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    write_mnist(
        folder, {"train": _synthetic_digits(TRAIN, rng), "t10k": _synthetic_digits(TEST, rng)}
    )
    return folder


@pytest.fixture(scope="module")
def reports(data_dir, tmp_path_factory) -> dict[str, Path]:
    """Every study run once through the command line, tiny: 1 epoch, 2 seeds."""
    out = tmp_path_factory.mktemp("studies")
    threads = get_num_threads()
    try:
        for name in STUDIES:
            argv = ["study", name, "--data-dir", str(data_dir), "--out", str(out / name)]
            argv += ["--limit", str(TRAIN), "--epochs", "1", "--seeds", str(SEEDS)]
            assert cli.main(argv) == 0
    finally:
        set_num_threads(threads)  # the command sets one BLAS thread
    return {name: out / name for name in STUDIES}


def _results(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["configs"]


def _table_row(folder: Path, label: str) -> dict[str, str]:
    """The cells of the results table's row for ``label``, by column header."""
    lines = (folder / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Results"))
    header = next(line for line in lines[start:] if line.startswith("| "))
    names = [cell.strip() for cell in header.strip("|").split("|")]
    for line in lines[start:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] == label:
            return dict(zip(names, cells, strict=True))
    raise AssertionError(f"no row {label!r} in {folder / 'README.md'}")


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_writes_its_report_with_one_row_per_configuration(reports, data_dir, name):
    folder = reports[name]
    text = (folder / "README.md").read_text()
    for heading in ("## Results", "## Plots", "## Reading", "## Configurations"):
        assert heading in text
    assert "| Seeds | 2 (0, 1) |" in text and str(data_dir) in text
    images = [line[line.rindex("(") + 1 : -1] for line in text.splitlines() if line[:2] == "!["]
    assert images
    for image in images:
        assert (folder / image).stat().st_size > 1000
    configs = _results(folder)
    study = STUDIES[name]
    assert [c["label"] for c in configs] == [
        c.label for c in study.configs(study.image_size("quick"))
    ]
    for config in configs:
        row = _table_row(folder, config["label"])
        assert len(config["runs"]) == SEEDS
        for run in config["runs"]:
            assert 0.0 <= run["test_acc"] <= 1.0 and run["train_seconds"] > 0
            assert len(run["epochs"]) == 1 and math.isfinite(run["train_loss"])
        assert "±" in row["Test accuracy (%)"]


def test_params_and_macs_are_the_ones_summary_and_hand_counts_give(reports):
    for name, folder in reports.items():
        size = STUDIES[name].image_size("quick")
        for config in _results(folder):
            model = arch.build(config["spec"], (1, size, size))
            table = summary(model, (1, size, size))
            run = config["runs"][0]
            assert (run["params"], run["macs"]) == (table.params, table.macs)
            row = _table_row(folder, config["label"])
            if "Params" in row:
                assert row["Params"] == f"{table.params:,}"
    # independent of summary: the two-block network with k×k kernels, counted by hand
    for config in _results(reports["kernel-size"])[:5]:
        k = int(config["x"])
        params = (8 * k * k + 8) + (16 * 8 * k * k + 16) + (16 * 7 * 7 * 10 + 10)
        macs = 28 * 28 * 8 * k * k + 14 * 14 * 16 * 8 * k * k + 16 * 7 * 7 * 10
        assert (config["runs"][0]["params"], config["runs"][0]["macs"]) == (params, macs)


def test_symmetric_layers_learn_only_their_free_parameters(reports):
    configs = _results(reports["symmetry"])
    assert [c["label"] for c in configs[1:]] == ["x", "y", "xy", "point", "antipoint", "rot90"]
    for config in configs:
        symmetry = None if config["label"].startswith("none") else config["label"]
        free = num_free(symmetry, (5, 5))
        run = config["runs"][0]
        assert run["conv_params"] == (8 * free + 8) + (16 * 8 * free + 16)
        assert run["full_params"] == configs[0]["runs"][0]["params"]
        assert _table_row(reports["symmetry"], config["label"])[
            "Free params per 5x5 kernel"
        ] == str(free)


def test_table_cells_are_mean_and_sample_std_over_the_seeds(reports):
    for folder in reports.values():
        for config in _results(folder):
            accuracies = [100 * run["test_acc"] for run in config["runs"]]
            cell = _table_row(folder, config["label"])["Test accuracy (%)"]
            expected = f"{np.mean(accuracies):.2f} ± {np.std(accuracies, ddof=1):.2f}"
            assert cell == expected


def test_constant_kernels_stay_identical_and_random_ones_do_not(reports):
    configs = {c["init"]: c for c in _results(reports["init"])}
    for name in ("constant:0.1", "zeros"):
        for run in configs[name]["runs"]:
            assert run["kernel_spread_start"] == run["kernel_spread_end"] == 0.0
    assert all(run["kernel_spread_end"] > 0 for run in configs["he_normal"]["runs"])
    text = (reports["init"] / "README.md").read_text()
    assert "`constant:0.1`: the first layer's kernels stayed identical" in text


def test_constant_start_gives_equal_kernels_after_training_checked_directly(data_dir):
    study_data = runner.load_study_data(data_dir, subset=False, limit=64)
    config = Config(
        "c",
        "conv3x3x4,relu,maxpool2,conv3x3x6,relu,flatten,linear10",
        init="constant:0.1",
        zero_bias=True,
    )
    model = arch.build(config.spec, study_data.input_shape, generator=0)
    runner.start_kernels(model, config, seed=0)
    first = runner.convs(model)[0]
    np.testing.assert_array_equal(first.bias.array, 0)
    before = first.materialize()
    from kernelab import data, optim
    from kernelab.apps.train import fit

    loader = data.DataLoader(
        data.TensorDataset(study_data.x_train, study_data.y_train), 16, shuffle=True, generator=0
    )
    fit(model, loader, 1, optim.Adam(model.parameters(), lr=1e-2), progress=False)
    kernels = first.materialize()
    assert not np.array_equal(kernels, before)  # it learned ...
    for kernel in kernels[1:]:
        np.testing.assert_array_equal(kernel, kernels[0])  # ... the same thing in every kernel


def test_downsampled_images_are_block_means(data_dir):
    full = runner.load_study_data(data_dir, subset=False, limit=8, test_limit=4)
    half = runner.load_study_data(data_dir, subset=False, limit=8, test_limit=4, image_size=14)
    assert half.input_shape == (1, 14, 14)
    assert "downsampled to 14x14" in half.source
    from kernelab.data import load_dataset

    raw = load_dataset("mnist", root=data_dir).train_images[:8].astype(np.float64) / 255
    blocks = np.zeros((8, 14, 14))
    for i in range(14):
        for j in range(14):
            blocks[:, i, j] = raw[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(axis=(1, 2))
    normalised = (blocks - blocks.mean()) / blocks.std()
    np.testing.assert_allclose(half.x_train[:, 0], normalised, rtol=1e-5, atol=1e-5)
    assert full.x_train.shape == (8, 1, 28, 28) and len(full.y_test) == 4


def test_row_statistics_and_one_seed():
    row = runner.Row(
        Config("a", "flatten,linear10"), [{"test_acc": 0.5}, {"test_acc": 0.7}, {"test_acc": 0.9}]
    )
    assert row.mean("test_acc") == pytest.approx(0.7)
    assert row.std("test_acc") == pytest.approx(0.2)  # sample std: sqrt((0.04 + 0 + 0.04) / 2)
    assert runner.Row(Config("b", "x"), [{"test_acc": 0.5}]).std("test_acc") == 0.0


def test_unknown_study_is_one_line_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["study", "colour"])
    assert "invalid choice" in capsys.readouterr().err


def test_runs_shared_over_two_ranks_equal_one_process(data_dir, tmp_path, monkeypatch):
    pytest.importorskip("mpi4py")
    # the same convolution kernels in both runs: by default a process runs the generated
    # ones only if an earlier process compiled them, as one may have between the two runs
    monkeypatch.setenv("KERNELAB_DIRECT_CONV", "0")
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    if mpiexec is None:
        pytest.skip("no mpiexec")
    args = [
        "study",
        "kernel-vs-image",
        "--data-dir",
        str(data_dir),
        "--limit",
        "64",
        "--epochs",
        "1",
        "--seeds",
        "2",
    ]
    env = dict(os.environ, KERNELAB_DIST_TIMEOUT="20", OMP_NUM_THREADS="1")
    command = [
        mpiexec,
        "-n",
        "2",
        sys.executable,
        "-m",
        "kernelab.cli",
        *args,
        "--out",
        str(tmp_path / "two"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    threads = get_num_threads()
    try:
        assert cli.main([*args, "--out", str(tmp_path / "one")]) == 0
    finally:
        set_num_threads(threads)
    two, one = _results(tmp_path / "two"), _results(tmp_path / "one")
    for a, b in zip(two, one, strict=True):
        for run_a, run_b in zip(a["runs"], b["runs"], strict=True):
            assert run_a["test_acc"] == run_b["test_acc"]
            assert run_a["loss_curve"] == run_b["loss_curve"]
    assert "2 MPI rank(s)" in (tmp_path / "two" / "README.md").read_text()


def test_recipe_is_what_the_report_says(reports):
    text = (reports["init"] / "README.md").read_text()
    recipe = Recipe(epochs=1, seeds=(0, 1))
    assert f"Adam lr {recipe.lr:g}, batch {recipe.batch_size}" in text
