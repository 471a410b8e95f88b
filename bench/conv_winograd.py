"""Winograd F(2x2, 3x3) against the im2col GEMM, the direct micro-kernels and PyTorch.

``python bench/conv_winograd.py [--threads 1 2] [--rounds 7] [--only k3 r32] [--cpu]``
``python bench/conv_winograd.py --cases [--threads 1 2] [--cpu]``

The forward and the input gradient alone (the kernel gradient is the GEMM's in both), the
four engines interleaved in the same rounds of one process; the median of the rounds, as
GFLOP/s of the direct convolution's arithmetic (2·N·C_out·OH·OW·C_in·9). ``--error`` prints
the float32 forward's relative error against a float64 reference instead, at 16-256 channels.
``--cases`` times ``cases.py``'s conv/k3 and ResNet-8 and MobileNet-like steps with Winograd
F(2x2, 3x3) (the default routing), F(4x4, 3x3), those layers on the GEMM (as before), on the
direct convolution (its opt-in routing), and PyTorch's, interleaved in one process: a
before-and-after that a busy machine disturbs alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ["KERNELAB_DIRECT_CONV"] = "1"  # the direct engine's forward, opt-in for now
import kernelab as kl  # noqa: E402
from bench import cases  # noqa: E402
from bench.conv_passes import interleaved_times, pass_call, pass_inputs, pass_parser  # noqa: E402
from kernelab.functional import (
    conv_direct_compiled,  # noqa: E402
    conv_winograd,  # noqa: E402
)
from kernelab.functional.conv import pad  # noqa: E402
from kernelab.functional.conv_algorithms import Gemm  # noqa: E402
from kernelab.functional.conv_winograd import Winograd  # noqa: E402
from kernelab.functional.geometry import conv_geometry  # noqa: E402

# name: (N, C_in, C_out, size): cases.py's conv/k3 and ResNet-8's stride-1 3x3 layers
SHAPES = {
    "k3": (64, 32, 64, 28),
    "r_stem": (64, 3, 16, 32),
    "r16": (64, 16, 16, 32),
    "r32": (64, 32, 32, 16),
    "r64": (64, 64, 64, 8),
    "c128": (64, 128, 128, 8),
}
PASSES = ("forward", "input_gradient")


class Direct(conv_direct_compiled.DirectCompiled):
    """The direct forward and input gradient, whatever ``passes`` says."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry):
        y = conv_direct_compiled.DirectCompiled.forward(ctx, xp, w, b, geometry)
        ctx.passes = conv_direct_compiled.Passes(True, True, False)
        return y


def engines(shape, dtype=np.float32):
    """{engine: {pass: callable}} for one shape, and the forward's FLOPs."""
    n, c_in, c_out, size = shape
    geometry = conv_geometry((3, 3), 1, 1, 1, 1)
    (xp, w, gy), (xt, wt, gyt) = pass_inputs(geometry, n, c_in, c_out, size, dtype)

    def ours(algorithm, name):
        return pass_call(algorithm, name, xp, w, gy, geometry)

    torch_passes = {
        "forward": lambda: torch.nn.functional.conv2d(xt, wt),
        "input_gradient": lambda: torch.nn.grad.conv2d_input(xt.shape, wt, gyt),
    }
    flops = 2.0 * n * c_out * size * size * c_in * 9
    table = {name: {p: ours(a, p) for p in PASSES} for name, a in ALGORITHMS.items()}
    return table | {"torch": torch_passes}, flops


class Winograd2(Winograd):
    """F(2x2, 3x3)."""

    tile = 2


class Winograd4(Winograd):
    """F(4x4, 3x3)."""

    tile = 4


ALGORITHMS = {"f2": Winograd2, "f4": Winograd4, "gemm": Gemm, "direct": Direct}


def measure(shape, threads: int, rounds: int, clock=time.perf_counter) -> dict:
    """{(engine, pass): GFLOP/s}, medians of interleaved rounds (engines rotated)."""
    table, flops = engines(shape)
    times = interleaved_times(table, PASSES, threads, rounds, clock, rotate=True)
    return {key: flops / statistics.median(ts) / 1e9 for key, ts in times.items()}


def float32_error(channels: int, size: int = 16, n: int = 8) -> tuple[float, ...]:
    """Relative error (max |error| / max |reference|) of the float32 forward of F(2x2, 3x3),
    F(4x4, 3x3), the GEMM and PyTorch against PyTorch in float64, C_in = C_out = ``channels``."""
    geometry = conv_geometry((3, 3), 1, 1, 1, 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, channels, size, size))
    w = rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)
    xp = pad(x.transpose(1, 0, 2, 3), geometry.padding)  # (C_in, N, Hp, Wp)
    ctx = types.SimpleNamespace(needs_input_grad=(False, False, False))
    exact = torch.nn.functional.conv2d(torch.tensor(xp.transpose(1, 0, 2, 3)), torch.tensor(w))
    exact = exact.numpy().transpose(1, 0, 2, 3)
    x32, w32 = xp.astype(np.float32), w.astype(np.float32)
    t = torch.nn.functional.conv2d(torch.tensor(x32.transpose(1, 0, 2, 3)), torch.tensor(w32))
    conv_winograd.MIN_FLOPS = 0  # these small layers too
    results = [a.forward(ctx, x32, w32, None, geometry) for a in (Winograd2, Winograd4, Gemm)]
    results.append(t.numpy().transpose(1, 0, 2, 3))
    scale = np.abs(exact).max()
    return tuple(float(np.abs(r - exact).max() / scale) for r in results)


