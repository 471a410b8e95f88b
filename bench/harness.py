"""Timing: interleaved rounds of kernelab and PyTorch in one process, medians and ratios.

A *case* builds a :class:`Workload`: one callable per engine that does the same work on the
same data (identical weights and inputs). For each case, after warm-up rounds, every round
times kernelab and then PyTorch (the order alternates from round to round, so neither engine
always runs on a cache or a thread pool the other just warmed). A round repeats a call until
it lasts ``min_round`` seconds; its time is per call. We report the median per-call time of each
engine and the median of the per-round ratios, which is robust to the load other processes put
on the machine while a round runs.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ENGINES = ("kernelab", "torch")
NUMPY_ENGINE = "kernelab_numpy"  # kernelab on its NumPy reference kernels, when asked for


@dataclass(frozen=True)
class Settings:
    rounds: int = 15  # timed rounds per case
    warmup: int = 3  # untimed rounds first (also used to size the rounds)
    min_round: float = 0.25  # seconds each engine spends per round, at least
    max_calls: int = 2000  # per engine per round
    # Idle seconds before each round: OpenBLAS's threads keep spinning ~0.1 s after a product
    # and would take a core from PyTorch's threads (and PyTorch's from ours) on a small machine.
    settle: float = 0.12
    collect_garbage: bool = True  # gc.collect() before each case (0.1 s with PyTorch loaded)


QUICK = Settings(rounds=5, warmup=1, min_round=0.05)
FULL = Settings()


@dataclass
class Workload:
    """The same work for both engines; ``check`` returns the largest relative difference of
    their outputs (computed before timing, while the weights are still identical)."""

    kernelab: Callable[[], object]
    torch: Callable[[], object]
    check: Callable[[], float] | None = None


@dataclass(frozen=True)
class Target:
    """What the issue asks: ``metric`` is "speed" (kernelab/PyTorch images/s, higher is better)
    or "time" (kernelab/PyTorch seconds, lower is better)."""

    metric: str
    bound: float

    def met(self, time_ratio: float) -> bool:
        if self.metric == "speed":
            return 1 / time_ratio >= self.bound
        return time_ratio <= self.bound

    def text(self) -> str:
        return f"≥ {self.bound:g}x" if self.metric == "speed" else f"≤ {self.bound:g}x"


@dataclass(frozen=True)
class Case:
    name: str  # "group/short", e.g. "conv/k3"
    title: str  # one line for the tables
    build: Callable[[], Workload]
    images: int = 0  # images per call (0: not an image workload)
    flops: float = 0.0  # floating-point operations per call (multiply-add = 2)
    target: Target | None = None
    meta: dict = field(default_factory=dict)  # anything the report groups by (batch, size, ...)

    @property
    def group(self) -> str:
        return self.name.split("/")[0]


def relative_difference(a, b) -> float:
    """max |a − b| / max |b|: how far kernelab's output is from PyTorch's."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def time_calls(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def on_numpy_path(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run on kernelab's NumPy reference kernels (the same work, the other path)."""
    from kernelab.backends import kernels

    def call() -> object:
        with kernels.using("numpy"):
            return fn()

    return call


