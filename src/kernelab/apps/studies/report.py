"""A study's report: one Markdown page with its tables and PNG plots, and the raw numbers.

Cells show the mean ± the sample standard deviation (n − 1) over the seeds. The plots are
drawn with matplotlib's Agg backend and saved with :func:`kernelab.kernels.viz.save`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import distributed
from ...core.threads import get_num_threads
from ...kernels import viz
from .runner import Recipe, Row, StudyData

Column = tuple[str, Callable[[Row], str]]


# ---- table cells
def pm(key: str, scale: float = 1.0, digits: int = 2, unit: str = "") -> Callable[[Row], str]:
    """A cell "mean ± std" of ``key`` over the seeds, times ``scale``."""

    def cell(row: Row) -> str:
        if any(run.get("diverged") for run in row.runs):
            diverged = sum(bool(run.get("diverged")) for run in row.runs)
            return f"diverged ({diverged}/{len(row.runs)} seeds)"
        mean, std = row.mean(key) * scale, row.std(key) * scale
        return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"

    return cell


def count(key: str) -> Callable[[Row], str]:
    """A cell with a seed-independent integer, thousands separated."""
    return lambda row: f"{row.value(key):,}"


def receptive_field(row: Row) -> str:
    size = row.value("receptive_field")
    if size is None:
        return "-"
    return f"{size[0]}" if size[0] == size[1] else f"{size[0]}x{size[1]}"


def markdown_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    lines = ["| " + " | ".join(name for name, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return "\n".join(lines)


# ---- curves
def smooth(values: Sequence[float], points: int = 100) -> tuple[list[float], list[float]]:
    """Means of consecutive windows (about ``points`` of them): (centre step, mean)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return [], []
    window = max(1, values.size // points)
    usable = values.size // window * window
    means = values[:usable].reshape(-1, window).mean(axis=1)
    centres = np.arange(len(means)) * window + (window - 1) / 2 + 1
    return centres.tolist(), means.tolist()


def mean_curve(row: Row, points: int = 100) -> tuple[list[float], list[float]]:
    """The per-step training loss averaged over seeds, then smoothed."""
    curves = [run["step_losses"] for run in row.runs if run["step_losses"]]
    if not curves:
        return [], []
    length = min(len(c) for c in curves)
    return smooth(np.mean([c[:length] for c in curves], axis=0), points)


# ---- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.config.group, []).append(row)
    return groups


def plot_tradeoff(rows: Sequence[Row], x_key: str, x_label: str, title: str):
    """Test accuracy (mean ± std) against a seed-independent cost, one labelled dot per row."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for (group, members), marker in zip(_groups(rows).items(), "osD^v<>", strict=False):
        xs = [row.value(x_key) for row in members]
        ys = [100 * row.mean("test_acc") for row in members]
        errors = [100 * row.std("test_acc") for row in members]
        axis.errorbar(xs, ys, yerr=errors, fmt=marker, capsize=3, label=group or None)
        for x, y, row in zip(xs, ys, members, strict=True):
            axis.annotate(
                row.config.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8
            )
    values = [row.value(x_key) for row in rows]
    if min(values) > 0 and max(values) / min(values) > 20:
        axis.set_xscale("log")
    axis.set_xlabel(x_label)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    if any(row.config.group for row in rows):
        axis.legend(fontsize=8)
    return figure


def plot_versus(rows: Sequence[Row], keys: Sequence[tuple[str, str]], x_label: str, title: str):
    """One panel per (key, label) against the rows' swept value ``config.x``."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for axis, (key, label) in zip(axes[0], keys, strict=True):
        scale = 100 if key.endswith("_acc") else 1
        for group, members in _groups(rows).items():
            xs = [row.config.x for row in members]
            if key in ("params", "macs", "conv_params", "conv_macs", "full_params"):
                axis.plot(xs, [row.value(key) for row in members], "o-", label=group or None)
                axis.set_yscale("log")
            else:
                ys = [scale * row.mean(key) for row in members]
                errors = [scale * row.std(key) for row in members]
                axis.errorbar(xs, ys, yerr=errors, fmt="o-", capsize=3, label=group or None)
        axis.set_xlabel(x_label)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_bars(rows: Sequence[Row], key: str, label: str, title: str, scale: float = 1.0):
    """Horizontal bars of ``key`` (mean ± std over seeds), one per row."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.2))
    positions = np.arange(len(rows))[::-1]
    means = [scale * row.mean(key) for row in rows]
    errors = [scale * row.std(key) for row in rows]
    axis.barh(positions, means, xerr=errors, capsize=3, color="tab:blue", alpha=0.8)
    axis.set_yticks(positions, [row.config.label for row in rows])
    axis.set_xlabel(label)
    axis.set_title(title)
    axis.grid(axis="x", alpha=0.3)
    finite = [m for m in means if np.isfinite(m)]
    if key.endswith("_acc") and finite and min(finite) > 50:
        axis.set_xlim(max(0, min(finite) - 5), 100)
    return figure


def plot_loss_curves(rows: Sequence[Row], title: str):
    """Training loss per step (mean over seeds, smoothed), one line per row, log scale."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.2, 4.4))
    for row in rows:
        xs, ys = mean_curve(row)
        axis.plot(xs, ys, label=row.config.label)
    axis.set_yscale("log")
    axis.set_xlabel("training step (batch)")
    axis.set_ylabel("training loss (cross-entropy)")
    axis.set_title(title)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8, ncol=2)
    return figure


