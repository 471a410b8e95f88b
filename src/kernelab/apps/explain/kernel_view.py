"""Kernels on the explain page: what each one passes (spectrum, class), its symmetry, and edits.

A kernel here is one output channel's weight ``w[o]`` (C_in/groups, kH, kW); a *slice* is
``w[o, c]`` (kH, kW), what it applies to input channel c. Frequency responses and classes come
from :mod:`kernelab.kernels.frequency`, symmetries from :mod:`kernelab.kernels.constraints`.
An edit replaces slices in a session's copy of the model; a reset copies them back from the
trained model.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from ...kernels import constraints, frequency
from ...kernels import designed as kernels
from .compute import ExplainError, Step, encode
from .source import Session, Source

SPECTRUM = 32  # the frequency grid of every response shown (a larger kernel's: its size)
EXACT = 1e-6  # relative residual below which a kernel counts as having a symmetry
# Hand-designed kernels offered for every layer; {s} is the layer's size, e.g. 5 or 5x3.
PRESETS = (
    "identity:{s}",
    "box:{s}",
    "gaussian:{s}",
    "sobel-x:{s}",
    "sobel-y:{s}",
    "prewitt-x:{s}",
    "prewitt-y:{s}",
    "scharr-x",
    "scharr-y",
    "laplacian:4:{s}",
    "laplacian:8",
    "log:{s}:1",
    "dog:{s}:1:1.6",
    "gabor:{s}:0",
    "gabor:{s}:0.785",
    "gabor:{s}:1.571",
    "sharpen",
    "emboss",
)


def conv_step(steps: list[Step], layer: int) -> Step:
    if not isinstance(layer, int) or not 0 <= layer < len(steps):
        raise ExplainError(
            f"layer {layer!r} is out of range: the model has layers 0 to {len(steps) - 1}"
        )
    step = steps[layer]
    if not isinstance(step.module, nn.Conv2d):
        raise ExplainError(
            f"layer {layer} ({type(step.module).__name__}) has no kernels; "
            "kernels belong to Conv2d layers"
        )
    return step


def check_kernel(conv: nn.Conv2d, layer: int, channel, in_channel=None) -> None:
    depth = conv.in_channels // conv.groups
    if not isinstance(channel, int) or not 0 <= channel < conv.out_channels:
        raise ExplainError(
            f"layer {layer} has kernels 0 to {conv.out_channels - 1}: "
            f"kernel {channel!r} is out of range"
        )
    if in_channel is not None and (not isinstance(in_channel, int) or not 0 <= in_channel < depth):
        raise ExplainError(
            f"layer {layer}'s kernels are {depth} deep: input channel "
            f"{in_channel!r} is out of range (0 to {depth - 1})"
        )


def symmetry_of(kernel: np.ndarray) -> dict:
    """Which symmetries of :mod:`kernelab.kernels.constraints` a kernel has, and the closest one.

    ``residual[s]`` = ‖W − symmetrize(W, s)‖ / ‖W‖: 0 for a kernel with symmetry s, 1 for one
    with the opposite (an antisymmetric kernel has residual 1 for ``point``).
    Shape: kernel (..., kH, kW).
    """
    w = np.asarray(kernel, dtype=np.float64)
    norm = np.linalg.norm(w)
    residual = {}
    for name in constraints.SYMMETRIES:
        if name == "rot90" and w.shape[-1] != w.shape[-2]:
            continue
        diff = np.linalg.norm(w - constraints.symmetrize(w, name))
        residual[name] = float(diff / norm) if norm > 0 else 0.0
    closest = min(residual, key=residual.get)
    return {
        "exact": [s for s, r in residual.items() if r <= EXACT],
        "closest": closest,
        "residual": residual,
    }


def grid(kernel: np.ndarray) -> int:
    """The side of a kernel's frequency grid: :data:`SPECTRUM`, or the kernel's larger side."""
    return max(SPECTRUM, *np.shape(kernel)[-2:])


def _describe(kernel: np.ndarray) -> dict:
    response = frequency.describe(frequency.frequency_response(kernel, grid(kernel)))
    return {"class": response.kind, "dc_gain": response.dc_gain, "centroid": response.centroid}


def presets(kernel_size: tuple[int, int]) -> list[str]:
    """The hand-designed kernel specs that fit a layer's kernel size (smaller ones padded)."""
    kh, kw = kernel_size
    size = f"{kh}" if kh == kw else f"{kh}x{kw}"
    found = []
    for template in PRESETS:
        spec = template.format(s=size)
        try:
            kernel_from_spec(spec, kernel_size)
        except ValueError:
            continue
        found.append(spec)
    return found


