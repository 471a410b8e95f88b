"""Training programs written for PyTorch, run from the same source on PyTorch and on kernelab
(only the imports read differently), from the same weights and the same batches: losses and
final weights agree step by step to float32 precision (or, past a near tie the two float32
runs decide apart, kernelab's stays at least as close to PyTorch's float64 run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compat_engines import max_differences, program
from mnist_files import bar_digits, write_mnist

# |kernelab − torch| / max|torch|, per recorded series and per final weight: float32 rounding
# accumulated over a few dozen steps of training
# (observed: below 2e-6 for every series and weight)
TOLERANCE = 2e-5
# Programs PyTorch also runs in float64: arbiters when a near tie parts the float32 runs
FLOAT64_ARBITER = {"mnist_adadelta", "resnet_plateau"}


def mnist_data(rng):
    return {
        "images": rng.standard_normal((32, 1, 28, 28)).astype(np.float32),
        "labels": rng.integers(0, 10, 32),
        "test_images": rng.standard_normal((16, 1, 28, 28)).astype(np.float32),
        "test_labels": rng.integers(0, 10, 16),
    }


def clip_data(rng):
    return {
        "images": rng.standard_normal((16, 1, 16, 16)).astype(np.float32),
        "labels": rng.integers(0, 5, 16),
    }


def resnet_data(rng):
    return {
        "x": rng.standard_normal((24, 3, 12, 12)).astype(np.float32),
        "y": rng.integers(0, 5, 24),
        "x_val": rng.standard_normal((8, 3, 12, 12)).astype(np.float32),
        "y_val": rng.integers(0, 5, 8),
    }


def loader_data(rng, directory):
    x = rng.standard_normal((60, 12)).astype(np.float32) * 3 + 1
    y = (x[:, :4].argmax(axis=1)).astype(np.int32)  # learnable; int32 labels made long
    return {
        "x": x,
        "y": y,
        "orders": [rng.permutation(60) for _ in range(3)],
        "directory": str(directory),
    }


def scratch_data(rng):
    return {
        "x": rng.standard_normal((16, 10)).astype(np.float32),
        "y": rng.standard_normal((16, 3)).astype(np.float32),
        "w1": (rng.standard_normal((10, 20)) * 0.3).astype(np.float32),
        "w2": (rng.standard_normal((20, 3)) * 0.3).astype(np.float32),
    }


def run_both(name: str, data_for_torch: dict, data_for_kernelab: dict):
    torch_program, kernelab_program = program(name, "torch"), program(name, "kernelab")
    torch.manual_seed(0)
    model = torch_program["make_model"]()
    if model is None:  # weights given as data
        initial = {k: data_for_torch[k] for k in ("w1", "w2")}
    else:
        initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        ours = kernelab_program["make_model"]().state_dict()
        assert {k: tuple(v.shape) for k, v in ours.items()} == {
            k: v.shape for k, v in initial.items()
        }
    theirs = torch_program["train"](initial, data_for_torch)
    mine = kernelab_program["train"](initial, data_for_kernelab)
    return mine, theirs


# Nodes PyTorch has that kernelab folds into their neighbour: cross_entropy is one node
# (NllLoss after LogSoftmax in PyTorch), and a Linear's weight is not transposed by a node of
# its own. A Linear's inputs are (input, weight, bias) where PyTorch's addmm has
# (bias, input, weightᵀ), so the leaves are visited in another order.
FOLDED = {"LogSoftmaxBackward0", "TBackward0"}


def kernelab_graph(names: list[str]) -> list[str]:
    """PyTorch's depth-first node names as kernelab's graph has them: the inner nodes in the
    same order without those kernelab folds, then the leaves' AccumulateGrad nodes."""
    leaf = "torch::autograd::AccumulateGrad"
    inner = [n for n in names if n not in FOLDED and n != leaf]
    return inner + [leaf] * names.count(leaf)


def compared(mine, theirs) -> dict[str, tuple]:
    """Every recorded series and final weight: (kernelab's, PyTorch's), after checking that
    the strings and the graph are the same."""
    assert mine.keys() == theirs.keys()
    pairs = {}
    for key in mine:
        if isinstance(theirs[key], str):
            assert mine[key] == theirs[key], key
        elif key == "graph":
            assert mine[key] == kernelab_graph(theirs[key])
        elif key == "final":
            assert mine[key].keys() == theirs[key].keys()
            for weight, value in theirs[key].items():
                pairs[f"final.{weight}"] = (mine[key][weight], value)
        else:
            pairs[key] = (mine[key], theirs[key])
    return pairs


