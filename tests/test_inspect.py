"""`kernelab inspect` on a tiny run made here, and the pieces it is built from."""

import json
import re

import numpy as np
import pytest
from PIL import Image

import kernelab.nn as nn
from kernelab.apps import arch, runs
from kernelab.apps.inspection import feature_maps, synthetic_digit
from kernelab.cli import main
from kernelab.core import serialization
from kernelab.core.tensor import Tensor

SPEC = "conv3x4-same,relu,maxpool2,conv3x3x6,relu,flatten,linear10"
SHAPE = [1, 12, 12]


@pytest.fixture
def run(tmp_path):
    """A run folder as `kernelab train` writes it: checkpoint.kl and metrics.json."""
    config = {
        "arch": SPEC,
        "input_shape": SHAPE,
        "mean": 0.1307,
        "std": 0.3081,
        "classes": [str(c) for c in range(10)],
        "seed": 0,
        "data": "mnist",
    }
    model = arch.build(SPEC, tuple(SHAPE), generator=0)
    history = [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "train_acc": 0.3 * e,
            "val_loss": 2.1 / e,
            "val_acc": 0.25 * e,
        }
        for e in (1, 2)
    ]
    folder = tmp_path / "run"
    serialization.save(
        {"model": model.state_dict(), "config": config, "history": history},
        folder / "checkpoint.kl",
    )
    (folder / "metrics.json").write_text(json.dumps({"config": config, "epochs": history}))
    return folder


def figures_of(index):
    text = index.read_text()
    assert text.startswith("<!DOCTYPE html>") and "http" not in text  # no external assets
    return re.findall(r'<img src="([^"]+)"', text), text


def test_inspect_end_to_end(run, capsys):
    assert main(["inspect", str(run)]) == 0
    assert "open" in capsys.readouterr().out
    folder = run / "inspect"
    pictures, text = figures_of(folder / "index.html")
    for name in pictures:
        with Image.open(folder / name) as image:
            assert image.format == "PNG"
    expected = {
        "input.png",
        "kernels_0.png",
        "frequency_0.png",
        "kernels_3.png",
        "kernels_3_depth.png",
        "frequency_3.png",
        "prediction.png",
        "learning_curves.png",
    }
    assert expected <= set(pictures)
    assert "kernels_0_depth.png" not in pictures  # depth 1: the mean view says it all
    features = [p for p in pictures if p.startswith("features_")]
    assert len(features) == 5  # conv, relu, pool, conv, relu; flatten and linear are not maps
    assert "<figcaption>" in text and "Frequency classes of layer 0" in text
    table = (folder / "frequency.md").read_text()
    counts = re.findall(r"^\| (?:low|high|band|all)-pass[^|]* \| (\d+) \|", table, re.M)
    assert len(counts) == 4 and sum(map(int, counts)) == 4
    assert "<table>" in text and "Confusion matrix" in text  # a note: not computed


def test_inspect_with_an_image_and_evaluation(run, tmp_path, monkeypatch):
    pixels = np.full((40, 30), 230, dtype=np.uint8)  # dark digit on a light page
    pixels[8:30, 12:16] = 20
    Image.fromarray(pixels).save(tmp_path / "one.png")
    rng = np.random.default_rng(0)
    x_test = rng.normal(size=(7, *SHAPE)).astype(np.float32)
    y_test = rng.integers(0, 10, 7)
    monkeypatch.setattr(runs, "load_data", lambda config: (None, None, (x_test, y_test)))
    out = tmp_path / "report"
    argv = [
        "inspect",
        str(run),
        "--image",
        str(tmp_path / "one.png"),
        "--out",
        str(out),
        "--evaluate",
    ]
    assert main(argv) == 0
    pictures, text = figures_of(out / "index.html")
    assert "confusion.png" in pictures and "one.png" in text
    assert "accuracy" in text


def test_synthetic_digit_is_a_stroke_on_black():
    digit = synthetic_digit(28, 28)
    assert digit.dtype == np.uint8 and digit.max() == 255 and digit[0].max() == 0
    assert 0.05 < (digit > 128).mean() < 0.3
    assert synthetic_digit(12, 16).shape == (12, 16)


class Branchy(nn.Module):
    """Not a Sequential: two convolutions called from forward, one of them nested."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(1, 2, 3, padding=1, generator=0)
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(2, 3, 3, generator=0))

    def forward(self, x):
        return self.block(self.first(x)).flatten(1)


def test_feature_maps_of_any_model_and_forward_restored():
    model = Branchy().train()
    x = np.random.default_rng(0).normal(size=(1, 1, 6, 6)).astype(np.float32)
    maps, out = feature_maps(model, x)
    assert [(name, m.shape) for name, _, m in maps] == [
        ("first", (2, 6, 6)),
        ("block.0", (2, 6, 6)),
        ("block.1", (3, 4, 4)),
    ]
    np.testing.assert_array_equal(out, model(Tensor(x)).array[0])
    np.testing.assert_array_equal(maps[-1][2].ravel(), out)
    assert model.training and all("forward" not in vars(m) for m in model.modules())
