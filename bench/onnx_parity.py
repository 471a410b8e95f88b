"""ONNX parity: onnxruntime against kernelab on the same exported graphs.

``python bench/onnx_parity.py [--batch N]`` exports two networks (traced on a batch of 2),
runs a batch of N random inputs through onnxruntime, through kernelab, and through the
exported file loaded back into kernelab, and prints the max relative error
``max |a − b| / max |b|`` (float32). With torch installed it also loads a PyTorch-exported
classic network and compares with PyTorch.

Networks: the classic one (``kernelab.apps.arch.CLASSIC``) and one with every exportable layer and
option (even-kernel "same" and asymmetric padding, stride, dilation, groups, depthwise, no
bias, a residual branch, pools with ceil_mode and count_include_pad, divisor_override,
adaptive pooling, batch norm 1-D and 2-D with trained statistics, dropout, every activation,
arithmetic with constants, and a symmetric kernel when ``Conv2d`` has ``symmetry``).
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import warnings
from pathlib import Path

import numpy as np

import kernelab as kl
import kernelab.functional as F
import kernelab.onnx as konnx
from kernelab import nn
from kernelab.apps import arch


class EveryLayer(nn.Module):
    """Input (N, 3, 20, 20) → log-probabilities (N, 5)."""

    def __init__(self) -> None:
        super().__init__()
        symmetric = "symmetry" in inspect.signature(nn.Conv2d).parameters
        extra = {"symmetry": "xy"} if symmetric else {}
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, (2, 4), padding="same", dilation=(1, 2), generator=1),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.1),
            nn.Conv2d(8, 8, 3, stride=(2, 1), padding=((1, 0), (2, 1)), generator=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        )
        self.branch = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, generator=3)
        self.body = nn.Sequential(
            nn.Tanh(),
            nn.Conv2d(8, 16, 3, padding=1, groups=8, bias=False, generator=4),  # depthwise
            nn.Sigmoid(),
            nn.Dropout2d(0.2),
            nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True),
            nn.Conv2d(16, 16, 3, padding="same", generator=5, **extra),
            nn.AvgPool2d(2, 1, 1, ceil_mode=True, count_include_pad=False),
            nn.MaxPool2d(2, 1, dilation=2),
            nn.AvgPool2d(1, divisor_override=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.BatchNorm1d(16),
            nn.Dropout(0.3),
            nn.Linear(16, 5, generator=6),
        )

    def forward(self, x):
        y = self.stem(x)
        y = y + self.branch(y)  # residual
        y = self.body(y)
        y = (y * 0.5 - 0.1) / 2.0 + F.softmax(y, dim=1)
        return F.log_softmax(y, dim=1)


def trained_statistics(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """A few training-mode passes, so batch norm's running statistics are not 0 and 1."""
    rng = np.random.default_rng(0)
    model.train()
    with kl.no_grad():
        for _ in range(3):
            model(kl.tensor(rng.standard_normal((8,) + shape).astype(np.float32) + 0.5))
    return model.eval()


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def parity(name: str, model: nn.Module, shape: tuple[int, ...], batch: int, folder: Path) -> None:
    import onnxruntime as ort

    path = folder / f"{name}.onnx"
    rng = np.random.default_rng(1)
    proto = konnx.export(model, rng.standard_normal((2,) + shape).astype(np.float32), path)
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    with kl.no_grad():
        ours = model(kl.tensor(x)).array
        loaded = konnx.load(path)(x).array
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": x})[0]
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"{name}: {len(proto.graph.node)} nodes ({', '.join(ops)})")
    print(f"  onnxruntime vs kernelab, batch {batch}:  max rel error {rel_err(theirs, ours):.2e}")
    print(f"  reloaded vs original:              max rel error {rel_err(loaded, ours):.2e}")


def torch_parity(batch: int, folder: Path) -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch → ONNX → kernelab skipped")
        return
    torch.manual_seed(0)
    t = torch.nn
    net = t.Sequential(
        t.Conv2d(1, 32, 5, padding=2), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(32, 64, 5, padding=2), t.ReLU(), t.MaxPool2d(2),
        t.Flatten(), t.Linear(64 * 7 * 7, 10),
    ).eval()  # fmt: skip
    path = folder / "torch_classic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.randn(2, 1, 28, 28),), str(path), dynamo=False,
            input_names=["x"], dynamic_axes={"x": {0: "batch"}},
        )  # fmt: skip
    x = np.random.default_rng(2).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    with kl.no_grad():
        ours = konnx.load(path)(x).array
    print("PyTorch classic (torch.onnx.export, dynamo=False) loaded into kernelab:")
    print(f"  kernelab vs PyTorch, batch {batch}:     max rel error {rel_err(ours, expected):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="batch size run (default 64)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        classic = arch.build(arch.CLASSIC, generator=0).eval()
        parity("classic", classic, (1, 28, 28), args.batch, folder)
        every = trained_statistics(EveryLayer(), (3, 20, 20))
        parity("every-layer", every, (3, 20, 20), args.batch, folder)
        torch_parity(args.batch, folder)


if __name__ == "__main__":
    main()
