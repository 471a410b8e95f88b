"""The MNIST benchmark: ``kernelab train``'s recipe against the same recipe in PyTorch.

    python bench/mnist.py                      # full: 60,000 images, 5 epochs
    python bench/mnist.py --limit 5000 --epochs 1   # quick check that it runs

Each engine trains in a process of its own, so its peak resident memory is its own. The
kernelab child runs ``kernelab train`` itself (the classic network, Adam at 3e-3 under a
one-cycle schedule, batches of 64, pixels normalised by the training set's mean and std).
The PyTorch child builds the same configuration from the same command-line defaults, starts
from the same initial weights (kernelab's, copied through ``state_dict``) and visits the same
batches in the same order (kernelab's ``DataLoader.order(epoch)``). Seconds per epoch count
the training loop only; the test set is evaluated after each epoch, untimed.

Memory is the peak resident set (``VmHWM``) each child reads from ``/proc/self/status`` at
the end; ``ru_maxrss`` is reported beside it (see ``memory.py`` for why it can overstate).

Writes ``bench/mnist.json`` and ``bench/MNIST.md``; a run with ``--limit`` or fewer than 5
epochs writes ``mnist-partial.json`` and ``MNIST-partial.md``, so it never replaces a full
report.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import harness  # noqa: E402  (not report: it imports torch, as cases.py does)

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
TARGET_ACCURACY, TARGET_EPOCHS = 0.992, 5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TARGET_EPOCHS)
    parser.add_argument("--limit", type=int, help="train on the first N images (quick mode)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help=f"folder with MNIST's four .gz files (default {DEFAULT_DATA})",
    )
    parser.add_argument("--threads", type=int, default=harness.default_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON path (Markdown goes next to it)")
    parser.add_argument("--child", choices=("kernelab", "torch"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def train_argv(args: argparse.Namespace, run_dir: str) -> list[str]:
    """``kernelab train`` with every recipe setting at its default."""
    argv = [
        "train",
        "--data-dir",
        str(args.data_dir),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--run-dir",
        run_dir,
    ]
    return argv + (["--limit", str(args.limit)] if args.limit else [])


def memory_now() -> dict:
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key] = int(value.split()[0]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rss_mb": status["VmRSS"], "peak_mb": status["VmHWM"], "ru_maxrss_mb": maxrss}


def fingerprint(arrays) -> str:
    """A short hash of arrays' bytes: equal on both sides means the same start or order."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


# ---- the children
def run_kernelab(args: argparse.Namespace) -> dict:
    """``kernelab train`` in this process; its metrics.json gives the epochs."""
    from kernelab import cli
    from kernelab.apps import runs, train

    # The pictures come after training and would add matplotlib (tens of MB) to the peak.
    runs.write_pictures = lambda *a: None
    start: dict = {}
    real_fit = train.Trainer.fit

    def fit(self, epochs):
        start["memory"] = memory_now()
        start["weights"] = fingerprint(v.array for v in self.model.state_dict().values())
        start["order"] = fingerprint([self.train_loader.order(0)])
        return real_fit(self, epochs)

    train.Trainer.fit = fit
    with tempfile.TemporaryDirectory() as run_dir:
        if cli.main(train_argv(args, run_dir)) != 0:
            raise SystemExit("kernelab train failed")
        rows = json.loads((Path(run_dir) / "metrics.json").read_text())["epochs"]
    epochs = [
        {
            "epoch": r["epoch"],
            "test_acc": r["val_acc"],
            "test_loss": r["val_loss"],
            "train_loss": r["train_loss"],
            "seconds": r["seconds"],
            "images_per_s": r["images_per_s"],
        }
        for r in rows
    ]
    return {
        "engine": "kernelab",
        "epochs": epochs,
        "baseline": start.pop("memory"),
        "peak": memory_now(),
        **start,
    }


