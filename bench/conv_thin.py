"""Time of each pass of a thin first layer: the thin direct kernels, the im2col GEMM (compiled
and NumPy) and PyTorch.

``python bench/conv_thin.py [--threads 1 2] [--rounds 9] [--only classic cifar] [--cpu]``

Every pass alone (forward, kernel gradient), the engines interleaved in the same rounds of
one process; the median of the rounds, and the medians of the per-round ratios to PyTorch and
to the compiled GEMM. The shapes are the first layers of the classic MNIST network, the
tutorial CNN and the CIFAR networks (ResNet-8's stem).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.conv_passes import interleaved_times, pass_call, pass_parser  # noqa: E402
from kernelab.functional import conv_thin_compiled  # noqa: E402
from kernelab.functional.conv import pad  # noqa: E402
from kernelab.functional.conv_algorithms import Gemm  # noqa: E402
from kernelab.functional.geometry import conv_geometry  # noqa: E402

# name: (batch, C_in, C_out, kernel, padding, size)
SHAPES = {
    "classic": (64, 1, 32, 5, 2, 28),
    "tutorial": (100, 1, 16, 5, 2, 28),
    "cifar": (64, 3, 16, 3, 1, 32),
}
PASSES = ("forward", "kernel_gradient")
ENGINES = ("thin", "gemm", "numpy", "torch")


def engines(shape, dtype=np.float32):
    """{engine: {pass: callable}} for one shape, and the forward's FLOPs."""
    n, c_in, c_out, kernel, padding, size = shape
    geometry = conv_geometry(kernel, 1, padding, 1, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, size, size)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, kernel, kernel)).astype(dtype)
    xp = pad(x.transpose(1, 0, 2, 3), geometry.padding)  # (C_in, N, Hp, Wp), as conv2d's
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    gy = rng.standard_normal((c_out, n, oh, ow)).astype(dtype)  # (C_out, N, OH, OW)

    def ours(algorithm, name, path="numba"):
        return pass_call(algorithm, name, xp, w, gy, geometry, path)

    xt, wt = torch.tensor(x), torch.tensor(w)
    gyt = torch.tensor(np.ascontiguousarray(gy.transpose(1, 0, 2, 3)))  # (N, C_out, OH, OW)
    torch_passes = {
        "forward": lambda: torch.nn.functional.conv2d(xt, wt, None, 1, padding),
        "kernel_gradient": lambda: torch.nn.grad.conv2d_weight(xt, wt.shape, gyt, 1, padding),
    }
    flops = 2.0 * n * c_out * oh * ow * c_in * kernel * kernel
    return {
        "thin": {p: ours(conv_thin_compiled.ThinCompiled, p) for p in PASSES},
        "gemm": {p: ours(Gemm, p) for p in PASSES},
        "numpy": {p: ours(Gemm, p, "numpy") for p in PASSES},
        "torch": torch_passes,
    }, flops


def measure(shape, threads: int, rounds: int, clock=time.perf_counter) -> dict:
    """{(engine, pass): list of seconds} over interleaved rounds, and the forward's FLOPs."""
    table, flops = engines(shape)
    return interleaved_times(table, PASSES, threads, rounds, clock), flops


def ratio(times, a, b, p) -> float:
    """Median over rounds of engine a's time / engine b's time for pass p."""
    return statistics.median(x / y for x, y in zip(times[a, p], times[b, p], strict=True))


def main() -> None:
    parser = pass_parser(__doc__.splitlines()[0], SHAPES, rounds=9)
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    print(
        "shape     thr  pass             thin GF/s  gemm  numpy torch"
        "  thin/torch  thin/gemm  gemm/torch  numpy/torch"
    )
    for name in args.only:
        for threads in args.threads:
            times, flops = measure(SHAPES[name], threads, args.rounds, clock)
            for p in PASSES:
                speed = [flops / statistics.median(times[e, p]) / 1e9 for e in ENGINES]
                print(
                    f"{name:9s} {threads:3d}  {p:15s}"
                    + "".join(f" {s:6.1f}" for s in speed)
                    + f"  {ratio(times, 'thin', 'torch', p):10.2f}"
                    + f"  {ratio(times, 'thin', 'gemm', p):9.2f}"
                    + f"  {ratio(times, 'gemm', 'torch', p):10.2f}"
                    + f"  {ratio(times, 'numpy', 'torch', p):11.2f}"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
