"""``kernelab inspect RUN``: every picture of a trained run, and an index.html to browse them.

Written into ``RUN/inspect/``: each convolution's kernels (mean over depth, and per input
channel when deeper than 1), their frequency responses, the first layer's kernels by
frequency class (``frequency.md``), the feature maps an image produces at every layer, the
predicted probabilities, the learning curves and the confusion matrix (from ``kernelab
evaluate``, or computed with ``--evaluate``).
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import data
from .. import functional as F
from ..autograd import no_grad
from ..core.tensor import Tensor
from ..kernels import viz
from ..kernels.frequency import frequency_table
from ..nn import Conv2d, Module
from . import runs

# ---- the image


def synthetic_digit(height: int = 28, width: int = 28) -> np.ndarray:
    """A hand-drawn-looking 7 (white stroke on black), uint8 (H, W); no data needed.

    Two strokes in a box of 20/28 of the image, like MNIST digits, with soft edges.
    """
    y, x = np.mgrid[0:height, 0:width] + 0.5
    y, x = y / height, x / width  # (H, W) in 0..1
    strokes = [((0.24, 0.26), (0.24, 0.74)), ((0.24, 0.74), (0.80, 0.45))]  # (y, x) pairs
    distance = np.full((height, width), np.inf)
    for (y0, x0), (y1, x1) in strokes:
        dy, dx = y1 - y0, x1 - x0
        t = np.clip(((y - y0) * dy + (x - x0) * dx) / (dy * dy + dx * dx), 0, 1)
        distance = np.minimum(
            distance, np.hypot((y - y0 - t * dy) * height, (x - x0 - t * dx) * width)
        )
    half_width = 1.2 * height / 28
    return np.rint(255 * np.clip(half_width + 0.5 - distance, 0, 1)).astype(np.uint8)


# ---- the model


def feature_maps(
    model: Module, x: np.ndarray
) -> tuple[list[tuple[str, Module, np.ndarray]], np.ndarray]:
    """Each leaf layer's output for one image, in call order, and the model's output.

    Every leaf module's ``forward`` is wrapped for the duration of one evaluation-mode pass,
    so any model works, not only a Sequential. Shape: x (1, C, H, W); each recorded output
    drops the batch axis.
    """
    recorded: list[tuple[str, Module, np.ndarray]] = []
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]

    def recording(name: str, module: Module):
        forward = module.forward

        def wrapper(*args, **kwargs):
            y = forward(*args, **kwargs)
            if isinstance(y, Tensor):
                recorded.append((name, module, np.array(y.array[0])))
            return y

        return wrapper

    was_training = model.training
    model.eval()
    try:
        for name, module in leaves:
            module.forward = recording(name, module)
        with no_grad():
            out = model(Tensor(x)).array[0]
    finally:
        for _, module in leaves:
            del module.forward
        model.train(was_training)
    return recorded, out


def confusion_matrix(model: Module, config: dict[str, Any]) -> np.ndarray:
    """(true class, predicted class) counts on the run's test set (loads the dataset)."""
    _, _, (x_test, y_test) = runs.load_data(dict(config, limit=None))
    predicted = runs.predicted_classes(model, x_test)
    return runs.confusion_matrix(y_test, predicted, len(config["classes"]))


# ---- the report


class Report:
    """Pictures written into one folder, with captions, in order."""

    def __init__(self, folder: Path):
        self.folder, self.items = folder, []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, figure, name: str, caption: str) -> None:
        viz.save(figure, self.folder / name)
        self.items.append(("figure", name, caption))

    def text(self, heading: str, body_html: str) -> None:
        self.items.append(("text", heading, body_html))

    def write_index(self, title: str) -> Path:
        parts = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
            "img{max-width:100%}figure{margin:2em 0}figcaption{color:#333}"
            "table{border-collapse:collapse}td,th{border:1px solid #aaa;padding:2px 8px}"
            "</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
        ]
        for kind, first, second in self.items:
            if kind == "figure":
                parts.append(
                    f'<figure><img src="{html.escape(first)}" alt="{html.escape(first)}">'
                    f"<figcaption>{html.escape(second)}</figcaption></figure>"
                )
            else:
                parts.append(f"<h2>{html.escape(first)}</h2>{second}")
        parts.append("</body></html>")
        path = self.folder / "index.html"
        path.write_text("\n".join(parts) + "\n", encoding="utf-8")
        return path


def markdown_table_html(markdown: str) -> str:
    """The pipe tables of ``markdown`` as HTML tables (other lines become paragraphs)."""
    blocks, rows = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
            continue
        if rows:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rows[1:]
            )
            blocks.append(f"<table><tr>{head}</tr>{body}</table>")
            rows = []
        if line.strip() and not line.startswith("#"):
            blocks.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(blocks)