CASES = ("conv/k3", "nets/resnet8_train_b64", "nets/resnet8_infer_b64", "nets/mobile_train_b64")
# routings of kernelab's convolutions:
# (conv_winograd.MIN_CHANNELS, KERNELAB_DIRECT_CONV, KERNELAB_WINOGRAD_TILE)
ROUTINGS = {
    "f2": (conv_winograd.MIN_CHANNELS, "0", "2"),
    "f4": (conv_winograd.MIN_CHANNELS, "0", "4"),
    "gemm": (1 << 30, "0", "2"),
    "direct": (1 << 30, "1", "2"),
}
ENVIRONMENT = ("KERNELAB_DIRECT_CONV", "KERNELAB_WINOGRAD_TILE")


def routed(step, routing):
    """``step`` with kernelab's convolutions routed as ``ROUTINGS[routing]`` says."""
    channels, *settings = ROUTINGS[routing]

    def call():
        before = conv_winograd.MIN_CHANNELS, [os.environ.get(name) for name in ENVIRONMENT]
        conv_winograd.MIN_CHANNELS = channels
        os.environ.update(zip(ENVIRONMENT, settings, strict=True))
        try:
            step()
        finally:
            conv_winograd.MIN_CHANNELS = before[0]
            for name, value in zip(ENVIRONMENT, before[1], strict=True):
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    return call


def measure_cases(threads: int, rounds: int, clock) -> dict:
    """{case: {routing: time / PyTorch's time}}, medians of the per-round ratios."""
    kl.set_num_threads(threads)
    torch.set_num_threads(threads)
    table = {}
    for case in (c for c in cases.all_cases() if c.name in CASES):
        work = case.build()
        calls = {r: routed(work.kernelab, r) for r in ROUTINGS} | {"torch": work.torch}
        for call in calls.values():  # warm-up: compiles
            call()
        ratios = {r: [] for r in ROUTINGS}
        order = list(calls)
        for _ in range(rounds):
            order = order[1:] + order[:1]  # rotated: no routing always first or last
            times = {}
            for name in order:
                start = clock()
                calls[name]()
                times[name] = clock() - start
            for r in ROUTINGS:
                ratios[r].append(times[r] / times["torch"])
        table[case.name] = {r: statistics.median(v) for r, v in ratios.items()}
    return table


def main() -> None:
    parser = pass_parser(__doc__.splitlines()[0], SHAPES)
    parser.add_argument("--cases", action="store_true", help="conv/k3 and the nets' steps")
    parser.add_argument("--error", action="store_true", help="float32 error, not speed")
    args = parser.parse_args()
    if args.error:
        print("channels   F(2x2)    F(4x4)      gemm     torch  (float32 forward, relative error)")
        for channels in (16, 32, 64, 128, 256):
            errors = float32_error(channels)
            print(f"{channels:8d}  " + "  ".join(f"{e:8.1e}" for e in errors))
        return
    if args.cases:
        clock = time.process_time if args.cpu else time.perf_counter
        print("case                      thr  time / PyTorch's: " + "  ".join(ROUTINGS))
        for threads in args.threads:
            for name, ratios in measure_cases(threads, args.rounds, clock).items():
                cells = "".join(f"{ratios[r]:10.2f}" for r in ROUTINGS)
                gains = ratios["f2"] / ratios["gemm"], ratios["f4"] / ratios["gemm"]
                print(
                    f"{name:25s} {threads:3d}  {cells}  f2, f4 / gemm {gains[0]:.2f} {gains[1]:.2f}"
                )
        return
    engines_ = ("f2", "f4", "gemm", "direct", "torch")
    print("shape   thr  pass            " + "".join(f"{e:>8s}" for e in engines_), end="")
    print("  f4/gemm  f4/direct  f4/torch  f2/torch")
    for name in args.only:
        for threads in args.threads:
            clock = time.process_time if args.cpu else time.perf_counter
            result = measure(SHAPES[name], threads, args.rounds, clock)
            for p in PASSES:
                f2, f4, g, d, t = (result[e, p] for e in engines_)
                print(
                    f"{name:7s} {threads:3d}  {p:15s}"
                    + "".join(f"{result[e, p]:8.1f}" for e in engines_)
                    + f"  {f4 / g:7.2f}  {f4 / d:9.2f}  {f4 / t:8.2f}  {f2 / t:8.2f}"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
