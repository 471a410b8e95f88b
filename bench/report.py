"""Results: the JSON record of a run and its Markdown tables."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cases import SCALING_BATCHES, SCALING_SIZE_BATCH, SCALING_SIZES  # noqa: E402

HERE = Path(__file__).resolve().parent


def fmt(x: float | None, digits: int = 3) -> str:
    """Three significant digits, no exponent for the sizes we print."""
    if x is None:
        return "–"
    if x == 0 or abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}".rstrip("0")


def ceiling(results: dict) -> dict:
    """Median GFLOP/s of NumPy's and PyTorch's 1024² matmul over every ceiling round."""
    rates: dict[str, list[float]] = {"kernelab": [], "torch": []}
    for record in results["cases"]:
        if record["name"].startswith("ceiling/"):
            for engine, rate in rates.items():
                rate += [record["flops"] / t / 1e9 for t in record["rounds"][engine]]
    return {
        "numpy_gflops": statistics.median(rates["kernelab"]) if rates["kernelab"] else None,
        "torch_gflops": statistics.median(rates["torch"]) if rates["torch"] else None,
    }


def write_json(results: dict, path: Path) -> None:
    """Write atomically (``path.tmp``, then rename), so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _ratio(record: dict, speed: bool = False) -> str:
    if speed:
        return f"**{record['speed_ratio']:.2f}x**"
    low, high = record["time_ratio_quartiles"]
    return f"**{record['time_ratio']:.2f}x** ({low:.2f}–{high:.2f})"


def _gflops(record: dict, engine: str, peak: float | None) -> str:
    rate = record.get(f"{engine}_gflops")
    if rate is None:
        return "–"
    share = f" ({100 * rate / peak:.0f}%)" if peak else ""
    return fmt(rate) + share


def _verdict(record: dict) -> str:
    if "target" not in record:
        return ""
    mark = "met" if record["target_met"] else "**not met**"
    bound = record["target"]["bound"]
    return f"{'≥' if record['target']['metric'] == 'speed' else '≤'} {bound:g}x: {mark}"


def header(results: dict) -> list[str]:
    m = results["machine"]
    load = results["loadavg"]
    blas = ", ".join(m["numpy_blas"]) or "unknown BLAS"
    source = results.get("source") or {}
    code = f"kernelab at commit {source.get('commit') or '?'}"
    if source.get("uncommitted_src"):
        code += f" with uncommitted changes to {', '.join(source['uncommitted_src'])}"
    return [
        "# kernelab vs PyTorch CPU",
        "",
        f"**kernelab kernels: {_kernels(results)}.**",
        "",
        f"Measured {results['date']} on {m['cpu']} ({m['usable_cores']} usable cores), "
        f"{m['system']}; {results['threads']} threads for both engines. Python {m['python']}, "
        f"NumPy {m['numpy']} ({blas}), PyTorch {m['torch']}. Mode: {results['mode']} "
        f"({results['settings']['rounds']} rounds per case), {results['duration_s'] / 60:.1f} min. "
        f"Load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end "
        f"(other processes share this machine). Measured: {code}.",
        "",
        "Both engines run in the same process with identical weights and batches; rounds "
        "alternate kernelab and PyTorch. Times are medians per call; a ratio is the median of "
        "the per-round ratios (interquartile range in brackets). *time* ratio = kernelab "
        "seconds / PyTorch seconds (lower is better); *speed* ratio = kernelab images/s / "
        f"PyTorch images/s (higher is better). Optimizer: {results['optimizer']}.",
        "",
    ] + _load_warning(results)


def _kernels(results: dict) -> str:
    """Which kernels kernelab ran: the compiled ones or the NumPy reference."""
    kernels = results.get("kernels")
    if not kernels:
        return "not recorded (before the compiled kernels)"
    running = {"numba": "compiled (numba)", "numpy": "NumPy reference"}[kernels["running"]]
    if kernels["asked"] != kernels["running"]:
        running += f" (asked for {kernels['asked']}: numba could not be imported)"
    if kernels.get("numpy_path"):
        running += "; the NumPy reference kernels ran as a third engine in the same rounds"
    return running


def _load_warning(results: dict) -> list[str]:
    """A busy machine hurts multi-threaded runs most (OpenBLAS's spinning threads above all)."""
    records = results["cases"] + (results.get("threads_gain") or [])
    loads = [r["loadavg_1min"] for r in records] + [results["loadavg"]["end"][0]]
    cores = results["machine"]["usable_cores"]
    if max(loads) < cores + 1:
        return []
    return [
        f"**Caution**: the load average reached {max(loads):.1f} on {cores} cores during the "
        "run. With every core taken, two-thread rounds of both engines slow down, kernelab's "
        "OpenBLAS products most; compare with a run on a quiet machine or with `--threads 1`.",
        "",
    ]


