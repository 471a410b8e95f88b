"""Data-parallel training on MPI, with PyTorch's ``torch.distributed`` vocabulary.

Every process (rank) holds the whole model and trains on its own shard of each global batch;
:class:`DistributedDataParallel` averages the gradients over the ranks before the optimiser
step, so N ranks take exactly the steps one process would take on the whole batch.

Run with ``mpiexec -n 4 python script.py`` (or ``mpiexec -n 4 kernelab train``). Without
``mpiexec`` — or without mpi4py — the world is one rank and every call is a no-op.
``pip install "kernelab[mpi]"`` installs mpi4py and MPICH, ``mpiexec`` included.

A collective that gets no answer within ``timeout`` seconds (a rank died) aborts the whole
job with a clear message instead of hanging.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import autograd
from .core.tensor import Tensor
from .nn import Module

DEFAULT_TIMEOUT = float(os.environ.get("KERNELAB_DIST_TIMEOUT", 300))
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


class _World:
    def __init__(self, comm: Any, timeout: float):
        self.comm, self.timeout = comm, timeout
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()


_world: _World | None = None


def launched_by_mpi() -> bool:
    """True when this process was started by an MPI launcher."""
    return any(int(os.environ.get(v, "0") or 0) > 0 for v in _LAUNCHER_VARIABLES)


def init_process_group(backend: str = "mpi", timeout: float | None = None) -> None:
    """Join the MPI world (a one-rank world when not started by ``mpiexec``: then MPI is not
    even loaded, which would add 70 ms to a training command's start)."""
    global _world
    if backend != "mpi":
        raise ValueError(f"backend {backend!r} is not available: kernelab uses 'mpi'")
    comm = None
    if launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError(
                'started by mpiexec but mpi4py is missing: pip install "kernelab[mpi]"'
            ) from None
        comm = MPI.COMM_WORLD
    _world = _World(comm, DEFAULT_TIMEOUT if timeout is None else timeout)


def _get() -> _World:
    if _world is None:
        init_process_group()
    return _world


def is_initialized() -> bool:
    return _world is not None


def get_rank() -> int:
    return _get().rank


def get_world_size() -> int:
    return _get().size


def _wait(request: Any, what: str) -> None:
    """Wait for a non-blocking collective; abort the job when it never completes."""
    world = _get()
    deadline = time.monotonic() + world.timeout
    pause = 0.0
    while not request.Test():
        if time.monotonic() > deadline:
            sys.stderr.write(
                f"kernelab.distributed: rank {world.rank}: {what} got no answer from the other "
                f"ranks within {world.timeout:.0f} s (a rank has died?); aborting the job\n"
            )
            sys.stderr.flush()
            world.comm.Abort(1)
        time.sleep(pause)
        pause = min(0.001, pause + 0.0001)


def barrier() -> None:
    world = _get()
    if world.size > 1:
        _wait(world.comm.Ibarrier(), "barrier")


def all_reduce(array: np.ndarray, op: str = "sum") -> np.ndarray:
    """Combine ``array`` over all ranks in place (``"sum"``, ``"mean"``, ``"max"``, ``"min"``)."""
    world = _get()
    if world.size == 1:
        return array
    from mpi4py import MPI

    ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
    if op not in ops:
        raise ValueError(f"all_reduce: op must be one of {sorted(ops)}, got {op!r}")
    buffer = np.ascontiguousarray(array)
    _wait(world.comm.Iallreduce(MPI.IN_PLACE, buffer, op=ops[op]), "all_reduce")
    if op == "mean":
        buffer /= world.size
    if buffer is not array:
        array[...] = buffer
    return array


def broadcast(array: np.ndarray, src: int = 0) -> np.ndarray:
    """Copy rank ``src``'s ``array`` into every rank's, in place."""
    world = _get()
    if world.size == 1:
        return array
    buffer = np.ascontiguousarray(array)
    _wait(world.comm.Ibcast(buffer, root=src), "broadcast")
    if buffer is not array:
        array[...] = buffer
    return array


class DistributedSampler:
    """Each rank's disjoint share of every epoch's seeded permutation (PyTorch's semantics).

    Epoch ``e`` shuffles with ``np.random.default_rng([seed, e])`` — the order a one-process
    :class:`~kernelab.data.DataLoader` with the same seed uses — pads it to a multiple of the
    world size by repeating its start, and gives rank r the positions r, r+W, r+2W, ... So
    local batches of ``B/W`` samples on W ranks together form exactly the one-process batch
    of B samples.
    """

    def __init__(
        self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False
    ):
        self.length = len(dataset)
        self.num_replicas = get_world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is outside [0, {self.num_replicas})")
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        if drop_last and self.length % self.num_replicas:
            self.num_samples = math.ceil((self.length - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(self.length / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        total = self.num_samples * self.num_replicas
        if total > len(order):
            order = np.concatenate([order, np.resize(order, total - len(order))])
        return iter(order[:total][self.rank :: self.num_replicas].tolist())


class DistributedDataParallel(Module):
    """Wraps a model so that ``backward()`` leaves gradients averaged over all ranks.

    At construction rank 0's parameters and buffers are broadcast to every rank. During
    backward each gradient is marked ready as it is accumulated; when the pass ends, the
    gradients are averaged in flat buckets of ``bucket_cap_mb`` (one all-reduce per bucket
    instead of one per tensor). The state dict keys gain a ``module.`` prefix, as PyTorch's.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0):
        super().__init__()
        self.module = module
        for tensor in list(module.parameters()) + list(module.buffers()):
            broadcast(tensor.array, src=0)
        self.bucket_bytes = int(bucket_cap_mb * 2**20)
        self._pending = False
        for param in module.parameters():
            param.register_post_accumulate_grad_hook(self._on_gradient)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _on_gradient(self, _param) -> None:
        if not self._pending and get_world_size() > 1:
            self._pending = True
            autograd.queue_callback(self._average_gradients)

    def _buckets(self) -> list[list]:
        buckets, current, size = [], [], 0
        for param in self.module.parameters():
            if not param.requires_grad:
                continue
            current.append(param)
            size += param.array.nbytes
            if size >= self.bucket_bytes:
                buckets.append(current)
                current, size = [], 0
        return buckets + ([current] if current else [])

    def _average_gradients(self) -> None:
        self._pending = False
        for bucket in self._buckets():
            flat = np.concatenate(
                [
                    np.zeros(p.array.size, p.array.dtype)
                    if p.grad is None
                    else p.grad.array.ravel()
                    for p in bucket
                ]
            )
            all_reduce(flat, op="mean")
            offset = 0
            for param in bucket:
                grad = flat[offset : offset + param.array.size]
                param.grad = Tensor(grad.reshape(param.array.shape))
                offset += param.array.size
