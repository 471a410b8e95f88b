"""What a study is: its rows, tables, plots and reading, and the helpers the readings share."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .report import Column, markdown_table, pm
from .runner import Config, Row

Plot = tuple[str, str, Callable[[Sequence[Row]], object]]


@dataclass(frozen=True)
class Study:
    """A named experiment: ``configs(input_size)`` gives its rows; the rest turns their runs
    into the report (table ``columns``, ``plots`` as (file, caption, figure maker), and the
    mechanical ``reading``). Quick mode feeds it images of ``quick_image_size``."""

    name: str
    title: str
    question: str
    configs: Callable[[int], list[Config]]  # input size (28 or 14) → rows
    columns: tuple[Column, ...]
    plots: tuple[Plot, ...]
    reading: Callable[[Sequence[Row]], list[str]]
    quick_image_size: int = 28

    def image_size(self, mode: str) -> int:
        return self.quick_image_size if mode != "full" else 28

    def tables(self, rows: Sequence[Row]) -> list[tuple[str, str]]:
        return [("", markdown_table(rows, self.columns))]


# ---- helpers for the readings
ACCURACY = pm("test_acc", 100, 2)
TIME = pm("train_seconds", 1, 1)


def accuracy_text(row: Row) -> str:
    return f"{100 * row.mean('test_acc'):.2f} ± {100 * row.std('test_acc'):.2f} %"


def trained(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if math.isfinite(r.mean("test_acc"))]


def difference(a: Row, b: Row) -> str:
    """a − b in accuracy points, and whether it exceeds the seeds' spread."""
    delta = 100 * (a.mean("test_acc") - b.mean("test_acc"))
    spread = 100 * math.hypot(a.std("test_acc"), b.std("test_acc"))
    size = "larger" if abs(delta) > spread else "not larger"
    return f"{delta:+.2f} points ({size} than the combined std {spread:.2f})"


def best_and_worst(rows: Sequence[Row]) -> list[str]:
    finished = trained(rows)
    if not finished:
        return ["every configuration diverged"]
    best = max(finished, key=lambda r: r.mean("test_acc"))
    worst = min(finished, key=lambda r: r.mean("test_acc"))
    return [
        f"Highest mean test accuracy: **{best.config.label}**, {accuracy_text(best)}.",
        f"Lowest: **{worst.config.label}**, {accuracy_text(worst)}.",
    ]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "-"
