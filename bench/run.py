"""Run the benchmark suite: ``python bench/run.py [--quick] [--only NAME] [--threads N]``.

Measures kernelab and PyTorch CPU in the same process (interleaved rounds, see ``harness.py``)
and writes ``bench/results.json`` and ``bench/RESULTS.md``. Runs with ``--quick`` or ``--only``
write ``results-partial.json`` and ``RESULTS-partial.md`` instead, so they never replace the
full report; ``--kernels numpy`` (kernelab's NumPy reference kernels) adds ``-numpy`` to the
names, and ``--kernels both`` times the NumPy path as a third engine in the same rounds as the
compiled one and PyTorch (each case takes half as long again). ``--only`` takes
comma-separated names or globs: ``conv``, ``conv/k3``, ``classic/train_*``, ``nets``,
``threads``, ``memory``, ``startup``.

Besides the interleaved cases: ``threads/*`` (one step at 1 and 2 threads, ``threads.py``),
``memory/train_epoch`` (peak memory, one child process per engine, ``memory.py``) and
``startup/train_cli`` (``kernelab train`` to its first step, cold and warm, ``startup.py``).
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernelab as kl  # noqa: E402
from bench import cases, harness, memory, models, report, startup, threads  # noqa: E402

HERE = Path(__file__).resolve().parent
MEMORY_BATCHES = {"quick": 10, "full": 100}
STARTUP_RUNS = {"quick": (1, 2), "full": (2, 3)}  # cold runs, warm runs


def selected(name: str, patterns: list[str]) -> bool:
    return not patterns or any(
        name == p or name.startswith(p + "/") or fnmatch.fnmatch(name, p) for p in patterns
    )


def optimizer_name() -> str:
    return f"kernelab.optim.SGD vs torch.optim.SGD (lr {models.LR}, momentum {models.MOMENTUM})"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~2 min)")
    parser.add_argument("--only", default="", help="comma-separated case names or globs")
    parser.add_argument("--threads", type=int, default=harness.default_threads())
    parser.add_argument(
        "--kernels",
        choices=("numba", "numpy", "both"),
        default=os.environ.get("KERNELAB_KERNELS", "numba").strip().lower() or "numba",
        help="kernelab's kernels: compiled (numba, the default), the NumPy reference, or both "
        "(the NumPy path timed beside the compiled one)",
    )
    parser.add_argument("--out", type=Path, help="JSON path (Markdown goes next to it)")
    parser.add_argument(
        "--mnist", type=Path, help="MNIST's files for the start-up runs (default: bar digits)"
    )
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    return parser.parse_args(argv)


def output_paths(args, partial: bool) -> tuple[Path, Path]:
    """The JSON and Markdown files of this run (see the module's docstring)."""
    if args.out:
        return args.out, args.out.with_suffix(".md")
    suffix = ("-partial" if partial else "") + ("-numpy" if args.kernels == "numpy" else "")
    return HERE / f"results{suffix}.json", HERE / f"RESULTS{suffix}.md"


@dataclass
class Plan:
    """What one run measures."""

    cases: list[harness.Case]
    gains: list[harness.Case]  # steps timed at 1 and 2 threads
    memory: bool
    startup: bool

    def empty(self) -> bool:
        measured = any(c.group != "ceiling" for c in self.cases)
        return not (measured or self.gains or self.memory or self.startup)


def plan(patterns: list[str]) -> Plan:
    return Plan(
        [c for c in cases.all_cases() if c.group == "ceiling" or selected(c.name, patterns)],
        [c for c in threads.all_cases() if selected(c.name, patterns)],
        selected(memory.NAME, patterns),
        selected(startup.NAME, patterns),
    )


def run_cases(todo: Plan, settings: harness.Settings, numpy_path: bool, results: dict) -> None:
    """The interleaved cases, then the thread gains; each printed as it ends."""
    for i, case in enumerate(todo.cases, 1):
        print(f"[{i}/{len(todo.cases)}] {case.name}: {case.title}", end=" ... ", flush=True)
        record = harness.measure(case, settings, numpy_path and case.group != "ceiling")
        results["cases"].append(record)
        numpy = f", NumPy path {1e3 * record['numpy_s']:.2f} ms" if "numpy_s" in record else ""
        print(
            f"kernelab {1e3 * record['kernelab_s']:.2f} ms, PyTorch {1e3 * record['torch_s']:.2f}"
            f" ms, time ratio {record['time_ratio']:.2f}x{numpy}",
            flush=True,
        )
    for case in todo.gains:
        print(f"{case.name}: {case.title}, 1 and 2 threads", end=" ... ", flush=True)
        record = threads.measure(case, settings)
        results["threads_gain"].append(record)
        gain = {e: record["engines"][e]["gain"] for e in harness.ENGINES}
        print(f"gain kernelab {gain['kernelab']:.2f}x, PyTorch {gain['torch']:.2f}x", flush=True)


def run_children(todo: Plan, args, kernels: str, results: dict) -> None:
    """Peak memory and start-up, each in child processes."""
    if todo.memory:
        print(f"{memory.NAME}: one child process per engine ...", end=" ", flush=True)
        batches = MEMORY_BATCHES[results["mode"]]
        results["memory"] = memory.compare(batches, 64, args.threads, kernels)
        print(f"training memory ratio {results['memory']['increment_ratio']:.2f}x", flush=True)
    if todo.startup:
        print(f"{startup.NAME}: cold and warm child processes ...", end=" ", flush=True)
        cold, warm = STARTUP_RUNS[results["mode"]]
        record = startup.compare(args.threads, kernels, cold, warm, args.mnist)
        results["startup"] = record
        print(f"cold {record['cold_s']:.2f} s, warm {record['warm_s']:.2f} s", flush=True)


def new_results(args, mode: str, patterns: list[str], kernels: str) -> dict:
    """The record of a run before anything is measured."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "only": patterns,
        "threads": args.threads,
        "kernels": {
            "asked": kernels,
            "running": kl.backends.kernels.current(),
            "numpy_path": args.kernels == "both",
        },
        "settings": vars(harness.QUICK if args.quick else harness.FULL),
        "machine": harness.machine(),
        "source": harness.source_state(HERE.parent),
        "optimizer": optimizer_name(),
        "cases": [],
        "threads_gain": [],
        "memory": None,
        "startup": None,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    patterns = [p.strip() for p in args.only.split(",") if p.strip()]
    if args.list:
        everything = plan([])
        names = [c.name for c in everything.cases + everything.gains]
        print("\n".join(names + [memory.NAME, startup.NAME]))
        return 0
    todo = plan(patterns)
    if todo.empty():
        print(f"--only {args.only!r} matches no case (see --list)", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    out, markdown_path = output_paths(args, args.quick or bool(patterns))
    warnings.filterwarnings("ignore", message=".*padding='same'.*")  # PyTorch, even kernels
    kernels = "numba" if args.kernels == "both" else args.kernels
    kl.backends.kernels.use(kernels)
    limiter = harness.set_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()
    results = new_results(args, mode, patterns, kernels)
    settings = harness.QUICK if args.quick else harness.FULL
    run_cases(todo, settings, args.kernels == "both", results)
    harness.set_threads(args.threads)
    limiter.restore_original_limits()
    run_children(todo, args, kernels, results)
    results["loadavg"] = {"start": load_start, "end": os.getloadavg()}
    results["duration_s"] = time.perf_counter() - start
    results["ceiling"] = report.ceiling(results)
    report.write_json(results, out)
    text = report.markdown(results)
    markdown_path.write_text(text)
    print("\n" + text)
    print(f"wrote {out} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