def _kernel_pictures(report: Report, convs: list[tuple[str, Conv2d]]) -> None:
    for name, conv in convs:
        weight = conv.weight.array
        report.add(
            viz.plot_kernels(weight, f"layer {name}'s kernels"),
            f"kernels_{name}.png",
            f"Layer {name} ({conv!r}): each kernel averaged over its depth; red "
            "positive, blue negative, one scale centred on 0.",
        )
        if weight.shape[1] > 1:
            report.add(
                viz.plot_kernel_depth(weight, f"layer {name}"),
                f"kernels_{name}_depth.png",
                f"Layer {name}: every 2-D slice, rows = output channels, columns = input "
                "channels (capped at 16 x 16).",
            )
        report.add(
            viz.plot_frequency_responses(weight, f"layer {name}"),
            f"frequency_{name}.png",
            f"Layer {name}: magnitude of each kernel's 2-D frequency response (DFT, "
            "zero-padded to 32x32, centre = DC) and its frequency class.",
        )


def _frequency_section(report: Report, name: str, conv: Conv2d) -> None:
    table = frequency_table(conv.weight.array)
    markdown = (
        f"# Layer {name}'s kernels by frequency class\n\n"
        f"Weight {tuple(conv.weight.shape)}. Rule (kernelab.kernels.frequency, "
        "docs/frequency-response.md): flat magnitude (min >= max/2) is all-pass; otherwise "
        "DC gain >= 1/2 of the peak with spectral centroid < 2/3 is low-pass, DC blocked "
        "with centroid >= 2/3 high-pass, DC blocked with centroid < 2/3 band-pass.\n\n" + table
    )
    (report.folder / "frequency.md").write_text(markdown, encoding="utf-8")
    report.text(f"Frequency classes of layer {name}", markdown_table_html(markdown))


def _image_pictures(report: Report, model: Module, config: dict, image: str | None) -> str:
    """Input, feature maps and prediction pictures; returns a line about the prediction."""
    shape = tuple(config["input_shape"])
    if image:
        pixels = data.model_pixels(image, shape)
        source = f"{image}, converted like the training data"
    else:
        digit = synthetic_digit(*shape[1:])
        pixels, source = np.repeat(digit[None], shape[0], axis=0), "a synthetic drawn 7"
    shown = pixels[0] if shape[0] == 1 else pixels.transpose(1, 2, 0)
    report.add(
        viz.plot_images([("input", shown)]),
        "input.png",
        f"The input image: {source} ({shape[1]}x{shape[2]}).",
    )
    x = data.normalize_pixels(pixels[None], config["mean"], config["std"])
    maps, out = feature_maps(model, x)
    for index, (name, module, output) in enumerate(maps):
        if output.ndim == 3:
            report.add(
                viz.plot_feature_maps(output, f"layer {name} {type(module).__name__}"),
                f"features_{index:02d}_{name or 'model'}.png",
                f"Feature maps of layer {name} ({module!r}) for the input image, "
                f"shape {output.shape}.",
            )
    classes = [str(c) for c in config.get("classes", range(len(out)))]
    if out.ndim != 1 or len(out) != len(classes):
        return ""
    probabilities = F.softmax(Tensor(out[None]), dim=1).array[0]
    best = int(probabilities.argmax())
    line = f"predicted {classes[best]} ({probabilities[best]:.1%})"
    report.add(
        viz.plot_probabilities(probabilities, classes, line),
        "prediction.png",
        f"The model's class probabilities for the input image: {line}.",
    )
    return line


def _training_pictures(
    report: Report, model: Module, config: dict, run_dir: Path, evaluate: bool
) -> None:
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        epochs = json.loads(metrics.read_text())["epochs"]
        if epochs:
            report.add(
                viz.plot_learning_curves(epochs),
                "learning_curves.png",
                "Loss and accuracy per epoch, training and validation.",
            )
    if evaluate:
        matrix = confusion_matrix(model, config)
        report.add(
            viz.plot_confusion(matrix, config["classes"]),
            "confusion.png",
            f"Confusion matrix on the test set: accuracy "
            f"{np.trace(matrix) / max(matrix.sum(), 1):.4f}.",
        )
    elif (run_dir / "confusion.png").exists():
        shutil.copyfile(run_dir / "confusion.png", report.folder / "confusion.png")
        report.items.append(
            (
                "figure",
                "confusion.png",
                "Confusion matrix on the test set (from `kernelab evaluate`).",
            )
        )
    else:
        report.text(
            "Confusion matrix",
            "<p>Not computed: run <code>kernelab inspect RUN "
            "--evaluate</code> or <code>kernelab evaluate RUN</code>.</p>",
        )


def inspect_run(
    run: str | Path,
    image: str | None = None,
    out: str | Path | None = None,
    evaluate: bool = False,
    data_dir: str | None = None,
) -> Path:
    """Write every picture of a run into ``out`` (default ``RUN/inspect``); the index.html path."""
    model, config, run_dir = runs.load_run(run)
    if data_dir:
        config["data_dir"] = data_dir
    report = Report(Path(out) if out else run_dir / "inspect")
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv2d)]
    prediction = _image_pictures(report, model, config, image)
    _kernel_pictures(report, convs)
    if convs:
        _frequency_section(report, *convs[0])
    _training_pictures(report, model, config, run_dir, evaluate)
    summary = (
        f"<p>Run folder {html.escape(str(run_dir))}: <code>{html.escape(config['arch'])}</code>"
    )
    report.items.insert(
        0, ("text", "Model", summary + (f"; {prediction}" if prediction else "") + ".</p>")
    )
    return report.write_index(f"kernelab inspect: {run_dir.name}")
