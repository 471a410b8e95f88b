"""Mutation testing: does each small change to the code make its nearest tests fail?

    python bench/mutation.py [--only PATTERN] [--sample N] [--seed S] [--jobs 1]
    python bench/mutation.py --ids ID [ID ...]      # re-run chosen mutants
    python bench/mutation.py --report               # bench/MUTATION.md from the JSON

Mutants come from :mod:`bench.mutants` (its docstring lists the operators, and what is not
mutated and why).

Each mutant is written into a private copy of ``src`` and ``tests`` (never the working
files), runs the tests that mirror its module with ``PYTHONPATH=<copy>/src`` under
``nice -n 19`` on one thread, stops at the first failure (``-x``), and is restored. A test
failure, an import error, a crash or a timeout (3x the clean run of those tests) kills it. Python's
bytecode cache is keyed by the source's mtime and size, so each mutant gets its own mtime.
numba caches compiled kernels on disk keyed by their file's stamp, and a mutant in a
``*_compiled.py`` file must compile afresh: such a mutant runs with its own
``NUMBA_CACHE_DIR``, seeded from the clean run's cache without that file's entries (no kernel
calls a kernel of another file); its timeout comes from a clean run with that same cold
cache. ``KERNELAB_KERNELS=numpy`` would not do: the tests under ``tests/functional`` and
``tests/optim`` switch to each kernel path themselves.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mutants import mutants, mutated_source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "mutation.json"
REPORT = ROOT / "bench" / "MUTATION.md"
SCOPE = ("functional/*.py", "optim/*.py", "apps/train.py", "core/serialization.py")
PYTHON = sys.executable
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
MIN_TIMEOUT_S = 20.0  # a clean run of a few seconds still gets time to import and compile
SCHEDULERS = {"lr_scheduler", "one_cycle", "plateau", "scheduler"}
# ---- which tests


def tests_for(rel: str) -> list[str]:
    """The test files that mirror a source file, as paths relative to the repository."""
    module = Path(rel).stem
    if rel.endswith("apps/train.py"):
        return ["tests/test_train.py", "tests/test_cli.py"]
    if rel.endswith("core/serialization.py"):
        return ["tests/test_io.py"]
    if "/optim/" in rel:
        if module in SCHEDULERS:
            return ["tests/optim/test_lr_scheduler.py"]
        names = ["test_updates_compiled.py"] if module == "updates_compiled" else []
        return [f"tests/optim/{n}" for n in names + ["test_updates.py", "test_optimizer.py"]]
    if module in ("arithmetic", "comparison", "reduction"):  # dtypes and graphs tested apart
        own = [f"tests/functional/test_{module}.py"] if module != "arithmetic" else []
        shared = ["functional/test_arithmetic.py", "functional/test_promotion.py"]
        shared = [f"tests/{n}" for n in shared + ["test_tensor_grad.py"]]
        return [t for t in own if (ROOT / t).exists()] + shared
    base = module.removesuffix("_compiled")
    base = {"conv_algorithms": "conv", "depthwise": "conv", "__init__": "shape"}.get(base, base)
    names = [f"test_{module}.py", f"test_{base}.py"]
    found = [f"tests/functional/{n}" for n in dict.fromkeys(names)]
    return [t for t in found if (ROOT / t).exists()]


# ---- running


class Sandbox:
    """A private copy of src and tests where one mutant at a time is written and restored."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="kernelab-mutation-"))
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        for name in ("src", "tests"):
            shutil.copytree(ROOT / name, self.root / name, ignore=skip)
        shutil.copy2(ROOT / "pyproject.toml", self.root / "pyproject.toml")
        self.cache = self.root / "numba-cache"  # the clean run's kernels, shared
        self.stamp = 0

    def run(self, tests: list[str], timeout: float, cache: Path) -> tuple[str, float]:
        env = dict(os.environ, PYTHONPATH=str(self.root / "src"), NUMBA_CACHE_DIR=str(cache))
        env.update(THREADS)
        env.pop("KERNELAB_KERNELS", None)
        command = ["nice", "-n", "19", PYTHON, "-m", "pytest", "-q", "-x", "-p",
                   "no:cacheprovider", *tests]  # fmt: skip
        start = time.perf_counter()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        process = subprocess.Popen(command, cwd=self.root, env=env, start_new_session=True, **quiet)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "timeout", time.perf_counter() - start
        # a signal (numba reading out of bounds) kills a mutant as a failed test does
        status = "survived" if code == 0 else "killed" if code in (1, 2, 3) or code < 0 else "error"
        return status, time.perf_counter() - start

    def cache_for(self, rel: str) -> Path:
        """The shared kernel cache, or for a compiled twin a copy without that file's kernels."""
        if not rel.endswith("_compiled.py"):
            return self.cache
        cache = Path(tempfile.mkdtemp(prefix="numba-", dir=self.root))
        shutil.rmtree(cache)
        prefix = Path(rel).stem + "."
        shutil.copytree(self.cache, cache, ignore=lambda d, names: [
            n for n in names if n.startswith(prefix)])  # fmt: skip
        return cache

    def mutate(self, record: dict, timeout: float) -> dict:
        rel, k = record["file"], int(record["id"].rsplit(":", 1)[1])
        target = self.root / rel
        target.write_text(mutated_source(ROOT / rel, k))
        self.stamp += 1
        original = (ROOT / rel).stat().st_mtime_ns
        os.utime(target, ns=(original + self.stamp * 10**9,) * 2)  # a fresh bytecode key
        cache = self.cache_for(rel)
        try:
            status, seconds = self.run(tests_for(rel), timeout, cache)
        finally:
            shutil.copy2(ROOT / rel, target)
            if cache != self.cache:
                shutil.rmtree(cache, ignore_errors=True)
        return dict(record, status=status, seconds=round(seconds, 2))

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


