"""How a tensor prints: PyTorch's format, character for character, and ``set_printoptions``.

``repr(t)`` reads ``tensor([[ 0.1234, -1.5000], ...], dtype=kernelab.float64, grad_fn=<Mul>)``,
the text ``torch.Tensor`` prints with ``torch.`` read as ``kernelab.``. The rules, as PyTorch
has them:

- One format for all the elements of a floating tensor, chosen from its finite non-zero values:
  integers only print as ``1.``; a largest-to-smallest magnitude ratio over 1000, a value over
  1e8 or one under 1e-4 switch to scientific notation (``1.0000e-05``); otherwise ``precision``
  digits (``0.1235``). Elements are right-aligned to the widest; nan, inf and -0. print as such.
- Past ``threshold`` elements, only ``edgeitems`` rows at each end of every dimension print,
  with ``...`` between, and the format is chosen from those alone.
- A row wraps to stay within ``linewidth``; nested rows are indented under their bracket, with
  one blank line between blocks per dimension above the second.
- Suffixes: ``size=`` for an empty tensor that is not 1-D; ``dtype=`` for a dtype other than
  the default float dtype, int64 and bool (any dtype but the default one for an empty tensor);
  ``grad_fn=<Name>`` or ``requires_grad=True``. A suffix that does not fit on the last line
  starts a new one; the measure takes the dtype's name as PyTorch's (``torch.float64``), so
  lines break where PyTorch's do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .dtypes import bool_, get_default_dtype, int64


@dataclasses.dataclass
class PrintOptions:
    """What ``set_printoptions`` sets; ``sci_mode=None`` lets each tensor choose."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}

_options = PrintOptions()


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set how tensors print, as ``torch.set_printoptions``.

    ``profile`` ("default", "short" or "full", which never summarises) resets the four numbers
    first; the others then override it. ``sci_mode`` is set on every call: True or False forces
    scientific notation on or off, None (the default) lets each tensor choose.
    """
    for name, value in PROFILES.get(profile, {}).items():
        setattr(_options, name, value)
    given = {
        "precision": precision,
        "threshold": threshold,
        "edgeitems": edgeitems,
        "linewidth": linewidth,
    }
    for name, value in given.items():
        if value is not None:
            setattr(_options, name, value)
    _options.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current options, as keywords ``set_printoptions`` takes back."""
    return dataclasses.asdict(_options)


def tensor_repr(array: np.ndarray, autograd_suffix: str | None = None) -> str:
    """The text PyTorch prints for a CPU tensor holding ``array``.

    ``autograd_suffix`` is ``"grad_fn=<Name>"``, ``"requires_grad=True"`` or None.
    """
    options = dataclasses.replace(_options)
    prefix = "tensor("
    suffixes = []
    # Measured as PyTorch's "torch.<dtype>", so lines break where PyTorch's do; named at the end.
    dtype_suffix = f"dtype=torch.{array.dtype.name}"
    if array.size == 0:
        if array.ndim != 1:
            suffixes.append(f"size={tuple(array.shape)}")
        if array.dtype != get_default_dtype():
            suffixes.append(dtype_suffix)
        body = "[]"
    else:
        if not options.edgeitems:
            suffixes.append(f"size={tuple(array.shape)}")
        if array.dtype not in (get_default_dtype(), int64, bool_):
            suffixes.append(dtype_suffix)
        summarize = array.size > options.threshold
        shown = _shown_elements(array, options.edgeitems) if summarize else array
        formatter = _Formatter(shown, options)
        body = _nested(array, len(prefix), summarize, formatter, options)
    if autograd_suffix is not None:
        suffixes.append(autograd_suffix)
    text = _with_suffixes(prefix + body, suffixes, len(prefix), options.linewidth)
    return text.replace("dtype=torch.", "dtype=kernelab.")


class _Formatter:
    """One format for every element of a tensor, and the width they are right-aligned to."""

    def __init__(self, array: np.ndarray, options: PrintOptions):
        self.precision = options.precision
        self.floating = array.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        flat = array.reshape(-1)  # (numel,)
        if not self.floating:
            self.width = max([1] + [len(str(value)) for value in flat.tolist()])
            return
        values = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if values.size == 0:
            return
        magnitudes = np.abs(values)
        low, high = magnitudes.min(), magnitudes.max()
        self.int_mode = bool(np.all(values == np.ceil(values)))
        if options.sci_mode is None:
            self.sci_mode = bool(high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4)
        else:
            self.sci_mode = options.sci_mode
        values = values.tolist()
        if self.sci_mode:
            lengths = [len(f"{value:.{self.precision}e}") for value in values]
        elif self.int_mode:  # the "." that marks a float counts too
            lengths = [len(f"{value:.0f}") + 1 for value in values]
        else:
            lengths = [len(f"{value:.{self.precision}f}") for value in values]
        self.width = max(lengths)

    def format(self, value: Any) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:.{self.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("." if math.isfinite(value) else "")
        else:
            text = f"{value:.{self.precision}f}"
        return text.rjust(self.width)


def _shown_elements(array: np.ndarray, edgeitems: int) -> np.ndarray:
    """The elements a summarised tensor prints, which alone choose its format: the first and
    last ``edgeitems`` along every dimension longer than twice that. With ``edgeitems=0``, a
    vector keeps all of its elements (as ``v[:0]`` and ``v[-0:]`` do) and a matrix none."""
    if array.ndim == 0:
        return array
    if edgeitems == 0:
        return array if array.ndim == 1 else array.reshape(-1)[:0]
    for axis, length in enumerate(array.shape):
        if length > 2 * edgeitems:
            ends = np.r_[0:edgeitems, length - edgeitems : length]
            array = np.take(array, ends, axis=axis)
    return array


def _nested(
    array: np.ndarray, indent: int, summarize: bool, formatter: _Formatter, options: PrintOptions
) -> str:
    """The bracketed text of ``array``, its first line starting at column ``indent``."""
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return _vector(array, indent, summarize, formatter, options)
    edge = options.edgeitems
    if summarize and len(array) > 2 * edge:
        rows = [_nested(array[i], indent + 1, summarize, formatter, options) for i in range(edge)]
        rows.append("...")
        rows += [
            _nested(array[i], indent + 1, summarize, formatter, options)
            for i in range(len(array) - edge, len(array))
        ]
    else:
        rows = [_nested(row, indent + 1, summarize, formatter, options) for row in array]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _vector(
    array: np.ndarray, indent: int, summarize: bool, formatter: _Formatter, options: PrintOptions
) -> str:
    """A 1-D tensor's elements, as many on a line as fit in ``linewidth`` (at least one)."""
    per_line = max(1, math.floor((options.linewidth - indent) / (formatter.width + 2)))
    edge = options.edgeitems
    if summarize and not edge:
        items = ["..."]
    elif summarize and len(array) > 2 * edge:
        items = [formatter.format(value) for value in array[:edge].tolist()]
        items.append(" ...")
        items += [formatter.format(value) for value in array[-edge:].tolist()]
    else:
        items = [formatter.format(value) for value in array.tolist()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _with_suffixes(text: str, suffixes: list[str], indent: int, linewidth: int) -> str:
    """``text`` and its suffixes, each on the last line while it fits in ``linewidth`` (the
    measure counts two characters more than the line holds, as PyTorch's does), else on a new
    line under the first bracket; then the closing parenthesis."""
    last_line = len(text) - text.rfind("\n") + 1
    parts = [text]
    for suffix in suffixes:
        if last_line + len(suffix) + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line += len(suffix) + 2
    return "".join(parts) + ")"