def kernel_from_spec(spec: str, kernel_size: tuple[int, int]) -> np.ndarray:
    """``kernels.get_kernel(spec)``, zero-padded around its centre if smaller than the layer's;
    the size is checked against the layer's before the kernel is built."""
    (kh, kw), (h, w) = kernel_size, kernels.kernel_spec_size(spec)
    dy, dx = kh - h, kw - w
    if dy < 0 or dx < 0 or dy % 2 or dx % 2:
        raise ValueError(
            f"kernel {spec!r} is {h}x{w}; this layer's kernels are {kh}x{kw} "
            "(write the size in the spec, e.g. sobel-x:5)"
        )
    kernel = kernels.get_kernel(spec)
    return np.pad(kernel, ((dy // 2, dy // 2), (dx // 2, dx // 2)))


def layer_kernels(steps: list[Step], session: Session, layer: int) -> dict:
    """Every kernel of a conv layer: pictures of its slices, depth mean, spectrum and class."""
    conv = conv_step(steps, layer).module
    weight = conv.materialize()  # (C_out, depth, kH, kW)
    spectra = np.stack([frequency.frequency_response(w, grid(w)) for w in weight])
    described = [frequency.describe(m) for m in spectra]
    return {
        "layer": layer,
        "shape": list(weight.shape),
        "symmetry": conv.symmetry,
        "presets": presets(conv.kernel_size),
        "slices": encode(weight.reshape(weight.shape[0], -1)),  # per kernel, all its slices
        "means": encode(weight.mean(axis=1)),  # (C_out, kH, kW)
        "spectra": encode(spectra),  # (C_out, SPECTRUM, SPECTRUM), DC at the centre
        "kernels": [
            {
                "class": r.kind,
                "dc_gain": r.dc_gain,
                "centroid": r.centroid,
                "symmetry": symmetry_of(w)["exact"],
                "edited": (layer, o) in session.edits,
            }
            for o, (r, w) in enumerate(zip(described, weight, strict=True))
        ],
        "classes": list(frequency.CLASSES),
    }


def trained_module(source: Source, step: Step) -> nn.Module:
    """The trained model's layer that ``step`` (of a session's copy) is a copy of."""
    return dict(source.model.named_modules())[step.name]


def kernel_detail(
    steps: list[Step], source: Source, session: Session, layer: int, channel: int
) -> dict:
    """One kernel's exact values, next to the trained ones, with spectra and symmetries."""
    step = conv_step(steps, layer)
    conv = step.module
    check_kernel(conv, layer, channel)
    kernel = conv.materialize()[channel].astype(np.float64)  # (depth, kH, kW)
    trained = trained_module(source, step).materialize()[channel].astype(np.float64)
    spectra = np.stack([frequency.frequency_response(s, grid(s)) for s in kernel])
    return {
        "layer": layer,
        "channel": channel,
        "values": kernel.tolist(),
        "trained": trained.tolist(),
        "mean": kernel.mean(axis=0).tolist(),
        "bias": None if conv.bias is None else float(conv.bias.array[channel]),
        "edited": session.edits.get((layer, channel)),
        "layer_symmetry": conv.symmetry,
        **_describe(kernel),
        "symmetry": symmetry_of(kernel),
        "spectrum": encode(frequency.frequency_response(kernel, grid(kernel))[None]),
        "slice_spectra": encode(spectra),
        "slices": [dict(_describe(s), symmetry=symmetry_of(s)["exact"]) for s in kernel],
    }


def edit_kernel(
    steps: list[Step],
    session: Session,
    layer: int,
    channel: int,
    in_channel: int | None = None,
    values=None,
    spec: str | None = None,
    match_scale: bool = False,
) -> str:
    """Replace slices of kernel ``channel`` in the session's model; returns what was done.

    ``values`` (kH, kW) numbers or ``spec`` (a :func:`kernels.get_kernel` spec) give the new
    slice; it goes to input channel ``in_channel``, or to every slice when None.
    ``match_scale`` rescales it to the L2 norm of the slice it replaces. A layer with a
    symmetry stores the symmetric part of the result (``Conv2d`` projects assignments).
    """
    conv = conv_step(steps, layer).module
    check_kernel(conv, layer, channel, in_channel)
    if (values is None) == (spec is None):
        raise ExplainError("send either 'values' (kH x kW numbers) or 'spec' (e.g. 'sobel-x')")
    kh, kw = conv.kernel_size
    if spec is not None:
        try:
            new = kernel_from_spec(str(spec), (kh, kw))
        except ValueError as error:
            raise ExplainError(str(error)) from None
        what = spec
    else:
        try:
            new = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExplainError("'values' must be rows of numbers") from None
        if new.shape != (kh, kw) or not np.isfinite(new).all() or np.abs(new).max() > 1e6:
            raise ExplainError(
                f"'values' must be {kh}x{kw} finite numbers of magnitude "
                f"at most 1e6, received shape {new.shape}"
            )
        what = "typed values"
    weight = conv.materialize()  # (C_out, depth, kH, kW)
    slices = range(weight.shape[1]) if in_channel is None else [in_channel]
    for c in slices:
        scale = 1.0
        if match_scale and np.linalg.norm(new) > 0:
            scale = float(np.linalg.norm(weight[channel, c]) / np.linalg.norm(new))
        weight[channel, c] = new * scale
    if conv.symmetry is None:
        np.copyto(conv.weight.array, weight)
    else:
        conv.weight = weight  # stores the symmetric part
    where = "all input channels" if in_channel is None else f"input channel {in_channel}"
    text = f"{what} on {where}" + (" (scaled to the trained norm)" if match_scale else "")
    if not np.allclose(conv.materialize()[channel], weight[channel], rtol=1e-5, atol=1e-6):
        text += f" (the layer keeps symmetry {conv.symmetry!r}: its symmetric part was stored)"
    before = session.edits.get((layer, channel))
    session.edits[(layer, channel)] = f"{before}; {text}" if before else text
    return text


def reset_kernels(
    steps: list[Step],
    source: Source,
    session: Session,
    layer: int | None = None,
    channel: int | None = None,
) -> int:
    """Copy trained kernels back: one kernel, one layer's, or every layer's. Returns how many."""
    layers = (
        [conv_step(steps, layer)]
        if layer is not None
        else [s for s in steps if isinstance(s.module, nn.Conv2d)]
    )
    count = 0
    for step in layers:
        conv = step.module
        if channel is not None:
            check_kernel(conv, step.index, channel)
        trained = dict(trained_module(source, step).named_parameters(recurse=False))
        for name, param in conv.named_parameters(recurse=False):
            if name not in ("weight", "weight_free"):
                continue  # only kernels are edited; biases stay as trained
            if channel is None:
                np.copyto(param.array, trained[name].array)
            else:
                param.array[channel] = trained[name].array[channel]
        for key in [k for k in session.edits if k[0] == step.index and channel in (None, k[1])]:
            del session.edits[key]
        count += conv.out_channels if channel is None else 1
    return count
