"""What each ``kernelab`` subcommand does: read its parsed arguments, call the library, print.

The work lives in the library (``apps.runs``, ``apps.inspection``, ``apps.explain``,
``apps.studies``, ``apps.porting``, ``kernels.filtering``); a handler only turns options into
calls, prints what came out, and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from .. import distributed
from ..apps import animation, arch, inspection, porting, runs, studies
from ..core.threads import set_num_threads
from ..kernels import filtering, get_kernel, viz
from ..kernels.summary import summary


# ---- train
def train_config(args: argparse.Namespace) -> dict:
    """The config of a new run from ``kernelab train``'s options."""
    if args.arch is not None and not args.arch.strip():
        raise ValueError(
            '--arch is empty: give a spec such as "conv3x3x32-same,relu,maxpool2,flatten,'
            'linear10", or leave --arch out for the classic network'
        )
    lr = args.lr if args.lr is not None else runs.DEFAULT_LR[args.optimizer]
    return {
        "data": args.data,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "augment": args.augment,
        "arch": args.arch or runs.classic_spec(args.kernel_size),
        "init": args.init,
        "from": args.from_weights,
        "layers": args.layers,
        "freeze": args.freeze,
        "optimizer": args.optimizer,
        "lr": lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "schedule": args.schedule,
        "epochs": args.epochs if args.epochs is not None else runs.DEFAULT_EPOCHS,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "patience": args.patience,
        "checkpoint_every": args.checkpoint_every,
    }


def train_command(args: argparse.Namespace) -> int:
    threads = runs.join_ranks(args.threads)
    if threads:
        set_num_threads(threads)
    if args.resume:
        run_dir = Path(args.resume)
        config = runs.resume_config(run_dir, args.epochs, args.data_dir)
        if args.checkpoint_every is not None:  # else the run's own, to survive another kill
            config["checkpoint_every"] = args.checkpoint_every
    else:
        config = train_config(args)
        run_dir = Path(args.run_dir or Path("runs") / time.strftime("%Y-%m-%d-%H%M%S"))
    model, history = runs.train_run(
        config,
        run_dir,
        resume=bool(args.resume),
        checkpoint_every=config.get("checkpoint_every"),  # absent from older runs
        progress=not args.no_progress,
    )
    if distributed.get_rank() != 0:
        return 0
    last = history.epochs[-1]
    try:
        runs.write_pictures(model, history.epochs, run_dir)
    except ImportError as error:
        print(f"no pictures: {error}")
    print(
        f"done: test accuracy {last['val_acc']:.4f} after {len(history.epochs)} epochs "
        f"({last['images_per_s']:.0f} images/s); run folder {run_dir}"
    )
    return 0


