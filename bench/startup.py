"""Start-up: seconds from launching ``kernelab train`` to the end of its first training step.

Every measurement is a fresh interpreter, ``python -m bench.startup child ENGINE DATA_DIR
THREADS RUN_DIR``. The kernelab child times ``import kernelab``, then runs the command line
(``kernelab.cli.main(["train", ...])``: the classic network, Adam, batch 64) with the trainer's
step wrapped so that the end of the first step reports and ends the process. The launcher notes
the wall clock just before it starts the child, the child notes it at the end of the first
step; the difference includes the interpreter's own start, as a user waits for it.

*Cold* runs point ``NUMBA_CACHE_DIR`` at a new, empty folder: numba then looks for cached
machine code only there (its locator for a user-provided folder comes before the
``__pycache__`` beside the sources, which is never read or written), so every kernel compiles.
*Warm* runs reuse the folder the last cold run filled, and the bytecode cache
(``__pycache__``) the earlier runs wrote, as a user's second run does. They start once the
processes the cold run left compiling (the generated convolutions, the end of the step) have
finished, 30 s or so: a user's first run trains for longer than that, and a warm run started
before had found some kernels missing and taken slower paths. PyTorch's child imports
torch, reads the same files, builds the same network and runs one Adam step, for comparison.

The data is a small MNIST-format set of "bar digits" written to a temporary folder (no
download), or real MNIST files given with ``data_dir``.

On its own: ``python -m bench.startup [--cold 2] [--warm 3] [--threads 2] [--mnist DIR]``
(from the repository root, kernelab importable); ``bench/run.py --only startup`` puts the same
measurement into the report.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NAME = "startup/train_cli"
BATCH = 64
WARM_TARGET, COLD_TARGET = 1.0, 10.0  # seconds to the end of the first step
TRAIN_IMAGES, TEST_IMAGES = 640, 100
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# ---- the data


def _idx(array: np.ndarray) -> bytes:
    """An IDX file: magic (unsigned bytes, ndim), big-endian sizes, the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_bar_mnist(folder: Path, seed: int = 0) -> Path:
    """MNIST's four gzipped files in ``folder``: noise with one bright bar per image, whose
    place is the label (2 rows of 5)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", TRAIN_IMAGES), ("t10k", TEST_IMAGES)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = (rng.random((count, 28, 28)) * 80).astype(np.uint8)
        for i, label in enumerate(labels):
            row, column = divmod(int(label), 5)
            images[i, 3 + 12 * row : 13 + 12 * row, 2 + 5 * column : 6 + 5 * column] = 255
        for name, array in zip(FILES[split], (images, labels), strict=True):
            (folder / name).write_bytes(gzip.compress(_idx(array)))
    return folder


def read_first_batch(folder: Path, count: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` training images (N, 1, 28, 28) scaled to [0, 1] and their labels."""
    images_file, labels_file = (folder / name for name in FILES["train"])
    images = np.frombuffer(gzip.decompress(images_file.read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(gzip.decompress(labels_file.read_bytes()), np.uint8, offset=8)
    images = images[: count * 784].reshape(count, 1, 28, 28)  # (N, 1, 28, 28)
    return images.astype(np.float32) / 255, labels[:count].astype(np.int64)


# ---- the children


def kernelab_child(data_dir: str, threads: int, run_dir: str) -> None:
    """Import kernelab, run ``kernelab train``, report at the end of its first step and exit."""
    start = time.perf_counter()
    import kernelab

    imported = time.perf_counter()
    from kernelab.apps import train
    from kernelab.cli import main

    original = train.Trainer._step

    def first_step(self, x, y) -> None:
        began, step_start = time.time(), time.perf_counter()
        original(self, x, y)
        end = time.time()
        _report(
            {
                "engine": "kernelab",
                "import_s": imported - start,
                "step_s": time.perf_counter() - step_start,
                "step_start": began,
                "step_end": end,
                "kernels": kernelab.backends.kernels.current(),
                "numba_cache_dir": _numba_cache_dir(),
            }
        )

    train.Trainer._step = first_step
    main(
        ["train", "--data-dir", data_dir, "--epochs", "1", "--batch-size", str(BATCH)]
        + ["--threads", str(threads), "--no-progress", "--run-dir", run_dir]
    )
    raise RuntimeError("kernelab train ended without a training step")


def torch_child(data_dir: str, threads: int) -> None:
    """Import torch, read the same files, one Adam step of the same network, report, exit."""
    start = time.perf_counter()
    import torch

    imported = time.perf_counter()
    from . import models

    torch.set_num_threads(threads)
    images, labels = read_first_batch(Path(data_dir))
    model = models.classic_torch()
    began, step_start = time.time(), time.perf_counter()
    models.torch_train_step(model, [(images, labels)], adam_lr=3e-3)()
    _report(
        {
            "engine": "torch",
            "import_s": imported - start,
            "step_s": time.perf_counter() - step_start,
            "step_start": began,
            "step_end": time.time(),
        }
    )


def _numba_cache_dir() -> str | None:
    numba = sys.modules.get("numba")
    return numba.config.CACHE_DIR if numba is not None else None


def _report(record: dict) -> NoReturn:
    """Print the record as the last line and end the process at once (no checkpoint, no
    further steps)."""
    sys.stdout.write("\n" + json.dumps(record) + "\n")
    sys.stdout.flush()
    os._exit(0)


# ---- the launcher


def launch(engine: str, data_dir: Path, threads: int, cache_dir: Path, kernels: str) -> dict:
    """One child; its record with ``to_first_step_s`` (launch to the end of the first step)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), KERNELAB_KERNELS=kernels)
    # a second launch reads Python's bytecode cache as well as numba's: the children write
    # it whatever this shell says (without it, a warm run compiled 20 modules again: 80 ms)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="kl-startup-run-") as run_dir:
        command = [sys.executable, "-m", "bench.startup", "child", engine, str(data_dir)]
        start = time.time()
        done = subprocess.run(
            [*command, str(threads), run_dir],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"start-up child for {engine} failed:\n{done.stderr[-2000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["to_first_step_s"] = record.pop("step_end") - start
    record["to_step_start_s"] = record.pop("step_start") - start
    record["cached_kernels"] = len(list(Path(cache_dir).rglob("*.nbi")))  # numba's index files
    return record


def settle(cache_dir: Path, limit: float = 600.0) -> float:
    """Wait until no process started by a run on ``cache_dir`` still compiles into it (at
    most ``limit`` seconds); the seconds waited."""
    begun = time.time()
    while _compiling(cache_dir) and time.time() - begun < limit:
        time.sleep(0.2)
    return time.time() - begun


def _compiling(cache_dir: Path) -> bool:
    """Whether a background compilation into ``cache_dir`` runs: a lock file of one, or (on
    Linux) a process whose environment names the folder, as the children of a run have."""
    if any(Path(cache_dir).rglob("*.compiling")):
        return True
    marker = f"NUMBA_CACHE_DIR={cache_dir}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                return True
        except OSError:  # gone, or not ours
            continue
    return False


def _median(records: list[dict], key: str) -> float | None:
    return statistics.median(r[key] for r in records) if records else None


def compare(
    threads: int, kernels: str, cold: int = 2, warm: int = 3, data_dir: Path | None = None
) -> dict:
    """``cold`` runs (each with a new numba cache), ``warm`` runs (the last cold run's cache),
    ``warm`` PyTorch runs; medians and the verdicts."""
    with tempfile.TemporaryDirectory(prefix="kl-startup-") as tmp:
        folder = Path(data_dir) if data_dir else write_bar_mnist(Path(tmp) / "mnist")
        # read the libraries once, so the first measured run does not also pay the disk
        subprocess.run([sys.executable, "-c", "import kernelab, numba, torch"], cwd=ROOT)
        runs = {"cold": [], "warm": [], "torch": []}
        for i in range(max(cold, 1)):
            cache = Path(tmp) / f"numba-cache-{i}"
            runs["cold"].append(launch("kernelab", folder, threads, cache, kernels))
        runs["cold"] = runs["cold"][:cold]
        settled = settle(cache)
        for _ in range(warm):
            runs["warm"].append(launch("kernelab", folder, threads, cache, kernels))
            runs["torch"].append(launch("torch", folder, threads, cache, kernels))
    summary = {
        "cold_step_s": _median(runs["cold"], "step_s"),
        "warm_step_s": _median(runs["warm"], "step_s"),
        "torch_step_s": _median(runs["torch"], "step_s"),
        "cold_s": _median(runs["cold"], "to_first_step_s"),
        "warm_s": _median(runs["warm"], "to_first_step_s"),
        "torch_s": _median(runs["torch"], "to_first_step_s"),
        "import_s": _median(runs["warm"], "import_s"),
        "torch_import_s": _median(runs["torch"], "import_s"),
        "settled_s": settled,
    }
    return {
        "name": NAME,
        "title": f"kernelab train (classic network, Adam, batch {BATCH}) to its first step",
        "data": str(data_dir) if data_dir else f"bar digits, {TRAIN_IMAGES} training images",
        "threads": threads,
        "kernels": runs["warm"][0]["kernels"] if runs["warm"] else kernels,
        **summary,
        "runs": runs,
        "targets": {"warm_s": WARM_TARGET, "cold_s": COLD_TARGET},
        "target_met": {
            key: summary[key] is not None and summary[key] < bound
            for key, bound in (("warm_s", WARM_TARGET), ("cold_s", COLD_TARGET))
        },
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.startup [--cold N] [--warm N] [--threads N] [--mnist DIR]``: measure
    and print the summary. (``python -m bench.startup child ENGINE ...`` is one child.)"""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        engine, data, threads = argv[1], argv[2], int(argv[3])
        if engine == "kernelab":
            kernelab_child(data, threads, argv[4])
        torch_child(data, threads)
    parser = argparse.ArgumentParser(description="kernelab train to its first step, cold and warm")
    parser.add_argument("--cold", type=int, default=2, help="cold runs (new numba cache each)")
    parser.add_argument("--warm", type=int, default=3, help="warm runs (and PyTorch runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kernels", choices=("numba", "numpy"), default="numba")
    parser.add_argument("--mnist", type=Path, help="MNIST's files (default: bar digits)")
    args = parser.parse_args(argv)
    record = compare(args.threads, args.kernels, args.cold, args.warm, args.mnist)
    print(json.dumps({key: value for key, value in record.items() if key != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
