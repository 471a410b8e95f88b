"""Run the benchmark suite: ``python bench/run.py [--quick] [--only NAME] [--threads N]``.

Measures kernelab and PyTorch CPU in the same process (interleaved rounds, see ``harness.py``)
and writes ``bench/results.json`` and ``bench/RESULTS.md``. Runs with ``--quick`` or ``--only``
write ``results-partial.json`` and ``RESULTS-partial.md`` instead, so they never replace the
full report. ``--only`` takes comma-separated names or globs: ``conv``, ``conv/k3``,
``classic/train_*``, ``memory``.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import os
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cases, harness, memory, models, report  # noqa: E402

HERE = Path(__file__).resolve().parent
MEMORY_BATCHES = {"quick": 10, "full": 100}


def selected(name: str, patterns: list[str]) -> bool:
    return not patterns or any(
        name == p or name.startswith(p + "/") or fnmatch.fnmatch(name, p) for p in patterns
    )


def optimizer_name() -> str:
    sgd = models.kernelab_sgd_class()
    ours = "kernelab.optim.SGD" if sgd is not models.ManualSGD else "the bench's ManualSGD"
    return f"{ours} vs torch.optim.SGD (lr {models.LR}, momentum {models.MOMENTUM})"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~2 min)")
    parser.add_argument("--only", default="", help="comma-separated case names or globs")
    parser.add_argument("--threads", type=int, default=harness.default_threads())
    parser.add_argument("--out", type=Path, help="JSON path (Markdown goes next to it)")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    patterns = [p.strip() for p in args.only.split(",") if p.strip()]
    everything = cases.all_cases()
    if args.list:
        print("\n".join([c.name for c in everything] + ["memory/train_epoch"]))
        return 0
    chosen = [c for c in everything if c.group == "ceiling" or selected(c.name, patterns)]
    run_memory = selected("memory/train_epoch", patterns)
    if len(chosen) == sum(c.group == "ceiling" for c in chosen) and not run_memory:
        print(f"--only {args.only!r} matches no case (see --list)", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    settings = harness.QUICK if args.quick else harness.FULL
    partial = args.quick or bool(patterns)
    out = args.out or HERE / ("results-partial.json" if partial else "results.json")
    markdown_path = out.with_name("RESULTS-partial.md" if partial else "RESULTS.md")
    if args.out:
        markdown_path = out.with_suffix(".md")

    warnings.filterwarnings("ignore", message=".*padding='same'.*")  # PyTorch, even kernels
    limiter = harness.set_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode,
        "only": patterns,
        "threads": args.threads,
        "settings": vars(settings),
        "machine": harness.machine(),
        "source": harness.source_state(HERE.parent),
        "optimizer": optimizer_name(),
        "cases": [],
        "memory": None,
    }
    for i, case in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {case.name}: {case.title}", end=" ... ", flush=True)
        record = harness.measure(case, settings)
        results["cases"].append(record)
        print(
            f"kernelab {1e3 * record['kernelab_s']:.2f} ms, PyTorch {1e3 * record['torch_s']:.2f}"
            f" ms, time ratio {record['time_ratio']:.2f}x",
            flush=True,
        )
    limiter.restore_original_limits()
    if run_memory:
        print("memory/train_epoch: one child process per engine ...", end=" ", flush=True)
        results["memory"] = memory.compare(MEMORY_BATCHES[mode], 64, args.threads)
        print(f"training memory ratio {results['memory']['increment_ratio']:.2f}x", flush=True)
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