def clean_key(rel: str) -> tuple:
    """Mutants with the same key have the same clean run: the tests, and a cold twin."""
    return tuple(tests_for(rel)), rel if rel.endswith("_compiled.py") else ""


def baselines(sandbox: Sandbox, keys: set[tuple]) -> dict:
    """Clean run time per key, warm (filling the kernel cache) and cold for a compiled twin.

    A twin's mutants compile its kernels afresh, so their timeout comes from a clean run that
    does too.
    """
    times = {}
    for tests, cold in sorted(keys):
        if (tests, "") not in times:
            times[tests, ""] = _clean(sandbox, tests, sandbox.cache, "warm")
        if cold:
            cache = sandbox.cache_for(cold)
            times[tests, cold] = _clean(sandbox, tests, cache, f"cold {Path(cold).name}")
            shutil.rmtree(cache, ignore_errors=True)
    return times


def _clean(sandbox: Sandbox, tests: tuple, cache: Path, label: str) -> float:
    status, seconds = sandbox.run(list(tests), 1800, cache)
    if status != "survived":
        sys.exit(f"mutation: the clean run of {' '.join(tests)} fails ({status})")
    print(f"clean  {seconds:6.1f}s  {' '.join(tests)} ({label})", flush=True)
    return seconds


def _emphasis(rel: str) -> float:
    if rel.endswith("_compiled.py"):
        return 0.5
    return 1.0 if "/functional/" in rel else 2.5


def sample(records: list[dict], n: int, seed: int) -> list[dict]:
    """A seeded sample of n mutants, shared among files by the square root of their count.

    The square root gives small modules a larger fraction than large ones; training, the
    checkpoint code and the optimisers count 2.5 times (fewer mutants, faster tests), compiled
    twins half (each of their mutants compiles its kernels afresh).
    """
    by_file = defaultdict(list)
    for r in records:
        by_file[r["file"]].append(r)
    weight = {f: math.sqrt(len(rs)) * _emphasis(f) for f, rs in by_file.items()}
    total = sum(weight.values())
    rng, chosen = random.Random(seed), []
    for f in sorted(by_file):
        quota = min(len(by_file[f]), max(1, round(n * weight[f] / total)))
        chosen += rng.sample(by_file[f], quota)
    return sorted(chosen, key=lambda r: (r["file"], int(r["id"].rsplit(":", 1)[1])))


def run_all(records: list[dict], jobs: int, previous: dict) -> dict:
    """Run each mutant in a sandbox of its own worker; results are saved as they come."""
    sandboxes = [Sandbox() for _ in range(jobs)]
    try:
        clean = baselines(sandboxes[0], {clean_key(r["file"]) for r in records})
        for other in sandboxes[1:]:
            shutil.copytree(sandboxes[0].cache, other.cache)
        results = dict(previous)
        free = list(sandboxes)

        def one(record: dict) -> dict:
            box = free.pop()
            try:
                timeout = max(MIN_TIMEOUT_S, 3 * clean[clean_key(record["file"])])
                return box.mutate(record, timeout)
            finally:
                free.append(box)

        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for i, result in enumerate(pool.map(one, records), 1):
                r = result
                earlier = results.get(r["id"])
                if earlier is not None and earlier["status"] != r["status"]:
                    r["first"] = earlier.get("first", earlier["status"])  # before new tests
                results[r["id"]] = r
                print(f"{i:4d}/{len(records)} {r['status']:8s} {r['seconds']:6.1f}s {r['id']} "
                      f"line {r['line']}: {r['change']}", flush=True)  # fmt: skip
                save(results)
        return results
    finally:
        for box in sandboxes:
            box.close()


def save(results: dict) -> None:
    ordered = sorted(results.values(), key=lambda r: (r["file"], int(r["id"].rsplit(":", 1)[1])))
    OUT.write_text(json.dumps({"mutants": ordered}, indent=1) + "\n")


# ---- reporting


