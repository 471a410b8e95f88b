"""Data-parallel scaling: the classic network on 1 and 2 MPI ranks, and a model of many ranks.

    python bench/scaling.py [--steps 30] [--batch 128]

Measures training images/s with ``mpiexec -n 1`` and ``-n 2`` (BLAS threads per rank =
cores / ranks, the same global batch), the bytes all-reduced per step, and writes
bench/SCALING.md with a scaling model: per-step compute against ring all-reduce time at 10
and 100 Gbit/s for 8–64 ranks, for the classic network and one 10x wider.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSIC = "conv5x5x32-same,relu,maxpool2,conv5x5x64-same,relu,maxpool2,flatten,linear10"
WIDE = "conv5x5x320-same,relu,maxpool2,conv5x5x640-same,relu,maxpool2,flatten,linear10"
LATENCY_S = 20e-6  # per message hop, a typical MPI latency on Ethernet-class networks


def worker(steps: int, batch: int) -> None:
    """Run under mpiexec: time `steps` data-parallel SGD steps; rank 0 prints JSON."""
    import numpy as np

    import kernelab as kl
    from kernelab import distributed, optim
    from kernelab.apps import arch
    from kernelab.nn import functional as F

    distributed.init_process_group()
    rank, world = distributed.get_rank(), distributed.get_world_size()
    kl.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    model = distributed.DistributedDataParallel(arch.build(CLASSIC, generator=0))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    local = batch // world
    x = kl.tensor(rng.random((local, 1, 28, 28), dtype=np.float32))
    y = kl.tensor(rng.integers(0, 10, local))
    times = []
    for step in range(steps + 3):
        distributed.barrier()
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if step >= 3:  # warm-up steps are not timed
            times.append(time.perf_counter() - start)
    if rank == 0:
        median = float(np.median(times))
        params = sum(p.array.size for p in model.parameters())
        print(
            json.dumps(
                {
                    "ranks": world,
                    "images_per_s": batch / median,
                    "step_s": median,
                    "bytes_per_step": params * 4,
                }
            )
        )


def measure(ranks: int, steps: int, batch: int) -> dict:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
    command = [
        mpiexec,
        "-n",
        str(ranks),
        sys.executable,
        __file__,
        "--worker",
        "--steps",
        str(steps),
        "--batch",
        str(batch),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def network_costs(spec: str) -> tuple[int, int]:
    """(parameters, multiply-accumulates per image of a forward pass)."""
    from kernelab.apps import arch
    from kernelab.kernels import summary

    table = summary(arch.build(spec), (1, 28, 28))
    return table.params, table.macs


def scaling_rows(spec: str, name: str, gflops: float, batch: int) -> tuple[list[str], dict]:
    """Per-step compute (3 forward costs: forward, input and weight gradients) against a ring
    all-reduce of the gradients: 2·(p−1)/p·bytes/bandwidth + 2·(p−1)·latency.

    Returns the table rows and, per bandwidth, the first rank count where the all-reduce takes
    longer than the compute (None: not up to 64 ranks)."""
    params, macs = network_costs(spec)
    rows, crossover = [], {10: None, 100: None}
    for ranks in (8, 16, 32, 64):
        compute = (batch / ranks) * 3 * 2 * macs / (gflops * 1e9)
        cells = [name, str(ranks), f"{params * 4 / 1e6:.2f}", f"{compute * 1e3:.2f}"]
        for gbit in (10, 100):
            reduce = 2 * (ranks - 1) / ranks * params * 4 * 8 / (gbit * 1e9)
            reduce += 2 * (ranks - 1) * LATENCY_S
            cells += [f"{reduce * 1e3:.2f}", f"{compute / (compute + reduce):.0%}"]
            if reduce > compute and crossover[gbit] is None:
                crossover[gbit] = ranks
        rows.append("| " + " | ".join(cells) + " |")
    return rows, crossover


def reading(name: str, crossover: dict, gflops: float) -> str:
    parts = []
    for gbit, ranks in crossover.items():
        where = f"from {ranks} ranks" if ranks else "nowhere up to 64 ranks"
        parts.append(f"at {gbit} Gbit/s {where}")
    return f"- {name}, at {gflops:.0f} GFLOP/s per rank: communication dominates " + (
        "; ".join(parts) + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.batch)
        return
    one, two = measure(1, args.steps, args.batch), measure(2, args.steps, args.batch)
    per_image_gflops = 3 * 2 * network_costs(CLASSIC)[1] / 1e9
    achieved = one["images_per_s"] * per_image_gflops  # GFLOP/s of one process
    lines = [
        "# Data-parallel scaling on MPI",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (a shared machine: "
        "absolute rates are noisy). Classic network, global batch "
        f"{args.batch}, median of {args.steps} steps, BLAS threads per rank = cores / ranks.",
        "",
        "| ranks | images/s | step (ms) | bytes all-reduced per step |",
        "|---|---|---|---|",
    ]
    for row in (one, two):
        lines.append(
            f"| {row['ranks']} | {row['images_per_s']:.0f} | "
            f"{row['step_s'] * 1e3:.1f} | {row['bytes_per_step']:,} |"
        )
    lines += [
        "",
        f"Speed-up on 2 ranks: {two['images_per_s'] / one['images_per_s']:.2f}x. Both ranks "
        "share this machine's 2 cores, so the ideal is about 1x (the same cores do the same "
        "work); above 1x, because in one process only the matrix products use both cores "
        "(NumPy runs the copies, pooling and activations on one), while two ranks keep both "
        "cores busy throughout.",
        "",
        "## Scaling model",
        "",
        f"Compute per step and rank = (global batch {args.batch} / ranks) × 3 × 2 × MACs per "
        f"image / {achieved:.0f} GFLOP/s (the rate measured above on one process). "
        "All-reduce = ring algorithm, 2·(p−1)/p × gradient bytes / bandwidth + 2·(p−1) × "
        f"{LATENCY_S * 1e6:.0f} µs latency. *Efficiency* = compute / (compute + all-reduce), "
        "without overlap.",
        "",
        "| network | ranks | gradient MB | compute ms | all-reduce ms, 10 Gbit/s | "
        "efficiency | all-reduce ms, 100 Gbit/s | efficiency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for gflops in (achieved, 100.0):
        for spec, name in ((CLASSIC, "classic"), (WIDE, "10x wider")):
            rows, crossover = scaling_rows(spec, name, gflops, args.batch)
            if gflops == achieved:
                lines += rows
            notes.append(reading(name, crossover, gflops))
    lines += [
        "",
        "Where communication starts to dominate (all-reduce longer than compute), at the "
        "measured rate and at 100 GFLOP/s per rank (a fast, idle CPU node):",
        "",
        *notes,
        "",
        "The classic network is tiny (0.33 MB of gradients): its all-reduce is bound by the "
        "ring's 2·(p−1) latency terms, which grow with p while the compute per rank shrinks "
        "as 1/p at a fixed global batch. The 10x wider network has ~100x the compute per "
        "image but ~65x the gradient bytes, so it stays compute-bound far longer; at 10 "
        "Gbit/s its 22 MB make bandwidth, not latency, the cost. Overlapping the all-reduce "
        "with the backward pass would hide at most the backward's share of the step; larger "
        "per-rank batches help both networks more.",
    ]
    (HERE / "SCALING.md").write_text("\n".join(lines) + "\n")
    (HERE / "scaling.json").write_text(json.dumps({"one": one, "two": two}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
