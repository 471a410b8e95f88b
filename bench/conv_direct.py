"""GFLOP/s of each convolution pass: the direct micro-kernels, the im2col GEMM and PyTorch.

``python bench/conv_direct.py [--threads 1 2] [--rounds 7] [--only k5 conv2]``

Every pass alone (forward, input gradient, kernel gradient), the three engines interleaved in
the same rounds of one process; the median of the rounds. The shapes are ``cases.py``'s conv
cases (N=64, 32→64 channels, 28x28) and the classic network's conv2 (64, 32→64, 5x5, 14x14).
The direct kernels compile in this process if they are not cached (``KERNELAB_DIRECT_CONV=1``).
With 1 and 2 threads, the last lines give each engine's gain from the second thread.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.conv_passes import interleaved_times, pass_call, pass_inputs, pass_parser  # noqa: E402
from kernelab.functional import conv_direct_compiled  # noqa: E402
from kernelab.functional.conv_algorithms import Gemm  # noqa: E402
from kernelab.functional.geometry import conv_geometry  # noqa: E402

# name: (kernel, stride, padding, dilation, size)
SHAPES = {
    "k1": (1, 1, 0, 1, 28),
    "k2": (2, 1, "same", 1, 28),
    "k3": (3, 1, 1, 1, 28),
    "k4": (4, 1, "same", 1, 28),
    "k5": (5, 1, 2, 1, 28),
    "k7": (7, 1, 3, 1, 28),
    "k3_stride2": (3, 2, 1, 1, 28),
    "k1_stride2": (1, 2, 0, 1, 28),
    "k3_dilation2": (3, 1, 2, 2, 28),
    "conv2": (5, 1, 2, 1, 14),
}
PASSES = ("forward", "input_gradient", "kernel_gradient")
ENGINES = ("direct", "gemm", "torch")


def engines(shape, n=64, c_in=32, c_out=64, dtype=np.float32):
    """{engine: {pass: callable}} for one shape, and the forward's FLOPs."""
    kernel, stride, padding, dilation, size = shape
    geometry = conv_geometry((kernel, kernel), stride, padding, dilation, 1)
    (xp, w, gy), (xt, wt, gyt) = pass_inputs(geometry, n, c_in, c_out, size, dtype)
    oh, ow = gy.shape[2:]

    def ours(algorithm, name):
        return pass_call(algorithm, name, xp, w, gy, geometry)

    torch_passes = {
        "forward": lambda: torch.nn.functional.conv2d(xt, wt, None, stride, 0, dilation),
        "input_gradient": lambda: torch.nn.grad.conv2d_input(
            xt.shape, wt, gyt, stride, 0, dilation
        ),
        "kernel_gradient": lambda: torch.nn.grad.conv2d_weight(
            xt, wt.shape, gyt, stride, 0, dilation
        ),
    }
    flops = 2.0 * n * c_out * oh * ow * c_in * kernel * kernel
    return {
        "direct": {p: ours(AllDirect, p) for p in PASSES},
        "gemm": {p: ours(Gemm, p) for p in PASSES},
        "torch": torch_passes,
    }, flops


class AllDirect(conv_direct_compiled.DirectCompiled):
    """Every pass direct where it can run (input gradient: stride 1), whatever ``passes`` says."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry):
        ctx.passes = conv_direct_compiled.Passes(True, geometry.stride == (1, 1), True)
        return conv_direct_compiled.DirectCompiled.run_forward(ctx, xp, w, b, geometry)


def measure(shape, threads: int, rounds: int, clock=time.perf_counter) -> dict:
    """{(engine, pass): GFLOP/s}, medians of interleaved rounds timed by ``clock``."""
    table, flops = engines(shape)
    times = interleaved_times(table, PASSES, threads, rounds, clock)
    return {key: flops / statistics.median(ts) / 1e9 for key, ts in times.items()}


def main() -> None:
    parser = pass_parser(__doc__.splitlines()[0], SHAPES)
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    os.environ["KERNELAB_DIRECT_CONV"] = "1"  # direct wherever AllDirect asks, cached or not
    print("shape        thr  pass             direct    gemm   torch  direct/gemm  direct/torch")
    results = {}
    for name in args.only:
        for threads in args.threads:
            result = results[name, threads] = measure(SHAPES[name], threads, args.rounds, clock)
            for p in PASSES:
                d, g, t = (result[e, p] for e in ENGINES)
                print(
                    f"{name:12s} {threads:3d}  {p:15s} {d:7.1f} {g:7.1f} {t:7.1f}"
                    f"  {d / g:11.2f}  {d / t:12.2f}"
                )
            sys.stdout.flush()
    if {1, 2} <= set(args.threads):
        print_gains(results, args.only)


def print_gains(results: dict, names: list[str]) -> None:
    """Each engine's speed at 2 threads / at 1, per shape and pass."""
    print("shape        pass             gain from the 2nd thread: direct    gemm   torch")
    for name in names:
        for p in PASSES:
            gains = [results[name, 2][e, p] / results[name, 1][e, p] for e in ENGINES]
            print(f"{name:12s} {p:15s} {'':26s}" + "".join(f"{g:8.2f}" for g in gains))


if __name__ == "__main__":
    main()