def report(results: dict, generated: dict[str, int], notes: dict[str, str]) -> str:
    """The Markdown summary: a score per module and every survivor."""
    rows = defaultdict(lambda: defaultdict(int))
    for r in results.values():
        rows[r["file"]][r["status"]] += 1
    lines = ["# Mutation testing", "",
             "Made by `bench/mutation.py`; `bench/mutants.py` lists the operators, and what is not",
             "mutated and why (strings, annotations, raise and assert, except bodies, an `if` body",
             "that only raises, warnings). Each mutant runs the test files that mirror its module;",
             "a failure, crash or timeout (3x the clean run) kills it. Score = (killed + timed",
             "out) / run, equivalent mutants counted as survivors. A seeded sample was run,",
             "weighted towards training, checkpoints and optimisers:", "",
             "    python bench/mutation.py --sample 220 --seed 0",
             "    python bench/mutation.py --sample 100 --seed 1 --only apps/train \\",
             "        --only core/serialization --only optim/",
             "    python bench/mutation.py --sample 50 --seed 2 --only apps/train \\",
             "        --only core/serialization --only optim/",
             "    python bench/mutation.py --ids ID ...   # survivors again, after new tests", "",
             "| module | generated | run | killed | timeout | survived | score |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    totals = defaultdict(int)
    for f in sorted(set(generated) | set(rows)):
        c = rows[f]
        run = sum(c.values())
        counts = dict(generated=generated.get(f, 0), run=run, killed=c["killed"],
                      timeout=c["timeout"], survived=c["survived"])  # fmt: skip
        for key, value in counts.items():
            totals[key] += value
        lines.append(_row(f.removeprefix("src/kernelab/"), counts))
    lines.append(_row("**all**", totals))
    fixed = sum(
        r.get("first") == "survived" and r["status"] != "survived" for r in results.values()
    )
    before = totals["killed"] + totals["timeout"] - fixed
    equivalent = sum(notes.get(r["id"], "").startswith("equivalent") for r in results.values()
                     if r["status"] == "survived")  # fmt: skip
    caught = totals["killed"] + totals["timeout"]
    lines += ["", f"Survivors judged equivalent (reasons below): {equivalent} of "
              f"{totals['survived']}; non-equivalent mutants killed: {caught} of "
              f"{caught + totals['survived'] - equivalent}."]  # fmt: skip
    share = before / max(totals["run"], 1)
    lines += ["", f"Before the tests added with this report: {before} of {totals['run']} killed "
              f"({share:.0%}); the last list below is what they kill."]  # fmt: skip
    lines += ["", "## Survivors", ""]
    for r in sorted(results.values(), key=lambda r: (r["file"], r["line"])):
        if r["status"] not in ("killed", "timeout"):
            note = notes.get(r["id"], "not yet judged")
            lines.append(f"- `{r['id']}` line {r['line']}, {r['change']} ({r['status']}): {note}")
    lines += ["", "## Survivors of a first run that tests added since kill", ""]
    for r in sorted(results.values(), key=lambda r: (r["file"], r["line"])):
        if r.get("first") == "survived" and r["status"] in ("killed", "timeout"):
            lines.append(f"- `{r['id']}` line {r['line']}, {r['change']}")
    return "\n".join(lines) + "\n"


def _row(name: str, c: dict) -> str:
    score = (c["killed"] + c["timeout"]) / c["run"] if c["run"] else float("nan")
    return (f"| {name} | {c['generated']} | {c['run']} | {c['killed']} | {c['timeout']} | "
            f"{c['survived']} | {score:.0%} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", action="append", default=[], help="mutants whose id contains this (repeatable)"
    )
    parser.add_argument("--sample", type=int, default=0, help="a seeded sample of N mutants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ids", nargs="*", default=[], help="re-run exactly these mutants")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--report", action="store_true", help="only write bench/MUTATION.md")
    notes = ROOT / "bench" / "mutation_notes.json"
    parser.add_argument("--notes", type=Path, default=notes, help="id -> verdict on a survivor")
    args = parser.parse_args(argv)
    files = sorted(p for pattern in SCOPE for p in (ROOT / "src" / "kernelab").glob(pattern))
    records = [m for p in files for m in mutants(p, ROOT)]
    generated = defaultdict(int)
    for r in records:
        generated[r["file"]] += 1
    previous = {r["id"]: r for r in json.loads(OUT.read_text())["mutants"]} if OUT.exists() else {}
    if not args.report:
        chosen = [r for r in records if any(p in r["id"] for p in args.only or [""])]
        if args.ids:
            chosen = [r for r in records if r["id"] in set(args.ids)]
        elif args.sample:  # from the mutants not run yet, so a second sample adds to the first
            chosen = sample([r for r in chosen if r["id"] not in previous], args.sample, args.seed)
        if args.list:
            for r in chosen:
                print(f"{r['id']} line {r['line']} {r['operator']}: {r['change']}")
            return
        previous = run_all(chosen, args.jobs, previous)
    notes = json.loads(args.notes.read_text()) if args.notes.exists() else {}
    REPORT.write_text(report(previous, dict(generated), notes))


if __name__ == "__main__":
    main()
