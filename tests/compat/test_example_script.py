"""The complete script on docs/coming-from-pytorch.md: PyTorch's MNIST example with only its
imports changed runs on kernelab and learns; the same text with PyTorch's imports runs on
PyTorch; and the page shows exactly this script."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import torch

import kernelab as kl

SCRIPT = Path(__file__).parent / "scripts" / "mnist_example.py"
PAGE = Path(__file__).parents[2] / "docs" / "coming-from-pytorch.md"
ARGS = [
    "--epochs",
    "1",
    "--train-size",
    "256",
    "--test-size",
    "128",
    "--batch-size",
    "32",
    "--log-interval",
    "4",
    "--save-model",
]


def test_the_example_runs_on_kernelab_and_learns(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = runpy.run_path(str(SCRIPT))
    accuracy = script["main"](ARGS)
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [0/256 (0%)]\tLoss: " in out and "Test set: Average loss: " in out
    assert accuracy >= 80  # ten easy classes, eight steps of Adadelta
    model = script["Net"]()
    model.load_state_dict(kl.load(tmp_path / "mnist_cnn.pt"))


def test_the_same_text_with_pytorch_imports_runs_on_pytorch(tmp_path, monkeypatch, capsys):
    text = SCRIPT.read_text()
    source = re.sub(r"^(import|from) kernelab", r"\1 torch", text, flags=re.MULTILINE)
    changed = [a for a, b in zip(text.splitlines(), source.splitlines(), strict=True) if a != b]
    assert len(changed) == 6 and all(line.startswith(("import", "from")) for line in changed)
    assert "kernelab" not in source.split('"""', 2)[2]
    script: dict = {"__name__": "mnist_example_on_torch"}
    exec(compile(source, "mnist_example_on_torch.py", "exec"), script)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        accuracy = script["main"](ARGS)
    finally:
        torch.set_num_threads(threads)
    assert accuracy >= 80 and "Test set: Average loss: " in capsys.readouterr().out
    assert set(torch.load(tmp_path / "mnist_cnn.pt", weights_only=True)) == set(
        script["Net"]().state_dict()
    )


def test_the_page_shows_this_script():
    assert SCRIPT.read_text() in PAGE.read_text()
