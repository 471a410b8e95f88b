"""Run under mpiexec by test_distributed.py: a few data-parallel SGD steps, or a dying rank."""

import os
import signal
import sys

import numpy as np

import kernelab as kl
from kernelab import distributed as dist
from kernelab import nn, optim
from kernelab.nn import functional as F

GLOBAL_BATCH, STEPS = 8, 4


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", generator=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3, generator=2),
    )


def batches():
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        yield (
            rng.standard_normal((GLOBAL_BATCH, 1, 8, 8)).astype(np.float32),
            rng.integers(0, 3, GLOBAL_BATCH),
        )


def train(model, rank=0, world=1, die_at=None):
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    share = GLOBAL_BATCH // world
    for step, (x, y) in enumerate(batches()):
        if step == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        optimizer.zero_grad()
        rows = slice(rank * share, (rank + 1) * share)
        F.cross_entropy(model(kl.tensor(x[rows])), kl.tensor(y[rows])).backward()
        optimizer.step()
    return model


if __name__ == "__main__":
    out, mode = sys.argv[1], sys.argv[2]
    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    model = make_model()
    if rank == 1:  # a different start on purpose: DDP must broadcast rank 0's weights
        for p in model.parameters():
            p.array += 1
    ddp = dist.DistributedDataParallel(model)
    train(ddp, rank, world, die_at=2 if mode == "die" and rank == 1 else None)
    np.savez(
        os.path.join(out, f"rank{rank}.npz"),
        **{k: v.numpy() for k, v in model.state_dict().items()},
    )
