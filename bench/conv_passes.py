"""What the convolution pass benchmarks (``conv_direct.py``, ``conv_thin.py``,
``conv_winograd.py``) share: one algorithm's pass as a callable, and engines timed in
interleaved rounds of one process."""

from __future__ import annotations

import types

import torch

import kernelab as kl

NEEDS = {  # needs_input_grad of (input, kernel, bias) that asks for each pass alone
    "forward": (True, True, False),
    "input_gradient": (True, False, False),
    "kernel_gradient": (False, True, False),
}


def pass_call(algorithm, name: str, xp, w, gy, geometry, path: str = "numba"):
    """A callable running pass ``name`` of ``algorithm`` on the padded, channel-major input
    xp (C_in, N, Hp, Wp) and output gradient gy (C_out, N, OH, OW), on kernel ``path``."""
    ctx = types.SimpleNamespace(needs_input_grad=NEEDS[name])
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
