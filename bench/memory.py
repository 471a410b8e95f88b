"""Peak resident memory of a training epoch, each engine in a process of its own.

The parent starts ``python -m bench.memory ENGINE ...`` once per engine. The child imports only
its engine, runs one warm-up step of a throwaway network on two images (kernelab compiles its
kernels or loads them from numba's cache there, which takes memory of its own), builds the
classic network and the epoch's data, resets the peak (``echo 5 > /proc/self/clear_refs``),
notes its resident memory (the *baseline*), trains ``batches`` steps and reports its peak.
The child reads the peak from ``VmHWM`` in ``/proc/self/status``: ``ru_maxrss`` of a freshly
started child also counts the parent it was spawned from (Linux records the pre-``exec``
address space in it), which would charge the benchmark's own few hundred MB to both engines.
``ru_maxrss`` is reported beside it.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "memory/train_epoch"
MB = 1024 * 1024


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _memory_now() -> dict:
    rss, hwm = _status_kb("VmRSS"), _status_kb("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "rss_mb": rss / 1024 if rss is not None else None,
        "hwm_mb": hwm / 1024 if hwm is not None else maxrss / 1024,
        "ru_maxrss_mb": maxrss / 1024,
    }


def _reset_peak() -> bool:
    """Set VmHWM back to the current resident size (Linux 4.0 and later)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _training_step(engine: str, batches: list, threads: int, kernels: str):
    """A new classic network's training step in ``engine``, on ``threads`` threads."""
    from . import models

    if engine == "kernelab":
        import kernelab as kl

        kl.backends.kernels.use(kernels)
        kl.set_num_threads(threads)
        return models.kernelab_train_step(models.classic_kernelab(), batches)
    if engine == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        return models.torch_train_step(models.classic_torch(), batches)
    raise ValueError(f"engine must be 'kernelab' or 'torch', got {engine!r}")


def train_epoch(
    engine: str, batches: int, batch_size: int, threads: int, kernels: str = "numba"
) -> dict:
    """Train the classic network for ``batches`` steps here; memory before and after."""
    from threadpoolctl import threadpool_limits

    from . import models

    with threadpool_limits(limits=threads):
        _training_step(engine, models.make_batches(1, 2, seed=1), threads, kernels)()
        warmup = _memory_now()
        gc.collect()
        step = _training_step(engine, models.make_batches(batches, batch_size), threads, kernels)
        peak_reset = _reset_peak()
        before = _memory_now()
        for _ in range(batches):
            step()
        after = _memory_now()
    baseline = before["rss_mb"] if before["rss_mb"] is not None else before["hwm_mb"]
    return {
        "engine": engine,
        "kernels": _kernels_running(engine),
        "warmup": warmup,
        "peak_reset": peak_reset,
        "batches": batches,
        "batch_size": batch_size,
        "baseline": before,
        "peak": after,
        "peak_mb": after["hwm_mb"],
        "baseline_mb": baseline,
        "increment_mb": after["hwm_mb"] - baseline,
        "torch_loaded": "torch" in sys.modules,
    }


def _kernels_running(engine: str) -> str | None:
    if engine != "kernelab":
        return None
    import kernelab as kl

    return kl.backends.kernels.current()


def measure(engine: str, batches: int, batch_size: int, threads: int, kernels: str) -> dict:
    """Run :func:`train_epoch` in a fresh interpreter and return its record."""
    command = [sys.executable, "-m", "bench.memory", engine, str(batches), str(batch_size)]
    done = subprocess.run(
        command + [str(threads), kernels], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {engine} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(batches: int, batch_size: int, threads: int, kernels: str = "numba") -> dict:
    """Both engines, one child each, and the targets' verdict (training memory above the
    baseline, kernelab ≤ PyTorch)."""
    records = {e: measure(e, batches, batch_size, threads, kernels) for e in ("kernelab", "torch")}
    kl, pt = records["kernelab"], records["torch"]
    return {
        "name": NAME,
        "title": f"training, {batches} batches of {batch_size}",
        "engines": records,
        "increment_ratio": kl["increment_mb"] / max(pt["increment_mb"], 1e-9),
        "peak_ratio": kl["peak_mb"] / pt["peak_mb"],
        "target_met": kl["increment_mb"] <= pt["increment_mb"],
    }


if __name__ == "__main__":
    engine, batches, batch_size, threads = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(train_epoch(engine, batches, batch_size, threads, sys.argv[5])))
