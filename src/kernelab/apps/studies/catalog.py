"""The five studies: which networks each one trains, and how its numbers are tabulated.

A study is a list of :class:`~kernelab.apps.studies.runner.Config` rows (built for the input size),
the tables and plots made from their runs, and a few sentences read mechanically off the
numbers (best, worst, differences against a reference row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...kernels.constraints import SYMMETRIES, num_free
from .report import (
    count,
    plot_bars,
    plot_loss_curves,
    plot_tradeoff,
    plot_versus,
    pm,
    receptive_field,
)
from .runner import Config, Row
from .study import ACCURACY, TIME, Study, accuracy_text, best_and_worst, difference, ratio, trained

# ---- kernel-size
KERNEL_SIZES = (2, 3, 4, 5, 7)
_TWO_LAYERS = "conv{k}x{k}x8-same,relu,maxpool2,conv{k}x{k}x16-same,relu,maxpool2,flatten,linear10"
_STACKED = (
    "conv3x3x8-same,relu,conv3x3x8-same,relu,maxpool2,"
    "conv3x3x8-same,relu,conv3x3x16-same,relu,maxpool2,flatten,linear10"
)
STACKED_LABEL = "2 × 3x3 (for 5x5)"


def _kernel_size_configs(size: int) -> list[Config]:
    rows = [
        Config(f"{k}x{k}", _TWO_LAYERS.format(k=k), group="one k×k conv per block", x=k)
        for k in KERNEL_SIZES
    ]
    rows.append(Config(STACKED_LABEL, _STACKED, group="two stacked 3x3 per block", x=5))
    return rows


def _kernel_size_reading(rows: Sequence[Row]) -> list[str]:
    lines = best_and_worst(rows)
    by_label = {r.config.label: r for r in rows}
    stacked, five = by_label[STACKED_LABEL], by_label["5x5"]
    lines.append(
        f"Two stacked 3x3 against one 5x5 (same receptive field, "
        f"{receptive_field(stacked)} against {receptive_field(five)} pixels): "
        f"{ratio(stacked.value('conv_params'), five.value('conv_params'))} the convolution "
        f"parameters, {ratio(stacked.value('conv_macs'), five.value('conv_macs'))} the "
        f"convolution MACs, accuracy {difference(stacked, five)}."
    )
    fast = min(rows, key=lambda r: r.mean("train_seconds"))
    slow = max(rows, key=lambda r: r.mean("train_seconds"))
    lines.append(
        f"Training time from {fast.mean('train_seconds'):.1f} s ({fast.config.label}) to "
        f"{slow.mean('train_seconds'):.1f} s ({slow.config.label}): "
        f"{ratio(slow.mean('train_seconds'), fast.mean('train_seconds'))} for "
        f"{ratio(slow.value('macs'), fast.value('macs'))} the MACs."
    )
    return lines


KERNEL_SIZE = Study(
    name="kernel-size",
    title="Study: kernel size",
    question=(
        "The same two-block network (8 then 16 kernels, 'same' padding, ReLU, 2x2 max-pooling, "
        "a linear classifier) with 2x2, 3x3, 4x4, 5x5 and 7x7 kernels, and with each 5x5 "
        "convolution replaced by two stacked 3x3 ones (the first keeps the block's input "
        "channels, except from the 1-channel image: 1→8→8, then 8→8→16). 'Same' padding keeps "
        "the classifier's input at 16·7·7 for every size, so only the kernels change."
    ),
    configs=_kernel_size_configs,
    columns=(
        ("Kernels", lambda r: r.config.label),
        ("Conv params", count("conv_params")),
        ("Params", count("params")),
        ("MACs / image", count("macs")),
        ("Receptive field (last conv, px)", receptive_field),
        ("Training time (s)", TIME),
        ("Test accuracy (%)", ACCURACY),
    ),
    plots=(
        (
            "accuracy_vs_params.png",
            "Test accuracy against parameters (mean ± std over seeds)",
            lambda rows: plot_tradeoff(
                rows, "params", "parameters", "kernel size: accuracy vs parameters"
            ),
        ),
        (
            "accuracy_vs_macs.png",
            "Test accuracy against multiply-accumulates per image",
            lambda rows: plot_tradeoff(
                rows, "macs", "MACs per image", "kernel size: accuracy vs MACs"
            ),
        ),
        (
            "training_time.png",
            "Measured training time (all epochs, mean ± std over seeds)",
            lambda rows: plot_bars(rows, "train_seconds", "seconds", "training time"),
        ),
    ),
    reading=_kernel_size_reading,
)


# ---- symmetry
_SYMMETRIC = "conv5x5x8{s},relu,maxpool2,conv5x5x16{s},relu,maxpool2,flatten,linear10"
NO_SYMMETRY = "none (unconstrained)"


def _symmetry_configs(size: int) -> list[Config]:
    rows = [Config(NO_SYMMETRY, _SYMMETRIC.format(s=""), x=25)]
    rows += [
        Config(name, _SYMMETRIC.format(s=f"-sym{name}"), x=num_free(name, (5, 5)))
        for name in SYMMETRIES
    ]
    return rows


def _symmetry_reading(rows: Sequence[Row]) -> list[str]:
    lines = best_and_worst(rows)
    free = rows[0]
    for row in rows[1:]:
        saved = 1 - row.value("conv_params") / free.value("conv_params")
        lines.append(
            f"`{row.config.label}`: {saved:.0%} fewer convolution parameters "
            f"({row.value('conv_params'):,} against {free.value('conv_params'):,}), accuracy "
            f"{difference(row, free)} against the unconstrained kernels."
        )
    return lines


SYMMETRY = Study(
    name="symmetry",
    title="Study: symmetric kernels",
    question=(
        'In the setting of SymNet (Dzhezyan & Cecotti, "SymNet: Symmetrical Filters in '
        'Convolutional Neural Networks", arXiv:1906.04252): a small CNN on MNIST whose '
        "convolution layers have symmetric kernels, compared on free parameters and test "
        "accuracy with the same network with unconstrained kernels. The paper's cases are "
        "x/y-axis symmetry, point reflection and anti-point reflection; `xy` and `rot90` are "
        "kernelab's additions. Every symmetry `kernelab.kernels.constraints` "
        "has (`nn.Conv2d(..., symmetry=...)`, spec option `-sym{type}`) "
        "is applied to both 5x5 convolutions (8 then 16 kernels, no padding, ReLU, 2x2 "
        "max-pooling, a linear classifier). A symmetric layer learns only the free parameters "
        "and builds the full kernel from them, so its MACs are the unconstrained layer's."
    ),
    configs=_symmetry_configs,
    columns=(
        ("Symmetry", lambda r: r.config.label),
        ("Free params per 5x5 kernel", lambda r: f"{int(r.config.x)}"),
        ("Conv params (free)", count("conv_params")),
        ("Params", count("params")),
        ("Params if unconstrained", count("full_params")),
        ("MACs / image", count("macs")),
        ("Training time (s)", TIME),
        ("Test accuracy (%)", ACCURACY),
    ),
    plots=(
        (
            "accuracy_vs_params.png",
            "Test accuracy against the convolutions' free parameters",
            lambda rows: plot_tradeoff(
                rows,
                "conv_params",
                "convolution parameters (free)",
                "symmetric kernels: accuracy vs free parameters",
            ),
        ),
        (
            "accuracy.png",
            "Test accuracy per symmetry (mean ± std over seeds)",
            lambda rows: plot_bars(rows, "test_acc", "test accuracy (%)", "test accuracy", 100),
        ),
    ),
    reading=_symmetry_reading,
)


# ---- init
_INIT_SPEC = "conv5x5x8,relu,maxpool2,conv5x5x16,relu,maxpool2,flatten,linear10"
INITS = (
    ("default", "default (U(±1/√fan_in))"),
    ("constant:0.1", "constant 0.1"),
    ("zeros", "zeros"),
    ("normal:0.01", "normal σ=0.01"),
    ("uniform", "uniform U(0, 1)"),
    ("glorot_uniform", "Glorot uniform"),
    ("he_normal", "He normal"),
    ("sobel", "Sobel bank"),
    ("gabor", "Gabor bank"),
)


def _init_configs(size: int) -> list[Config]:
    return [Config(label, _INIT_SPEC, init=name, zero_bias=True) for name, label in INITS]


def _spread(key: str) -> Callable[[Row], str]:
    return lambda row: f"{max(row.values(key)):.3g}"


def _init_reading(rows: Sequence[Row]) -> list[str]:
    lines = best_and_worst(rows)
    for row in rows:
        if row.config.init in ("constant:0.1", "zeros"):
            spread = max(row.values("kernel_spread_end"))
            state = "stayed identical, bit for bit" if spread == 0 else "did not stay identical"
            lines.append(
                f"`{row.config.init}`: the first layer's kernels {state} (largest difference "
                f"between two kernels after training, over all seeds: {spread:.3g})."
            )
    chance = [r.config.label for r in rows if r.mean("test_acc") < 0.2]
    if chance:
        lines.append(f"At chance level (< 20 %): {', '.join(chance)}.")
    return lines


INIT = Study(
    name="init",
    title="Study: kernel initialisation",
    question=(
        "The same network (two 5x5 convolutions with 8 then 16 kernels, no padding, ReLU, 2x2 "
        "max-pooling, a linear classifier) started from different kernels: every convolution's "
        "kernels drawn by the named `kernelab.init` initialiser, except the hand-designed banks "
        "(Sobel: x and y derivatives repeated; Gabor: 8 orientations), which go into the first "
        "convolution only (the second keeps its default draw). Every convolution's bias starts "
        "at 0, so kernels that start equal get equal gradients. The kernel spread is the "
        "largest difference, cell by cell, between two of the first layer's 8 kernels."
    ),
    configs=_init_configs,
    columns=(
        ("Init", lambda r: r.config.label),
        ("Kernel spread at start", _spread("kernel_spread_start")),
        ("Kernel spread after training (max over seeds)", _spread("kernel_spread_end")),
        ("Final training loss", pm("train_loss", 1, 3)),
        ("Test loss", pm("test_loss", 1, 3)),
        ("Test accuracy (%)", ACCURACY),
    ),
    plots=(
        (
            "loss_curves.png",
            "Training loss per step (mean over seeds, smoothed)",
            lambda rows: plot_loss_curves(rows, "initialisation: training loss"),
        ),
        (
            "accuracy.png",
            "Final test accuracy per initialisation (mean ± std over seeds)",
            lambda rows: plot_bars(rows, "test_acc", "test accuracy (%)", "test accuracy", 100),
        ),
    ),
    reading=_init_reading,
)


# ---- kernel-vs-image
IMAGE_KERNELS = {28: (3, 7, 14, 21, 28), 14: (3, 5, 7, 10, 14)}


def _kernel_vs_image_configs(size: int) -> list[Config]:
    return [
        Config(f"{k}x{k}", f"conv{k}x{k}x16,relu,flatten,linear10", x=k)
        for k in IMAGE_KERNELS[size]
    ]


def _kernel_vs_image_reading(rows: Sequence[Row]) -> list[str]:
    lines = best_and_worst(rows)
    whole = rows[-1]
    best = max(trained(rows) or rows, key=lambda r: r.mean("test_acc"))
    lines.append(
        f"Kernel as large as the image ({whole.config.label}: one output per feature map, so "
        f"the layer is a dense layer of 16 neurons): {accuracy_text(whole)}, "
        f"{difference(whole, best)} against the best ({best.config.label})."
    )
    return lines


def _map_size(row: Row) -> str:
    shape = row.value("last_conv_output")
    return f"{shape[1]}x{shape[2]}"


KERNEL_VS_IMAGE = Study(
    name="kernel-vs-image",
    title="Study: kernels growing to the size of the image",
    question=(
        "One convolution with 16 kernels and no padding, ReLU, then a linear classifier on the "
        "flattened feature maps. As the kernel grows to the input's size the feature maps "
        "shrink to one value each, and the convolution becomes a dense layer with one neuron "
        "per kernel. Quick mode uses the images averaged down to 14x14, full mode 28x28."
    ),
    configs=_kernel_vs_image_configs,
    columns=(
        ("Kernel", lambda r: r.config.label),
        ("Feature map", _map_size),
        ("Conv params", count("conv_params")),
        ("Params", count("params")),
        ("Conv MACs / image", count("conv_macs")),
        ("MACs / image", count("macs")),
        ("Training time (s)", TIME),
        ("Test accuracy (%)", ACCURACY),
    ),
    plots=(
        (
            "versus_kernel_size.png",
            "Accuracy, parameters and MACs against the kernel size",
            lambda rows: plot_versus(
                rows,
                [
                    ("test_acc", "test accuracy (%)"),
                    ("params", "parameters"),
                    ("macs", "MACs per image"),
                ],
                "kernel size (pixels)",
                "kernel growing to the image",
            ),
        ),
    ),
    reading=_kernel_vs_image_reading,
    quick_image_size=14,
)


# ---- depth-multiplier
MULTIPLIERS = (1, 2, 4)
_DEPTH = "conv3x3x8-same,relu,maxpool2,{second},relu,maxpool2,flatten,linear10"


def _depth_configs(size: int) -> list[Config]:
    rows = []
    for k in MULTIPLIERS:
        dw = f"conv3x3x{8 * k}-same-dw{k}"
        rows.append(Config(f"depthwise ×{k}", _DEPTH.format(second=dw), group="depthwise", x=k))
        full = f"conv3x3x{8 * k}-same"
        rows.append(Config(f"full, {8 * k} kernels", _DEPTH.format(second=full), group="full", x=k))
    return rows


def _second(key: str) -> Callable[[Row], int]:
    """The second convolution's entry of a per-layer list (``conv_layer_params``/``_macs``)."""
    return lambda row: row.value(key)[1]