def targets(results: dict, by_name: dict) -> list[str]:
    """One row per target: each network case that has one, the worst of each layer family,
    the second core's gain, start-up and memory."""
    rows = []
    labels = dict(README_CASES)
    for r in results["cases"]:
        if "target" in r and r["name"].split("/")[0] in ("classic", "nets"):
            label = f"{labels.get(r['name'], r['name'])}: images/s {_bound(r['target'])} PyTorch"
            rows.append([label, f"{r['speed_ratio']:.2f}x", _met(r["target_met"])])
    for label, records in _families(results["cases"]):
        worst = max(records, key=lambda r: r["time_ratio"])
        failing = sum(not r["target_met"] for r in records)
        measured = (
            f"worst {worst['time_ratio']:.2f}x ({worst['name']}); {failing}/{len(records)} over"
        )
        rows.append(
            [f"{label}: time {_bound(worst['target'])} PyTorch", measured, _met(not failing)]
        )
    for r in results.get("threads_gain") or []:
        gain = r["engines"]["kernelab"]["gain"]
        label = f"{r['name']}: kernelab's 2-thread gain {_bound(r['target'])}"
        measured = f"{gain:.2f}x (PyTorch {r['engines']['torch']['gain']:.2f}x)"
        rows.append([label, measured, _met(r["target_met"])])
    rows += _startup_targets(results.get("startup"))
    memory = results.get("memory")
    if memory:
        kl, pt = memory["engines"]["kernelab"], memory["engines"]["torch"]
        measured = (
            f"{fmt(kl['increment_mb'])} MB vs {fmt(pt['increment_mb'])} MB above baseline "
            f"({memory['increment_ratio']:.2f}x)"
        )
        rows.append(["peak training memory ≤ PyTorch's", measured, _met(memory["target_met"])])
    return ["## Targets", ""] + _table(["target", "measured", "met"], rows) if rows else []


def _families(records: list[dict]) -> list[tuple[str, list[dict]]]:
    """(label, records) of the single-layer cases with targets: convolutions, depthwise ones,
    and pooling / ReLU / batch norm."""
    conv = [r for r in records if r["name"].startswith("conv/") and "target" in r]
    ops = [r for r in records if r["name"].startswith("ops/") and "target" in r]
    families = [
        ("every Conv2d forward+backward", [r for r in conv if "depthwise" not in r["name"]]),
        ("depthwise Conv2d forward+backward", [r for r in conv if "depthwise" in r["name"]]),
        ("pooling, ReLU and batch norm, forward+backward", ops),
    ]
    return [(label, chosen) for label, chosen in families if chosen]


def _startup_targets(record: dict | None) -> list[list[str]]:
    if not record:
        return []
    rows = []
    for key, label in (("warm_s", "warm"), ("cold_s", "cold (empty numba cache)")):
        if record.get(key) is not None:
            bound = record["targets"][key]
            rows.append(
                [
                    f"`kernelab train` to the end of its first step, {label}: < {bound:g} s",
                    f"{record[key]:.2f} s",
                    _met(record["target_met"][key]),
                ]
            )
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _bound(target: dict) -> str:
    return f"{'≥' if target['metric'] == 'speed' else '≤'} {target['bound']:g}x"


def classic(records: list[dict], peak, title: str) -> list[str]:
    rows = [
        [
            r["title"],
            fmt(r["kernelab_images_per_s"]),
            fmt(r["torch_images_per_s"]),
            _ratio(r, speed=True),
            _gflops(r, "kernelab", peak),
            _gflops(r, "torch", peak),
            _verdict(r),
        ]
        + _numpy_cells(r, per_image=True)
        for r in records
    ]
    head = ["workload", "kernelab img/s", "PyTorch img/s", "speed ratio"]
    head += ["kernelab GFLOP/s (% ceiling)", "PyTorch GFLOP/s (% ceiling)", "target"]
    if any("numpy_s" in r for r in records):
        head += ["NumPy path img/s", "compiled / NumPy time"]
    return [title, ""] + _table(head, rows)


def _numpy_cells(record: dict, per_image: bool) -> list[str]:
    """The NumPy path's columns, when the run timed it (``--kernels both``)."""
    if "numpy_s" not in record:
        return []
    value = record["numpy_images_per_s"] if per_image else 1e3 * record["numpy_s"]
    return [fmt(value), f"{record['compiled_vs_numpy']:.2f}x"]


