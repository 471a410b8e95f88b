"""Results: the JSON record of a run and its Markdown tables."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from .cases import SCALING_BATCHES, SCALING_SIZE_BATCH, SCALING_SIZES


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
            for engine, times in record["rounds"].items():
                rates[engine] += [record["flops"] / t / 1e9 for t in times]
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


def _load_warning(results: dict) -> list[str]:
    """A busy machine hurts multi-threaded runs most (OpenBLAS's spinning threads above all)."""
    loads = [r["loadavg_1min"] for r in results["cases"]] + [results["loadavg"]["end"][0]]
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
    rows = []
    for name, label in (
        ("classic/train_b64", "classic training, batch 64: images/s ≥ 0.8x PyTorch"),
        ("classic/infer_b256", "classic inference, batch 256: images/s ≥ 1.0x PyTorch"),
    ):
        if name in by_name:
            r = by_name[name]
            rows.append([label, f"{r['speed_ratio']:.2f}x", _met(r["target_met"])])
    conv = [r for r in results["cases"] if r["name"].startswith("conv/")]
    if conv:
        worst = max(conv, key=lambda r: r["time_ratio"])
        failing = sum(not r["target_met"] for r in conv)
        measured = f"worst {worst['time_ratio']:.2f}x ({worst['name']}); {failing}/{len(conv)} over"
        label = "every Conv2d forward+backward: time ≤ 1.5x PyTorch"
        rows.append([label, measured, _met(failing == 0)])
    memory = results.get("memory")
    if memory:
        kl, pt = memory["engines"]["kernelab"], memory["engines"]["torch"]
        measured = (
            f"{fmt(kl['increment_mb'])} MB vs {fmt(pt['increment_mb'])} MB above baseline "
            f"({memory['increment_ratio']:.2f}x)"
        )
        rows.append(["peak training memory ≤ PyTorch's", measured, _met(memory["target_met"])])
    return ["## Targets", ""] + _table(["target", "measured", "met"], rows) if rows else []


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def classic(records: list[dict], peak) -> list[str]:
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
        for r in records
    ]
    head = ["workload", "kernelab img/s", "PyTorch img/s", "speed ratio"]
    head += ["kernelab GFLOP/s (% ceiling)", "PyTorch GFLOP/s (% ceiling)", "target"]
    return ["## Classic network (MNIST CNN, SGD momentum, cross-entropy)", ""] + _table(head, rows)


def layers(title: str, records: list[dict], peak, with_flops: bool) -> list[str]:
    head = ["workload", "kernelab ms", "PyTorch ms", "time ratio"]
    if with_flops:
        head += ["kernelab GFLOP/s (% ceiling)", "PyTorch GFLOP/s (% ceiling)", "target"]
    rows = []
    for r in records:
        row = [r["title"], fmt(1e3 * r["kernelab_s"]), fmt(1e3 * r["torch_s"]), _ratio(r)]
        if with_flops:
            row += [_gflops(r, "kernelab", peak), _gflops(r, "torch", peak), _verdict(r)]
        rows.append(row)
    return [title, ""] + _table(head, rows)


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
        "first step (model, data and the engine's imports are in the baseline).",
        "",
    ]


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


def markdown(results: dict) -> str:
    by_name = {r["name"]: r for r in results["cases"]}
    peak = results["ceiling"]["numpy_gflops"]
    group = {
        g: [r for r in results["cases"] if r["name"].split("/")[0] == g]
        for g in ("classic", "conv", "ops")
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
        lines += classic(group["classic"], peak)
    if group["conv"]:
        title = "## One Conv2d layer, forward + backward (N=64, 28x28, input gradient included)"
        lines += layers(title, group["conv"], peak, with_flops=True)
    if group["ops"]:
        title = "## Pooling, activation, dense layer and loss alone, forward + backward"
        lines += layers(title, group["ops"], peak, with_flops=False)
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