# ---- the page
def machine() -> str:
    cores = os.cpu_count() or 1
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{platform.platform()}, {platform.machine()}, {cores} cores (load average at the end "
        f"{load}); Python {platform.python_version()}, NumPy {np.__version__}"
    )


def header_table(info: dict[str, str]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items()]
    return "\n".join(lines)


def run_info(
    mode: str,
    recipe: Recipe,
    study_data: StudyData,
    wall_seconds: float,
    command: str,
    extra: dict[str, str],
) -> dict[str, str]:
    shape = "x".join(str(n) for n in study_data.input_shape[1:])
    return {
        "Data": study_data.source,
        "Mode": mode,
        "Seeds": f"{len(recipe.seeds)} ({', '.join(map(str, recipe.seeds))})",
        "Training": (
            f"{recipe.epochs} epoch(s) of {len(study_data.x_train):,} images ({shape}), "
            f"Adam lr {recipe.lr:g}, batch {recipe.batch_size}, constant learning rate, "
            f"no augmentation; test set: {len(study_data.x_test):,} images, after the last epoch"
        ),
        **extra,
        "Machine": machine(),
        "Processes": (
            f"{distributed.get_world_size()} MPI rank(s), {get_num_threads()} BLAS thread(s) each"
        ),
        "Date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "Wall time": f"{wall_seconds / 60:.1f} min",
        "Command": f"`{command}`",
    }


def write_plots(plots, rows: Sequence[Row], out: Path) -> list[str]:
    """Each (file name, caption, make figure) as a PNG; Markdown image lines for the page."""
    lines = []
    for name, caption, make in plots:
        try:
            viz.save(make(rows), out / name)
        except ImportError as error:  # matplotlib missing: the tables are still worth having
            return [f"(no plots: {error})"]
        lines.append(f"![{caption}]({name})\n\n*{caption}*\n")
    return lines


def raw_numbers(rows: Sequence[Row], info: dict[str, str]) -> dict[str, Any]:
    """What results.json holds: every run's numbers, per-step losses as a smoothed curve."""
    configs = []
    for row in rows:
        runs = []
        for run in row.runs:
            kept = {k: v for k, v in run.items() if k != "step_losses"}
            kept["loss_curve"] = dict(
                zip(("step", "loss"), smooth(run["step_losses"]), strict=True)
            )
            runs.append(kept)
        configs.append({**vars(row.config), "runs": runs})
    return {"info": info, "configs": configs}


def write_report(
    out: Path,
    title: str,
    question: str,
    info: dict[str, str],
    tables: Sequence[tuple[str, str]],
    plot_lines: Sequence[str],
    reading: Sequence[str],
    rows: Sequence[Row],
) -> Path:
    """README.md (and results.json) in ``out``; ``tables`` are (heading, Markdown table)."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", question, header_table(info), "## Results"]
    seeds = len(rows[0].runs) if rows else 0
    for heading, table in tables:
        parts += [f"### {heading}" if heading else "", table]
    parts.append(
        f"Cells with ± are the mean ± the sample standard deviation (n − 1) over the {seeds} "
        f"seeds; accuracies in %, training time in seconds (the sum of the epochs' training "
        f"loops, without evaluation: it depends on the machine's load). Parameters count what "
        f"is learned; MACs are multiply-accumulates per image (from `kernelab.summary`)."
    )
    if plot_lines:
        parts += ["## Plots", *plot_lines]
    parts += ["## Reading (generated from the numbers)", "\n".join(f"- {r}" for r in reading)]
    configs = ["| label | spec | kernel init |", "|---|---|---|"]
    configs += [f"| {r.config.label} | `{r.config.spec}` | {_init_text(r)} |" for r in rows]
    parts += ["## Configurations", "\n".join(configs)]
    parts.append("Raw numbers of every run (per epoch, per seed): `results.json`.")
    path = out / "README.md"
    path.write_text("\n\n".join(p for p in parts if p) + "\n")
    (out / "results.json").write_text(json.dumps(raw_numbers(rows, info), indent=1) + "\n")
    return path


def _init_text(row: Row) -> str:
    text = "layer default" if row.config.init == "default" else f"`{row.config.init}`"
    return text + (", conv biases 0" if row.config.zero_bias else "")
