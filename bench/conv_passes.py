"""What the convolution pass benchmarks (``conv_direct.py``, ``conv_thin.py``,
``conv_winograd.py``, ``conv_routing.py``) share: their command line, a layer's random
inputs, one algorithm's pass as a callable, and engines timed in interleaved rounds of one
process."""

from __future__ import annotations

import argparse
import types

import numpy as np
import torch

import kernelab as kl
from kernelab.functional.conv import pad, unpad

NEEDS = {  # needs_input_grad of (input, kernel, bias) that asks for each pass alone
    "forward": (True, True, False),
    "input_gradient": (True, False, False),
    "kernel_gradient": (False, True, False),
}


def pass_parser(description: str, shapes, rounds: int = 7) -> argparse.ArgumentParser:
    """The options every pass benchmark takes: thread counts, rounds, the shapes to time
    (``shapes``) and the clock."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--only", nargs="+", default=list(shapes))
    parser.add_argument(
        "--cpu", action="store_true", help="time by CPU seconds (a busy machine, 1 thread)"
    )
    return parser


def pass_inputs(geometry, n: int, c_in: int, c_out: int, size: int, dtype=np.float32):
    """Random inputs for one layer's passes, channel-major as the algorithms take them: the
    padded input xp (C_in, N, Hp, Wp), the kernel w, the output gradient gy (C_out, N, OH,
    OW); and the same three as PyTorch tensors, batch first (PyTorch gets the padded input,
    so any padding works unchanged)."""
    kh, kw = geometry.kernel_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, size, size)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, kh, kw)).astype(dtype)
    xp = np.ascontiguousarray(pad(x.transpose(1, 0, 2, 3), geometry.padding))
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    gy = rng.standard_normal((c_out, n, oh, ow)).astype(dtype)
    tensors = [torch.tensor(np.ascontiguousarray(a.transpose(1, 0, 2, 3))) for a in (xp, gy)]
    return (xp, w, gy), (tensors[0], torch.tensor(w), tensors[1])


def pass_call(algorithm, name: str, xp, w, gy, geometry, path: str = "numba"):
    """A callable running pass ``name`` of ``algorithm`` on the padded, channel-major input
    xp (C_in, N, Hp, Wp) and output gradient gy (C_out, N, OH, OW), on kernel ``path``; an
    algorithm that frames its input itself (``unpadded_input``) gets the unpadded input in
    memory of its own, as a layer's output would be."""
    ctx = types.SimpleNamespace(needs_input_grad=NEEDS[name])
    if getattr(algorithm, "unpadded_input", False):
        xp = np.ascontiguousarray(unpad(xp, geometry.padding))  # (C_in, N, H, W)
    with kl.backends.kernels.using(path):
        algorithm.forward(ctx, xp, w, None, geometry)  # the context a backward needs

    def call():
        with kl.backends.kernels.using(path):
            if name == "forward":
                return algorithm.forward(ctx, xp, w, None, geometry)
            return algorithm.backward(ctx, gy)

    return call


def interleaved_times(table: dict, passes, threads: int, rounds: int, clock, rotate=False):
    """{(engine, pass): seconds per round} for ``table`` {engine: {pass: callable}}: each
    call made once first (it compiles), then the engines in turn within every round;
    ``rotate`` moves the first engine last each round, so none always follows PyTorch's
    spinning threads."""
    kl.set_num_threads(threads)
    torch.set_num_threads(threads)
    times = {(e, p): [] for e in table for p in passes}
    for run in table.values():
        for call in run.values():
            call()
    order = list(table)
    for _ in range(rounds):
        if rotate:
            order = order[1:] + order[:1]
        for p in passes:
            for e in order:
                start = clock()
                table[e][p]()
                times[e, p].append(clock() - start)
    return times
