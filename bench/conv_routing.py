"""Which algorithm is fastest at each pass of each ``cases.py`` conv case: the GEMM, the
direct micro-kernels, Winograd F(2x2, 3x3) and F(4x4, 3x3), against PyTorch's same pass.

``python bench/conv_routing.py [--threads 1 2] [--rounds 7] [--only k3 k5] [--cpu]``
``python bench/conv_routing.py --error``: the float32 error of the routing ``conv2d`` takes
and of the GEMM, each pass against PyTorch's in float64.

Every pass alone (forward, input gradient, kernel gradient), every engine that can run it
interleaved in the same rounds of one process (the order rotated each round); the median
time of each, printed as a ratio to PyTorch's time, the best kernelab engine marked. The
direct kernels compile in this process if they are not cached (``KERNELAB_DIRECT_CONV=1``).
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

os.environ["KERNELAB_DIRECT_CONV"] = "1"  # direct wherever asked, cached or not
from bench.conv_direct import SHAPES  # noqa: E402
from bench.conv_passes import interleaved_times, pass_inputs, pass_parser  # noqa: E402
from kernelab.functional import conv_direct_compiled as direct  # noqa: E402
from kernelab.functional import conv_strided_compiled as strided  # noqa: E402
from kernelab.functional import conv_winograd  # noqa: E402
from kernelab.functional.conv import unpad  # noqa: E402
from kernelab.functional.conv_algorithms import Gemm, choose  # noqa: E402
from kernelab.functional.geometry import conv_geometry  # noqa: E402

PASSES = ("forward", "input_gradient", "kernel_gradient")


def gemm_pass(name, xp, w, gy, geometry):
    """The GEMM's pass ``name`` as a callable."""
    ctx = types.SimpleNamespace(needs_input_grad=(True, True, False))
    Gemm.forward(ctx, xp, w, None, geometry)
    if name == "forward":
        return lambda: Gemm.forward(ctx, xp, w, None, geometry)
    ctx.needs_input_grad = (name == "input_gradient", name == "kernel_gradient", False)
    return lambda: Gemm.backward(ctx, gy)


def direct_passes(xp, w, gy, geometry) -> dict:
    """The direct convolution's passes that can run at this geometry, on the unpadded input
    (they frame it themselves)."""
    oh, ow = gy.shape[2:]
    x = np.ascontiguousarray(unpad(xp, geometry.padding))  # (C_in, N, H, W)
    y = np.empty((w.shape[0], xp.shape[1], oh, ow), xp.dtype)
    origin = geometry.padding[0][0], geometry.padding[1][0]
    stride, dilation = geometry.stride, geometry.dilation
    calls = {
        "forward": lambda: direct.correlate(x, origin, xp.shape[2:], w, None, stride, dilation, y),
        "kernel_gradient": lambda: direct.kernel_gradient(gy, x, geometry)[0],
    }
    if geometry.stride == (1, 1):
        calls["input_gradient"] = lambda: direct.input_gradient(gy, w, geometry, x.shape[2:])
    elif strided.suits(geometry):  # every phase in one micro-kernel
        calls["input_gradient"] = lambda: strided.input_gradient(gy, w, geometry, x.shape[2:])
    return calls


def winograd_passes(tile, xp, w, gy, geometry) -> dict:
    """Winograd's passes F(tile x tile, 3x3) (the kernel gradient F(3x3, 2x2) whatever the
    tile), or none where it does not apply."""
    if not conv_winograd.suits(geometry, w.shape):
        return {}
    winograd = type("Tile", (conv_winograd.Winograd,), {"tile": tile})
    ctx = types.SimpleNamespace(needs_input_grad=(True, False, False))
    winograd.forward(ctx, xp, w, None, geometry)
    calls = {
        "forward": lambda: winograd.forward(ctx, xp, w, None, geometry),
        "input_gradient": lambda: winograd.backward(ctx, gy),
    }
    if tile == 2:
        calls["kernel_gradient"] = lambda: conv_winograd.kernel_gradient(gy, xp)
    return calls


def engines(shape, n=64, c_in=32, c_out=64, dtype=np.float32) -> dict:
    """{engine: {pass: callable}} for one of ``conv_direct.SHAPES``."""
    kernel, stride, padding, dilation, size = shape
    geometry = conv_geometry((kernel, kernel), stride, padding, dilation, 1)
    (xp, w, gy), (xt, wt, gyt) = pass_inputs(geometry, n, c_in, c_out, size, dtype)
    table = {
        "torch": {
            "forward": lambda: torch.nn.functional.conv2d(xt, wt, None, stride, 0, dilation),
            "input_gradient": lambda: torch.nn.grad.conv2d_input(
                xt.shape, wt, gyt, stride, 0, dilation
            ),
            "kernel_gradient": lambda: torch.nn.grad.conv2d_weight(
                xt, wt.shape, gyt, stride, 0, dilation
            ),
        },
        "gemm": {p: gemm_pass(p, xp, w, gy, geometry) for p in PASSES},
        "direct": direct_passes(xp, w, gy, geometry),
        "wino2": winograd_passes(2, xp, w, gy, geometry),
        "wino4": winograd_passes(4, xp, w, gy, geometry),
    }
    return {engine: calls for engine, calls in table.items() if calls}