def layers(title: str, records: list[dict], peak, with_flops: bool) -> list[str]:
    head = ["workload", "kernelab ms", "PyTorch ms", "time ratio"]
    if with_flops:
        head += ["kernelab GFLOP/s (% ceiling)", "PyTorch GFLOP/s (% ceiling)"]
    rows = []
    for r in records:
        row = [r["title"], fmt(1e3 * r["kernelab_s"]), fmt(1e3 * r["torch_s"]), _ratio(r)]
        if with_flops:
            row += [_gflops(r, "kernelab", peak), _gflops(r, "torch", peak)]
        rows.append(row + [_verdict(r)] + _numpy_cells(r, per_image=False))
    head.append("target")
    if any("numpy_s" in r for r in records):
        head += ["NumPy path ms", "compiled / NumPy time"]
    return [title, ""] + _table(head, rows)


def thread_gain(records: list[dict]) -> list[str]:
    """Each engine at 1 and 2 threads, and its gain (1-thread time / 2-thread time)."""
    rows = []
    for r in records:
        kl, pt = r["engines"]["kernelab"], r["engines"]["torch"]
        row = [r["title"]]
        for engine in (kl, pt):
            row += [fmt(1e3 * engine["seconds"]["1"]), fmt(1e3 * engine["seconds"]["2"])]
            row.append(f"**{engine['gain']:.2f}x**")
        row += [f"{r['time_ratio']['1']:.2f}x / {r['time_ratio']['2']:.2f}x", _verdict(r)]
        rows.append(row)
    head = ["step", "kernelab 1 thread ms", "kernelab 2 threads ms", "kernelab gain"]
    head += ["PyTorch 1 thread ms", "PyTorch 2 threads ms", "PyTorch gain"]
    head += ["time ratio 1 / 2 threads", "target (kernelab gain)"]
    return [
        "## The second core: the same step at 1 and 2 threads",
        "",
        *_table(head, rows),
        "Gain = median over rounds of the 1-thread time / the 2-thread time (2x would be "
        "perfect); each round runs both engines at both thread counts.",
        "",
    ]


def startup_table(record: dict) -> list[str]:
    """Seconds from launch to the end of the first training step, and where they went."""
    rows = []
    for label, key in (
        ("kernelab, cold (empty numba cache)", "cold"),
        ("kernelab, warm", "warm"),
        ("PyTorch (same network, Adam, batch)", "torch"),
    ):
        done = record["runs"][key]
        if done:
            rows.append(
                [label]
                + [_seconds(_median_of(done, k)) for k in STARTUP_COLUMNS.values()]
                + [str(len(done))]
            )
    return [
        f"## Start-up: {record['title']}",
        "",
        *_table(["", *STARTUP_COLUMNS, "runs (medians)"], rows),
        f"A fresh process each run, {record['threads']} threads, kernels: {record['kernels']}; "
        f"data: {record['data']}. Import = `import kernelab` (or torch) alone; the first step "
        "starts after the command line has loaded the data and built the model. Cold runs point "
        "NUMBA_CACHE_DIR at a new empty folder (the package's own `__pycache__` cache is then "
        "not read); warm runs reuse the folder the last cold run filled"
        + _settled(record)
        + ". PyTorch's child imports torch, reads the same files and runs one step."
        + _compiled_count(record["runs"]["cold"]),
        "",
    ]


def _settled(record: dict) -> str:
    """How long the warm runs waited for the cold run's background compilations, when the
    record says (older records do not)."""
    if record.get("settled_s") is None:
        return ""
    return (
        f", once the processes the cold run left compiling had finished "
        f"({_seconds(record['settled_s'])} s after it)"
    )


STARTUP_COLUMNS = {
    "import, s": "import_s",
    "launch → first step starts, s": "to_step_start_s",
    "first step, s": "step_s",
    "launch → end of first step, s": "to_first_step_s",
}


def _median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def _compiled_count(cold_runs: list[dict]) -> str:
    counts = [r["cached_kernels"] for r in cold_runs if "cached_kernels" in r]
    if not counts:
        return ""
    return f" A cold run left {max(counts)} compiled functions in numba's cache."


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def memory_table(memory: dict) -> list[str]:
    rows = []
    for engine, label in (("kernelab", "kernelab"), ("torch", "PyTorch")):
        e = memory["engines"][engine]
        rows.append(
            [label, fmt(e["baseline_mb"]), fmt(e["peak_mb"]), f"**{fmt(e['increment_mb'])}**"]
        )
    return [
        f"## Peak resident memory, {memory['title']} (one fresh process per engine)",
        "",
        *_table(["engine", "after imports and setup, MB", "peak, MB", "training, MB"], rows),
        "Peak = VmHWM of the child; *training* = peak minus the resident memory before the "
        "first step (model, data and the engine's imports are in the baseline)."
        + _memory_warmup(memory["engines"]),
        "",
    ]