# ---- a trained run
def evaluate_command(args: argparse.Namespace) -> int:
    model, config, run_dir = runs.load_run(args.run)
    if args.data_dir:
        config["data_dir"] = args.data_dir
    matrix, splits = runs.evaluate(model, config)
    result = runs.accuracies(matrix, list(splits.classes))
    print(f"data: {splits.source}")
    print(f"test accuracy {result['accuracy']:.4f} on {matrix.sum()} test images")
    for name, value in result["per_class"].items():
        print(f"  class {name}: {value:.4f}")
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=1))
    try:
        viz.save(viz.plot_confusion(matrix, splits.classes), run_dir / "confusion.png")
        print(f"confusion matrix: {run_dir / 'confusion.png'}")
    except ImportError as error:
        print(f"no picture: {error}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """Classify each image; a file that cannot be read is reported and the others go on."""
    model, config = predictor(args.run)
    classes, failed = config["classes"], 0
    for path in args.images:
        try:
            probabilities = runs.classify(model, config, path)
        except (OSError, ValueError) as error:
            failed += 1
            print(f"kernelab predict: error: {path}: {error}", file=sys.stderr)
            continue
        best = int(probabilities.argmax())
        listing = " ".join(f"{c}:{p:.3f}" for c, p in zip(classes, probabilities, strict=True))
        print(f"{path}: {classes[best]} ({probabilities[best]:.1%})  {listing}")
    if failed and len(args.images) > 1:
        print(f"kernelab predict: {failed} of {len(args.images)} images failed", file=sys.stderr)
    return 1 if failed else 0


def predictor(path: str) -> tuple:
    """The model and the config ``runs.classify`` needs, from a run folder, a checkpoint or an
    ``.onnx`` file (normalised as explain does: MNIST's statistics for one channel)."""
    if Path(path).suffix.lower() != ".onnx":
        model, config, _ = runs.load_run(path)
        return model, config
    from ..apps.explain.source import load_source

    source = load_source(path)
    for note in source.notes:
        print(f"note: {note}", file=sys.stderr)
    config = {"input_shape": list(source.input_shape), "mean": source.mean, "std": source.std}
    return source.model, {**config, "classes": source.classes}


def summary_command(args: argparse.Namespace) -> int:
    if args.arch:
        shape = tuple(int(n) for n in args.input_shape.split(","))
        model = arch.build(args.arch, shape)
    elif args.run:
        model, config, _ = runs.load_run(args.run)
        shape = tuple(config["input_shape"])
    else:
        raise ValueError("give a run folder or --arch SPEC")
    print(summary(model, shape))
    return 0


def export_command(args: argparse.Namespace) -> int:
    model, config, run_dir = runs.load_run(args.run)
    out = Path(args.out) if args.out else run_dir / f"model.{args.format}"
    print(f"wrote {runs.export(model, config['input_shape'], out, args.format)}")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    if args.animate is not None:
        written = animation.animate_run(args.run, args.animate or None)
        ffmpeg = "" if len(written) > 1 else " (no ffmpeg found: no MP4)"
        print(f"animate: wrote {', '.join(map(str, written))}{ffmpeg}")
        return 0
    index = inspection.inspect_run(args.run, args.image, args.out, args.evaluate, args.data_dir)
    pictures = len(list(index.parent.glob("*.png")))
    print(f"inspect: {pictures} pictures in {index.parent}; open {index}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    try:
        from ..apps.explain.app import serve
    except ImportError as error:
        raise RuntimeError(
            f'kernelab explain needs the web extra: pip install "kernelab[explain]" ({error})'
        ) from None
    if args.run is None and not args.train:
        raise ValueError("give a run folder, checkpoint or .onnx file (or --train for a new model)")
    return serve(
        args.run,
        host=args.host,
        port=args.port,
        open_browser=args.open,
        threads=args.threads,
        sessions=args.sessions,
        train=args.train,
        runs_dir=args.runs_dir,
        data_dir=args.data_dir,
    )


# ---- kernels
def filter_command(args: argparse.Namespace) -> int:
    kernel = get_kernel(args.kernel)
    image = filtering.read_image(args.image)
    result = filtering.filter_image(image, kernel, args.mode)
    out = Path(args.out) if args.out else filtered_name(Path(args.image), args.kernel, args.mode)
    filtering.write_image(filtering.to_uint8(result), out)
    print(
        f"{args.image}: {filter_story(args.kernel, kernel, args.mode)}. "
        f"Output {result.min():.4g}..{result.max():.4g} rescaled min-max to 0..255: {out}"
    )
    if args.compare:
        path = out.with_name(out.stem + "_compare.png")
        print(f"comparison: {filtering.save_comparison(image, kernel, args.kernel, path)}")
    return 0


def filtered_name(image: Path, spec: str, mode: str) -> Path:
    """``runs/filter/IMAGE_KERNEL_MODE.png``, the spec made safe for a file name."""
    name = "".join(c if c.isalnum() or c in "-." else "_" for c in spec)
    return Path("runs") / "filter" / f"{image.stem}_{name}_{mode}.png"


def filter_story(spec: str, kernel, mode: str) -> str:
    """How the image was filtered, and whether the other mode would differ."""
    how = (
        "correlated (kernel not flipped: what a CNN layer computes)"
        if mode == "correlate"
        else "convolved (kernel flipped by 180°; a CNN layer computes correlation instead)"
    )
    other = "convolve" if mode == "correlate" else "correlate"
    symmetry = (
        f"{spec} is point-symmetric, so --mode {other} gives the same result"
        if filtering.is_point_symmetric(kernel)
        else f"{spec} is not point-symmetric, so --mode {other} gives a different result"
    )
    kh, kw = kernel.shape
    return f"{how} with {spec} ({kh}x{kw}), zero padding; {symmetry}"


def study_command(args: argparse.Namespace) -> int:
    # One BLAS thread by default: these matrices are small, and two threads on a busy machine
    # made a run three times slower (they wait for each other); mpiexec uses the other cores.
    set_num_threads(runs.join_ranks(args.threads) or 1)
    path = studies.run_study(
        args.name,
        args.mode,
        args.out,
        args.seeds,
        args.epochs,
        args.limit,
        args.test_limit,
        args.data_dir,
        args.note,
        study_command_line(args),
    )
    if path is not None:
        print(f"report: {path}")
    return 0


def study_command_line(args: argparse.Namespace) -> str:
    """The command line that reproduces this study (for the report's header)."""
    words = ["kernelab", "study", args.name, "--mode", args.mode, "--seeds", str(args.seeds)]
    for flag in ("epochs", "limit", "test_limit", "data_dir", "out"):
        value = getattr(args, flag)
        if value is not None:
            words += ["--" + flag.replace("_", "-"), str(value)]
    world = distributed.get_world_size()
    return shlex.join((["mpiexec", "-n", str(world)] if world > 1 else []) + words)


# ---- porting a PyTorch script
def port_command(args: argparse.Namespace) -> int:
    """Port each script; with several, one that cannot be read or parsed is one error line
    and the others are still ported (exit status 1)."""
    if len(args.scripts) > 1 and not (args.write or args.diff):
        raise ValueError("several scripts need --write or --diff (stdout holds one script)")
    failed = False
    for script in args.scripts:
        try:
            port_script(script, args.write, args.diff)
        except porting.PortError as error:
            if len(args.scripts) == 1:
                raise
            print(f"kernelab port: error: {error}", file=sys.stderr)
            failed = True
    return int(failed)


def port_script(script: str, write: bool, as_diff: bool) -> None:
    """The ported script (or its diff) on stdout and the findings on stderr, so
    ``kernelab port a.py > b.py`` writes a clean script; with ``--write``, all on stdout."""
    port = porting.port_file(script)
    notes = sys.stdout if write else sys.stderr
    if write and port.text == port.original:
        print(f"{script}: no torch or torchvision import to rewrite; file unchanged")
    elif write:
        print(f"{script}: rewritten; the original is in {porting.write_ported(script, port)}")
    elif as_diff:
        sys.stdout.write(porting.diff(port, script))
    else:  # in the script's own encoding, so ``> b.py`` keeps its coding line true
        sys.stdout.flush()
        sys.stdout.buffer.write(port.text.encode(port.encoding))
        sys.stdout.buffer.flush()
    print("\n".join(porting.report(port, script)), file=notes)