def _depth_reading(rows: Sequence[Row]) -> list[str]:
    lines = best_and_worst(rows)
    params, macs = _second("conv_layer_params"), _second("conv_layer_macs")
    for dw, full in zip(rows[::2], rows[1::2], strict=True):
        lines.append(
            f"K = {int(dw.config.x)}: the depthwise layer has "
            f"{ratio(params(dw), params(full))} the parameters ({params(dw):,} against "
            f"{params(full):,}) and {ratio(macs(dw), macs(full))} the MACs of the full one; "
            f"accuracy {difference(dw, full)}; training time "
            f"{ratio(dw.mean('train_seconds'), full.mean('train_seconds'))}."
        )
    return lines


DEPTH_MULTIPLIER = Study(
    name="depth-multiplier",
    title="Study: depthwise convolution and its depth multiplier",
    question=(
        "A first normal 3x3 convolution makes 8 feature maps; the second 3x3 convolution is "
        "either depthwise (groups = 8, each input map filtered by K kernels of its own: "
        "C_out = 8·K, spec option `-dw{K}`) or a full convolution with the same 8·K kernels, "
        "each as deep as the 8 input maps. Then ReLU, 2x2 max-pooling and a linear classifier "
        "(whose size depends on C_out, equally for both)."
    ),
    configs=_depth_configs,
    columns=(
        ("Second convolution", lambda r: r.config.label),
        ("C_out", lambda r: str(8 * int(r.config.x))),
        ("Its params", lambda r: f"{_second('conv_layer_params')(r):,}"),
        ("Params", count("params")),
        ("Its MACs / image", lambda r: f"{_second('conv_layer_macs')(r):,}"),
        ("MACs / image", count("macs")),
        ("Training time (s)", TIME),
        ("Test accuracy (%)", ACCURACY),
    ),
    plots=(
        (
            "accuracy_vs_params.png",
            "Test accuracy against parameters, depthwise and full",
            lambda rows: plot_tradeoff(
                rows,
                "conv_params",
                "convolution parameters",
                "depthwise vs full: accuracy vs parameters",
            ),
        ),
        (
            "accuracy_vs_macs.png",
            "Test accuracy against the convolutions' MACs per image",
            lambda rows: plot_tradeoff(
                rows,
                "conv_macs",
                "convolution MACs per image",
                "depthwise vs full: accuracy vs MACs",
            ),
        ),
    ),
    reading=_depth_reading,
)

STUDIES: dict[str, Study] = {
    s.name: s for s in (KERNEL_SIZE, SYMMETRY, INIT, KERNEL_VS_IMAGE, DEPTH_MULTIPLIER)
}