def measure(case: Case, settings: Settings, numpy_path: bool = False) -> dict:
    """Time ``case`` and return its result record (everything the report and JSON need).

    With ``numpy_path``, kernelab's NumPy reference kernels run as a third engine in the same
    rounds (``NUMPY_ENGINE``), so the compiled kernels are compared with them under the same
    load.
    """
    if settings.collect_garbage:
        gc.collect()
    work = case.build()
    fns = {"kernelab": work.kernelab, "torch": work.torch}
    if numpy_path:
        fns[NUMPY_ENGINE] = on_numpy_path(work.kernelab)
    engines = tuple(fns)
    check = work.check() if work.check is not None else None
    # Warm-up: at least one call each, then size each engine's round to min_round seconds.
    single = {name: [] for name in engines}
    for r in range(max(settings.warmup, 1)):
        for name in engines if r % 2 == 0 else reversed(engines):
            single[name].append(time_calls(fns[name], 1))
    calls = {
        name: int(min(settings.max_calls, max(1, settings.min_round // min(times))))
        for name, times in single.items()
    }
    load_before = os.getloadavg()[0]
    per_round: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(settings.rounds):
        for name in engines if r % 2 == 0 else reversed(engines):
            time.sleep(settings.settle)
            per_round[name].append(time_calls(fns[name], calls[name]))
    record = summarize(case, per_round, calls, check, load_before)
    if numpy_path:
        record.update(numpy_summary(case, per_round))
    return record


def numpy_summary(case: Case, per_round: dict) -> dict:
    """The NumPy path's median time, its ratio to PyTorch, and compiled / NumPy (per round)."""
    kl, pt, ref = per_round["kernelab"], per_round["torch"], per_round[NUMPY_ENGINE]
    numpy_s = statistics.median(ref)
    extra = {
        "numpy_s": numpy_s,
        "numpy_time_ratio": statistics.median([n / t for n, t in zip(ref, pt, strict=True)]),
        "compiled_vs_numpy": statistics.median([k / n for k, n in zip(kl, ref, strict=True)]),
    }
    if case.images:
        extra["numpy_images_per_s"] = case.images / numpy_s
    return extra


def summarize(case: Case, per_round: dict, calls: dict, check, load_before: float) -> dict:
    kl, pt = per_round["kernelab"], per_round["torch"]
    ratios = [k / t for k, t in zip(kl, pt, strict=True)]
    quartiles = _quartiles(ratios)
    record = {
        "name": case.name,
        "title": case.title,
        "meta": case.meta,
        "kernelab_s": statistics.median(kl),
        "torch_s": statistics.median(pt),
        "time_ratio": statistics.median(ratios),  # kernelab time / PyTorch time
        "speed_ratio": statistics.median([t / k for k, t in zip(kl, pt, strict=True)]),
        "time_ratio_quartiles": quartiles,
        "best_time_ratio": min(kl) / min(pt),  # fastest rounds only: a check on the median
        "calls_per_round": calls,
        "rounds": per_round,
        "max_rel_diff": check,
        "loadavg_1min": load_before,
        "images": case.images,
        "flops": case.flops,
    }
    if case.images:
        record["kernelab_images_per_s"] = case.images / record["kernelab_s"]
        record["torch_images_per_s"] = case.images / record["torch_s"]
    if case.flops:
        record["kernelab_gflops"] = case.flops / record["kernelab_s"] / 1e9
        record["torch_gflops"] = case.flops / record["torch_s"] / 1e9
    if case.target is not None:
        record["target"] = {"metric": case.target.metric, "bound": case.target.bound}
        record["target_met"] = case.target.met(record["time_ratio"])
    return record


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def set_threads(threads: int):
    """Give kernelab (BLAS and the compiled kernels' pool) and PyTorch the same number of
    threads; returns the limiter to keep (it restores the original BLAS limits)."""
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=threads)
    use_threads(threads)
    return limiter


def use_threads(threads: int) -> None:
    """Switch both engines to ``threads`` threads (between timed rounds: not free).

    kernelab's first, importing numba now on the compiled path rather than inside a timed
    round. (Under numba's OpenMP layer, starting the pool would also reset the thread count of
    the OpenMP runtime PyTorch shares; kernelab uses the workqueue layer, but a user may set
    ``NUMBA_THREADING_LAYER=omp``.)
    """
    import torch

    import kernelab as kl

    kl.set_num_threads(threads)
    kl.backends.kernels.current()  # imports numba on the compiled path
    torch.set_num_threads(threads)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def source_state(root) -> dict:
    """The commit measured, and the source files that differ from it (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted_src": [line[3:] for line in changed.splitlines()],
    }


def machine() -> dict:
    """What the numbers were measured on."""
    import torch
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas,
        "torch": torch.__version__,
    }