def run_torch(args: argparse.Namespace) -> dict:
    """The same recipe in PyTorch, from kernelab's initial weights and batch order."""
    import torch
    import torch.nn.functional as TF

    from bench import models
    from kernelab import cli, data
    from kernelab.apps import runs
    from kernelab.cli import handlers
    from kernelab.core import rng as random

    harness.use_threads(args.threads)  # both engines, numba's pool started first
    config = handlers.train_config(cli.build_parser().parse_args(train_argv(args, "unused")))
    recipe = (config["arch"], config["optimizer"], config["schedule"], config["augment"])
    if recipe != (runs.classic_spec(5), "adam", "onecycle", 0):
        raise SystemExit(f"the PyTorch side mirrors only the default recipe, not {recipe}")
    _, (x_train, y_train), (x_test, y_test) = runs.load_data(config)
    config["input_shape"] = list(x_train.shape[1:])
    random.manual_seed(config["seed"])  # as kernelab train does before building the model
    initial = runs.model_from_config(config)
    runs.initialise(initial, config["init"], config["seed"])
    model = models.classic_torch()
    models.copy_weights(initial, model)
    order = data.DataLoader(
        data.TensorDataset(x_train, y_train),
        config["batch_size"],
        shuffle=True,
        generator=config["seed"],
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config["lr"], epochs=config["epochs"], steps_per_epoch=len(order)
    )
    images, labels = torch.from_numpy(x_train), torch.from_numpy(y_train)
    record = {
        "engine": "torch",
        "epochs": [],
        "baseline": memory_now(),
        "weights": fingerprint(p.detach().numpy() for p in model.state_dict().values()),
        "order": fingerprint([order.order(0)]),
    }
    batch = config["batch_size"]
    for epoch in range(config["epochs"]):
        indices = torch.from_numpy(order.order(epoch))
        model.train()
        loss_sum, began = 0.0, time.perf_counter()
        for b in range(len(order)):
            chosen = indices[b * batch : (b + 1) * batch]
            optimizer.zero_grad()
            loss = TF.cross_entropy(model(images[chosen]), labels[chosen])
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(chosen)
        seconds = time.perf_counter() - began
        test_acc, test_loss = torch_evaluate(model, x_test, y_test)
        record["epochs"].append(
            {
                "epoch": epoch + 1,
                "test_acc": test_acc,
                "test_loss": test_loss,
                "train_loss": loss_sum / len(x_train),
                "seconds": seconds,
                "images_per_s": len(x_train) / seconds,
            }
        )
        print(
            f"torch epoch {epoch + 1}: test accuracy {test_acc:.4f}, {seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    record["peak"] = memory_now()
    return record


def torch_evaluate(model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    import torch
    import torch.nn.functional as TF

    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(x_test), 500):  # as kernelab train's test loader
            x = torch.from_numpy(x_test[start : start + 500])
            y = torch.from_numpy(y_test[start : start + 500])
            logits = model(x)
            loss_sum += TF.cross_entropy(logits, y).item() * len(y)
            correct += int((logits.argmax(dim=1) == y).sum())
    return correct / len(y_test), loss_sum / len(y_test)


def child(engine: str, args: argparse.Namespace) -> dict:
    """Run one engine in a fresh interpreter; its record is its last line of output."""
    command = [
        sys.executable,
        "-m",
        "bench.mnist",
        "--child",
        engine,
        "--epochs",
        str(args.epochs),
        "--data-dir",
        str(args.data_dir),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
    ]
    command += ["--limit", str(args.limit)] if args.limit else []
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {engine} run failed (exit status {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report
def summarize(args, records: dict, load: dict, seconds: float) -> dict:
    kl, pt = records["kernelab"], records["torch"]
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(kl["epochs"], pt["epochs"], strict=True)]
    reached = next((r["epoch"] for r in kl["epochs"] if r["test_acc"] >= TARGET_ACCURACY), None)
    full = args.limit is None and args.epochs >= TARGET_EPOCHS
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": harness.machine(),
        "threads": args.threads,
        "loadavg": load,
        "duration_s": seconds,
        "mode": "full" if full else "quick",
        "data_dir": str(args.data_dir),
        "limit": args.limit,
        "epochs": args.epochs,
        "same_start": kl["weights"] == pt["weights"] and kl["order"] == pt["order"],
        "engines": records,
        "time_ratio_per_epoch": ratios,
        "time_ratio": float(np.median(ratios)),
        "peak_ratio": kl["peak"]["peak_mb"] / pt["peak"]["peak_mb"],
        "target": {
            "accuracy": TARGET_ACCURACY,
            "epochs": TARGET_EPOCHS,
            "reached_at_epoch": reached,
            "met": full and reached is not None and reached <= TARGET_EPOCHS,
        },
    }


def fmt(x: float) -> str:
    """Three significant digits, no exponent."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def markdown(results: dict) -> str:
    m, load = results["machine"], results["loadavg"]
    kl, pt = results["engines"]["kernelab"], results["engines"]["torch"]
    images = "all 60,000" if results["limit"] is None else f"the first {results['limit']:,}"
    target = results["target"]
    if results["mode"] != "full":
        verdict = "not judged (quick run)"
    elif target["met"]:
        verdict = f"**met** at epoch {target['reached_at_epoch']}"
    else:
        verdict = f"**not met** in {results['epochs']} epochs"
    lines = [
        "# MNIST: kernelab train vs the same recipe in PyTorch",
        "",
        f"Measured {results['date']} on {m['cpu']} ({m['usable_cores']} usable cores), "
        f"{m['system']}; {results['threads']} threads for both engines. Python {m['python']}, "
        f"NumPy {m['numpy']}, PyTorch {m['torch']}. Load average {load['start'][0]:.2f} at the "
        f"start, {load['end'][0]:.2f} at the end (other processes share this machine). Mode: "
        f"{results['mode']}, {results['duration_s'] / 60:.1f} min.",
        "",
        f"Recipe (`kernelab train` defaults): the classic network, Adam lr 3e-3 under a "
        f"one-cycle schedule, batches of 64, normalised pixels; {images} training images, "
        f"the 10,000 test images, {results['epochs']} epoch(s). Both start from the same "
        f"weights and see the same batches in the same order: "
        f"{'checked' if results['same_start'] else '**NOT the same (check the code)**'}. "
        "Each engine runs in a process of its own; seconds count the training loop only.",
        "",
        f"Target: ≥ {100 * target['accuracy']:.1f} % test accuracy within "
        f"{target['epochs']} epochs: {verdict}.",
        "",
    ]
    header = [
        "epoch",
        "kernelab test acc",
        "PyTorch test acc",
        "kernelab s",
        "PyTorch s",
        "time ratio",
        "kernelab img/s",
        "PyTorch img/s",
    ]
    rows = [
        [
            str(a["epoch"]),
            f"{100 * a['test_acc']:.2f} %",
            f"{100 * b['test_acc']:.2f} %",
            fmt(a["seconds"]),
            fmt(b["seconds"]),
            f"**{ratio:.2f}x**",
            fmt(a["images_per_s"]),
            fmt(b["images_per_s"]),
        ]
        for a, b, ratio in zip(
            kl["epochs"], pt["epochs"], results["time_ratio_per_epoch"], strict=True
        )
    ]
    lines += _table(header, rows)
    lines += [
        f"Time ratio = kernelab seconds / PyTorch seconds (lower is better); median "
        f"**{results['time_ratio']:.2f}x**.",
        "",
    ]
    header = ["engine", "peak RSS (VmHWM) MB", "at start of training MB", "ru_maxrss MB"]
    rows = [
        [
            name,
            fmt(r["peak"]["peak_mb"]),
            fmt(r["baseline"]["rss_mb"]),
            fmt(r["peak"]["ru_maxrss_mb"]),
        ]
        for name, r in (("kernelab", kl), ("PyTorch", pt))
    ]
    lines += ["## Memory", ""] + _table(header, rows)
    lines += [
        f"Peak ratio kernelab / PyTorch: **{results['peak_ratio']:.2f}x**. Both "
        "processes hold the data set as normalised float32 (the PyTorch one also "
        "imports kernelab to read it, and PyTorch itself).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        record = run_kernelab(args) if args.child == "kernelab" else run_torch(args)
        print(json.dumps(record))
        return 0
    if not (args.data_dir / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"bench/mnist.py: no MNIST files in {args.data_dir} (see --data-dir)")
    began, load_start = time.perf_counter(), os.getloadavg()
    records = {engine: child(engine, args) for engine in ("kernelab", "torch")}
    load = {"start": load_start, "end": os.getloadavg()}
    results = summarize(args, records, load, time.perf_counter() - began)
    partial = results["mode"] != "full"
    json_path = args.out or HERE / ("mnist-partial.json" if partial else "mnist.json")
    md_path = json_path.with_suffix(".md")
    if args.out is None:
        md_path = HERE / ("MNIST-partial.md" if partial else "MNIST.md")
    tmp = json_path.with_name(json_path.name + ".tmp")  # written whole, then renamed
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, json_path)
    text = markdown(results)
    md_path.write_text(text)
    print(text)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