def assert_agree(name, mine, theirs, data=None):
    """Within TOLERANCE everywhere; or, where the two float32 runs part (a ReLU or a max pool
    at a near tie, decided the other way by the last bit), kernelab's run at most as far from
    PyTorch's float64 run of the program (given its ``data``) as PyTorch's float32 run is."""
    pairs = compared(mine, theirs)
    for key, (ours, reference) in pairs.items():
        if key.startswith("final."):
            assert ours.dtype == reference.dtype, key
    report = {key: max_differences(ours, reference) for key, (ours, reference) in pairs.items()}
    worst = max(report, key=lambda k: report[k][1])
    parted = [key for key, (_, relative) in report.items() if relative > TOLERANCE]
    if parted and data is not None:
        truth = compared(float64_run(name, data), theirs)
        for key in parted:
            error, theirs_error = (max_differences(run, truth[key][0])[1] for run in pairs[key])
            assert error <= max(TOLERANCE, theirs_error), (
                f"{name}: {key} parted from PyTorch's by {report[key]} (abs, rel), and is "
                f"{error:.2e} from the float64 run where PyTorch's float32 is {theirs_error:.2e}"
            )
        return report
    assert report[worst][1] <= TOLERANCE, f"{name}: {worst} differs by {report[worst]} (abs, rel)"
    return report


def float64_run(name: str, data: dict) -> dict:
    """PyTorch's run of the program in float64 (its weights, data and default dtype)."""
    torch_program = program(name, "torch")
    torch.manual_seed(0)
    model = torch_program["make_model"]()

    def wide(value):
        is_float32 = isinstance(value, np.ndarray) and value.dtype == np.float32
        return value.astype(np.float64) if is_float32 else value

    initial = {k: wide(v.numpy()) for k, v in model.state_dict().items()}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return torch_program["train"](initial, {k: wide(v) for k, v in data.items()})
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", ["mnist_adadelta", "resnet_plateau", "from_scratch", "init_clip"])
def test_same_program_same_numbers(name):
    make = {
        "mnist_adadelta": mnist_data,
        "resnet_plateau": resnet_data,
        "from_scratch": scratch_data,
        "init_clip": clip_data,
    }[name]
    data = make(np.random.default_rng(0))
    mine, theirs = run_both(name, data, data)
    assert_agree(name, mine, theirs, data if name in FLOAT64_ARBITER else None)
    assert np.all(np.isfinite(mine["loss"]))
    if name == "from_scratch":  # zero_() kept each .grad tensor, accumulating in place
        assert all(mine["same_grad_object"]) and all(theirs["same_grad_object"])
    if name == "resnet_plateau":  # the plateau schedule did act
        assert mine["lr"][-1] < mine["lr"][0]


def test_torchvision_mnist_script(tmp_path):
    """MNIST's raw files as torchvision keeps them (uncompressed, in root/MNIST/raw)."""
    rng = np.random.default_rng(2)
    splits = {"train": bar_digits(40, rng), "t10k": bar_digits(15, rng)}
    write_mnist(tmp_path / "MNIST" / "raw", splits, compress=False)
    data = {"root": str(tmp_path)}
    mine, theirs = run_both("vision_mnist", data, data)
    assert_agree("vision_mnist", mine, theirs)
    assert mine["sample"].dtype == np.float32 and mine["sample"].shape == (1, 28, 28)
    assert mine["sample_label"] == [splits["train"][1][3]]
    assert mine["correct"][-1] > mine["correct"][0]  # it learns


def test_dataloader_loop_with_a_checkpoint(tmp_path):
    rng = np.random.default_rng(1)
    data = loader_data(rng, tmp_path / "torch")
    (tmp_path / "torch").mkdir()
    (tmp_path / "kernelab").mkdir()
    mine, theirs = run_both("loader_adam", data, {**data, "directory": str(tmp_path / "kernelab")})
    assert_agree("loader_adam", mine, theirs)
    assert mine["restored_epoch"] == 1
    assert mine["accuracy"][-1] > 0.5  # the labels are learnable
