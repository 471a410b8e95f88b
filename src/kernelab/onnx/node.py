"""One ONNX node as the loader sees it, and what every reader of a node shares.

:class:`Step` is a node (inputs, outputs, attributes, the child layer that runs it, if any);
:func:`fail` is the error that names it; :func:`window_settings` reads the window of a
convolution or pooling node. ``load.py``, ``load_layers.py`` and ``load_ops.py`` use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import ONNXError, one_line


@dataclass
class Step:
    """One node: what it reads and writes, its attributes, and the child that runs it."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None


def fail(step: Step, message: str) -> ONNXError:
    """The error naming ``step``, as one line of at most 240 characters (a file's names and
    shapes can be any length). It names its node, so no module adds its own name in front."""
    error = ONNXError(one_line(f"ONNX node '{step.name[:60]}' ({step.op}): {message}", 240))
    error.layer = step.name  # type: ignore[attr-defined]
    return error


def window_settings(step: Step, spatial: tuple, kernel: tuple) -> tuple:
    """(stride, dilation, ((top, bottom), (left, right))) with auto_pad resolved.

    SAME_UPPER/SAME_LOWER pad ``(⌈in/s⌉ − 1)·s + d·(k − 1) + 1 − in`` in total, the odd cell
    after (UPPER) or before (LOWER); with stride 1 that is ``d·(k − 1)``, whatever the size.
    """
    a = step.attrs
    stride = tuple(a.get("strides", (1, 1)))
    dilation = tuple(a.get("dilations", (1, 1)))
    mode = a.get("auto_pad", "NOTSET")
    if mode == "NOTSET":
        t, l, b, r = a.get("pads", (0, 0, 0, 0))
        return stride, dilation, ((t, b), (l, r))
    if mode == "VALID":
        return stride, dilation, ((0, 0), (0, 0))
    pads = []
    for size, k, s, d in zip(spatial, kernel, stride, dilation, strict=True):
        if s == 1:
            total = d * (k - 1)
        elif size is None:
            raise fail(step, f"auto_pad={mode} with stride {s} needs a known input size")
        else:
            total = max(0, (-(-size // s) - 1) * s + d * (k - 1) + 1 - size)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if mode == "SAME_UPPER" else (large, small))
    return stride, dilation, tuple(pads)