def measure(shape, threads: int, rounds: int, clock) -> dict:
    """{(engine, pass): median seconds} over interleaved rounds."""
    table = engines(shape)
    full = {e: {p: calls.get(p, lambda: None) for p in PASSES} for e, calls in table.items()}
    times = interleaved_times(full, PASSES, threads, rounds, clock, rotate=True)
    return {key: statistics.median(ts) for key, ts in times.items() if key[1] in table[key[0]]}


def float32_errors(shape, n=16, c_in=32, c_out=64) -> dict:
    """{(algorithm, pass): max |error| / max |reference|} of the float32 passes against
    PyTorch's in float64: the routing ``conv2d`` takes (``choose``) and the GEMM."""
    kernel, stride, padding, dilation, size = shape
    geometry = conv_geometry((kernel, kernel), stride, padding, dilation, 1)
    (xp, w, gy), (xt, wt, gyt) = pass_inputs(geometry, n, c_in, c_out, size, np.float64)
    w = w / np.sqrt(c_in * kernel * kernel)  # unit-scale outputs
    wt = torch.tensor(w)
    reference = {
        "forward": torch.nn.functional.conv2d(xt, wt, None, stride, 0, dilation),
        "input_gradient": torch.nn.grad.conv2d_input(xt.shape, wt, gyt, stride, 0, dilation),
        "kernel_gradient": torch.nn.grad.conv2d_weight(xt, wt.shape, gyt, stride, 0, dilation),
    }
    reference = {p: r.numpy() for p, r in reference.items()}
    # the input gradient of the unpadded input's pixels
    reference["input_gradient"] = unpad(reference["input_gradient"], geometry.padding)
    errors = {}
    for name, algorithm in (("routed", choose(geometry, w.shape)), ("gemm", Gemm)):
        ctx = types.SimpleNamespace(needs_input_grad=(True, True, False))
        # the padded input as Conv2d hands it over: batch-first memory when unpadded
        x32 = np.ascontiguousarray(xp.transpose(1, 0, 2, 3), np.float32).transpose(1, 0, 2, 3)
        w32, gy32 = w.astype(np.float32), gy.astype(np.float32)
        given = unpad(x32, geometry.padding) if getattr(algorithm, "unpadded_input", 0) else x32
        y = algorithm.forward(ctx, given, w32, None, geometry)
        gxp, gw = algorithm.backward(ctx, gy32)
        if gxp.shape[2:] == xp.shape[2:]:  # else returned without the padding
            gxp = unpad(gxp, geometry.padding)
        ours = {"forward": y, "input_gradient": gxp, "kernel_gradient": gw}
        for p in PASSES:
            batch_first = ours[p] if p == "kernel_gradient" else ours[p].transpose(1, 0, 2, 3)
            scale = np.abs(reference[p]).max()
            errors[name, p] = np.abs(batch_first - reference[p]).max() / scale
    return errors


def main() -> None:
    parser = pass_parser(__doc__.splitlines()[0], [s for s in SHAPES if s != "conv2"])
    parser.add_argument("--error", action="store_true", help="float32 error, not time")
    args = parser.parse_args()
    if args.error:
        print("shape        pass             routed error  GEMM error")
        for name in args.only:
            errors = float32_errors(SHAPES[name])
            for p in PASSES:
                print(f"{name:12s} {p:15s} {errors['routed', p]:13.2e} {errors['gemm', p]:11.2e}")
        return
    clock = time.process_time if args.cpu else time.perf_counter
    engines_order = ("gemm", "direct", "wino2", "wino4")
    names = "".join(f"{e:>8s}" for e in engines_order)
    print(f"shape        thr  pass             torch ms  {names}")
    for name in args.only:
        for threads in args.threads:
            result = measure(SHAPES[name], threads, args.rounds, clock)
            for p in PASSES:
                t = result["torch", p]
                ratios = {e: result[e, p] / t for e in engines_order if (e, p) in result}
                best = min(ratios, key=ratios.get)
                cells = "".join(
                    f"{ratios[e]:7.2f}{'*' if e == best else ' '}" if e in ratios else " " * 8
                    for e in engines_order
                )
                print(f"{name:12s} {threads:3d}  {p:15s} {t * 1e3:8.2f}  {cells}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