def _memory_warmup(engines: dict) -> str:
    """What the warm-up step did, when the record says (older records do not)."""
    kl = engines["kernelab"]
    if "warmup" not in kl:
        return ""
    reset = "reset after it" if kl["peak_reset"] else "NOT reset (no /proc/self/clear_refs)"
    return (
        f" Each child first ran one step of a throwaway network on 2 images (kernelab's "
        f"{kl['kernels']} kernels compiled or loaded there, peaking at "
        f"{fmt(kl['warmup']['hwm_mb'])} MB; PyTorch's at "
        f"{fmt(engines['torch']['warmup']['hwm_mb'])} MB); the peak was {reset}."
    )


def scaling(by_name: dict) -> list[str]:
    def cells(name: str) -> list[str]:
        r = by_name.get(name)
        if r is None:
            return ["–", "–", "–"]
        n = r["images"]
        return [fmt(1e3 * r["kernelab_s"] / n), fmt(1e3 * r["torch_s"] / n), _ratio(r)]

    head = ["", "inference kernelab", "inference PyTorch", "time ratio"]
    head += ["training kernelab", "training PyTorch", "time ratio"]
    batch_rows = []
    for b in SCALING_BATCHES:
        pair = [f"classic/{m}_b{b}" for m in ("infer", "train")]
        pair = [p if p in by_name else p.replace("classic/", "scaling/") for p in pair]
        if any(p in by_name for p in pair):
            batch_rows.append([f"batch {b}"] + cells(pair[0]) + cells(pair[1]))
    size_rows = []
    for s in SCALING_SIZES:
        pair = [f"scaling/{m}_b{SCALING_SIZE_BATCH}_{s}px" for m in ("infer", "train")]
        if any(p in by_name for p in pair):
            size_rows.append([f"{s}x{s}"] + cells(pair[0]) + cells(pair[1]))
    lines = []
    if batch_rows:
        lines += ["## Scaling: ms per image against batch size (classic network, 28x28)", ""]
        lines += _table(head, batch_rows)
    if size_rows:
        lines += [
            f"## Scaling: ms per image against input size (classic network, batch "
            f"{SCALING_SIZE_BATCH}, dense layer sized to the input)",
            "",
        ]
        lines += _table(head, size_rows)
    return lines


NET_TITLE = (
    "## Tutorial CNN, ResNet-8, MobileNet-like and a CNN with a wide dense layer "
    "(cross-entropy; optimiser in the row)"
)
CLASSIC_TITLE = "## Classic network (MNIST CNN, SGD momentum, cross-entropy)"
CONV_TITLE = "## One Conv2d layer, forward + backward (N=64, 28x28, input gradient included)"
OPS_TITLE = "## Pooling, activation, batch norm, dense layer and loss alone, forward + backward"


def markdown(results: dict) -> str:
    by_name = {r["name"]: r for r in results["cases"]}
    peak = results["ceiling"]["numpy_gflops"]
    group = {
        g: [r for r in results["cases"] if r["name"].split("/")[0] == g]
        for g in ("classic", "nets", "conv", "ops")
    }
    lines = header(results) + targets(results, by_name)
    if peak:
        lines += [
            f"**Ceiling**: NumPy float32 matmul 1024x1024 runs at {fmt(peak)} GFLOP/s here "
            f"(torch.mm: {fmt(results['ceiling']['torch_gflops'])} GFLOP/s); the GFLOP/s "
            "columns count convolution and dense-layer products only.",
            "",
        ]
    if group["classic"]:
        lines += classic(group["classic"], peak, CLASSIC_TITLE)
    if group["nets"]:
        lines += classic(group["nets"], peak, NET_TITLE)
    if group["conv"]:
        lines += layers(CONV_TITLE, group["conv"], peak, with_flops=True)
    if group["ops"]:
        lines += layers(OPS_TITLE, group["ops"], peak, with_flops=False)
    if results.get("threads_gain"):
        lines += thread_gain(results["threads_gain"])
    if results.get("startup"):
        lines += startup_table(results["startup"])
    if results.get("memory"):
        lines += memory_table(results["memory"])
    lines += scaling(by_name)
    diffs = [r["max_rel_diff"] for r in results["cases"] if r.get("max_rel_diff") is not None]
    if diffs:
        lines += [
            f"Outputs agree before timing: largest relative difference kernelab vs PyTorch "
            f"{max(diffs):.1e} over {len(diffs)} cases.",
            "",
        ]
    return "\n".join(lines)


README_CASES = (
    ("classic/train_b64", "classic MNIST CNN, training, batch 64"),
    ("classic/train_b256", "classic MNIST CNN, training, batch 256"),
    ("classic/infer_b256", "classic MNIST CNN, inference, batch 256"),
    ("nets/tutorial_train_b100", "tutorial CNN (BatchNorm, Adam), training, batch 100"),
    ("nets/resnet8_train_b64", "ResNet-8 on 3x32x32, training, batch 64"),
    ("nets/resnet8_infer_b64", "ResNet-8 on 3x32x32, inference, batch 64"),
    ("nets/mobile_train_b64", "MobileNet-like on 3x32x32, training, batch 64"),
    ("nets/dense_head_train_b64", "CNN with a 4096→512 dense layer on 3x32x32, training, batch 64"),
)


def readme(results: dict) -> str:
    """A compact speed table for the README: networks in images/s, layer families as the
    worst time ratio, the second core, start-up and memory."""
    by_name = {r["name"]: r for r in results["cases"]}
    rows = []
    for name, label in README_CASES:
        if name in by_name:
            r = by_name[name]
            rows.append(
                [
                    label,
                    fmt(r["kernelab_images_per_s"]),
                    fmt(r["torch_images_per_s"]),
                    f"{r['speed_ratio']:.2f}x",
                    _bound(r["target"]) if "target" in r else "",
                ]
            )
    head = ["images/s", "kernelab", "PyTorch", "kernelab / PyTorch", "target"]
    lines = _table(head, rows) if rows else []
    lines += _readme_other(results)
    when = f"{results['date']}, {results['machine']['cpu']}, {results['threads']} threads"
    kernels = (results.get("kernels") or {}).get("running", "numba")
    lines.append(f"Measured {when}, {kernels} kernels; details in bench/RESULTS.md.")
    return "\n".join(lines) + "\n"


def _readme_other(results: dict) -> list[str]:
    rows = []
    for label, records in _families(results["cases"]):
        worst = max(records, key=lambda r: r["time_ratio"])
        middle = statistics.median(r["time_ratio"] for r in records)
        rows.append([label, f"median {middle:.2f}x, worst {worst['time_ratio']:.2f}x"])
    for r in results.get("threads_gain") or []:
        gains = {e: r["engines"][e]["gain"] for e in ("kernelab", "torch")}
        rows.append(
            [
                f"2nd core gain, {r['name'].split('/')[1]}",
                f"kernelab {gains['kernelab']:.2f}x, PyTorch {gains['torch']:.2f}x",
            ]
        )
    start = results.get("startup")
    if start:
        rows.append(
            [
                "`kernelab train` to its first step",
                f"{_seconds(start['warm_s'])} s warm, {_seconds(start['cold_s'])} s cold "
                f"(PyTorch {_seconds(start['torch_s'])} s); import {_seconds(start['import_s'])} s",
            ]
        )
    memory = results.get("memory")
    if memory:
        kl, pt = memory["engines"]["kernelab"], memory["engines"]["torch"]
        rows.append(
            [
                "peak training memory (classic, batch 64)",
                f"{fmt(kl['increment_mb'])} MB vs PyTorch {fmt(pt['increment_mb'])} MB",
            ]
        )
    return _table(["", "kernelab vs PyTorch (time ratio: lower is better)"], rows) if rows else []


def markdown_path(json_path: Path) -> Path:
    """results.json → RESULTS.md, results-partial-numpy.json → RESULTS-partial-numpy.md."""
    name = json_path.stem
    if name.startswith("results"):
        return json_path.with_name("RESULTS" + name[len("results") :] + ".md")
    return json_path.with_suffix(".md")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write RESULTS.md from a results JSON file.")
    parser.add_argument("json", nargs="?", type=Path, default=HERE / "results.json")
    parser.add_argument("--readme", action="store_true", help="print the README's speed table")
    args = parser.parse_args(argv)
    results = json.loads(args.json.read_text())
    if args.readme:
        print(readme(results), end="")
        return 0
    target = markdown_path(args.json)
    target.write_text(markdown(results))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
