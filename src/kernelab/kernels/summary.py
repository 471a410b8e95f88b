"""A model layer by layer: output shape, parameters, multiply-accumulates, receptive field.

:func:`summary` runs one forward pass on a zero batch of one image (eval mode, no graph) and
records every leaf module's call in order, so what it reports is what the model computes.

Receptive field, per spatial axis, with the standard recurrences over a window of size k,
stride s, dilation d and padding p before (top or left), ``k_eff = d·(k − 1) + 1``::

    jump   j_out     = j_in · s                            (input pixels between neighbours)
    size   r_out     = r_in + (k_eff − 1) · j_in           (input pixels one output sees)
    start  start_out = start_in + ((k_eff − 1)/2 − p) · j_in

``start`` is the centre of the first output's receptive field in input pixel coordinates
(pixel centres at 0, 1, 2, ...); an input pixel has r = 1, j = 1, start = 0. Layers that keep
the spatial layout (activations, batch norm, dropout) change none of the three; after a
flatten (or a layer that reshapes in a way the recurrences do not describe) none is reported.
Each layer's window and MACs come from its entry in :mod:`kernelab.nn.layers`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..core.dtypes import get_default_dtype
from ..core.tensor import Tensor
from ..nn import Module
from ..nn.layers import entry

Pair = tuple[int, int]
Field = tuple[Pair, Pair, tuple[float, float]]  # (size, jump, start), each (h, w)


@dataclass(frozen=True)
class LayerSummary:
    """One call of a leaf module; shapes without the batch axis, MACs per image.

    ``params`` counts the parameters the layer stores (for a symmetric convolution, its free
    parameters); ``full_params`` counts them as if every kernel were unconstrained.
    ``receptive_field``, ``jump`` and ``start`` are (h, w) pairs, None once not spatial.
    ``kind`` is the layer's kind in :mod:`kernelab.nn.layers` ("conv", "maxpool", ...);
    ``kernel_shape`` is a convolution's weight shape or a pooling window (kH, kW), else None.
    """

    name: str
    layer: str
    kind: str
    kernel_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    frozen: int
    full_params: int
    macs: int
    receptive_field: Pair | None
    jump: Pair | None
    start: tuple[float, float] | None


@dataclass(frozen=True)
class Summary:
    """``rows`` (one :class:`LayerSummary` per call) and the totals; ``str()`` is a table."""

    rows: list[LayerSummary]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    frozen: int
    full_params: int
    macs: int

    def __str__(self) -> str:
        return _render(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The table as HTML: what a notebook shows for a summary."""
        return render_html(self)


def summary(model: Module, input_shape: tuple[int, ...]) -> Summary:
    """Summarise ``model`` for inputs of ``input_shape`` (without the batch axis: C, H, W)."""
    input_shape = tuple(int(n) for n in input_shape)
    names = {id(m): name for name, m in model.named_modules()}
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    calls: list[tuple[Module, Tensor, object]] = []
    modes = [(m, m.training) for m in model.modules()]
    for module in leaves:
        _record_calls(module, calls)
    try:
        model.eval()
        x = Tensor(np.zeros((1,) + input_shape, dtype=_input_dtype(model)))
        with no_grad():
            out = model(x)
    finally:
        for module in leaves:
            module.__dict__.pop("forward", None)
        for module, training in modes:
            object.__setattr__(module, "training", training)
    fields: dict[int, Field | None] = {id(x): ((1, 1), (1, 1), (0.0, 0.0))}
    rows = [_row(m, names.get(id(m), ""), x_in, y, fields) for m, x_in, y in calls]
    params = list(model.parameters())
    trainable = sum(p.array.size for p in params if p.requires_grad)
    total = sum(p.array.size for p in params)
    return Summary(
        rows=rows,
        input_shape=input_shape,
        output_shape=tuple(out.shape[1:]) if isinstance(out, Tensor) else (),
        params=total,
        trainable=trainable,
        frozen=total - trainable,
        full_params=total + sum(_extra_kernel_params(m) for m in model.modules()),
        macs=sum(row.macs for row in rows),
    )


def guess_input_shape(model: Module) -> tuple[int, ...] | None:
    """The input a model most likely takes, from its first convolution or dense layer.

    A convolution with one input channel gets MNIST's 28x28, any other CIFAR's 32x32 (the
    sizes kernelab's datasets have); a dense layer its features. None without either.
    """
    for module in model.modules():
        kind = entry(module).kind
        if kind == "conv":
            channels = module.in_channels
            return (channels, 28, 28) if channels == 1 else (channels, 32, 32)
        if kind == "linear":
            return (module.in_features,)
    return None


def html_summary(model: Module, input_shape: tuple[int, ...] | None = None) -> str | None:
    """:func:`summary` as HTML, for ``input_shape`` or the guessed one, headed by the shape.

    None when no input shape fits: a notebook then shows the model's text form instead (a
    display method that raised would print a traceback in place of the model).
    """
    input_shape = input_shape or guess_input_shape(model)
    if input_shape is None:
        return None
    try:
        table = summary(model, input_shape)
    except Exception:  # any failure of the forward pass means only "no table for this shape"
        return None
    title = f"{type(model).__name__} for inputs of shape {tuple(input_shape)}"
    return f"<p><b>{html.escape(title)}</b></p>{render_html(table)}"


Module.notebook_view = html_summary  # a model in a notebook shows this (see Module._repr_html_)


def _record_calls(module: Module, calls: list) -> None:
    """Shadow ``module.forward`` with one that notes (module, input, output); removed after."""
    original = module.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((module, args[0] if args else None, out))
        return out

    object.__setattr__(module, "forward", forward)


def _input_dtype(model: Module) -> np.dtype:
    for param in model.parameters():
        if param.array.dtype.kind == "f":
            return param.array.dtype
    return get_default_dtype()


def _extra_kernel_params(module: Module) -> int:
    """Parameters a symmetric convolution saves: full kernel minus its free parameters."""
    if getattr(module, "symmetry", None) is None:
        return 0
    return math.prod(module.weight.shape) - module.weight_free.array.size


def _row(module: Module, name: str, x, y, fields: dict) -> LayerSummary:
    own = list(module.parameters())
    trainable = sum(p.array.size for p in own if p.requires_grad)
    total = sum(p.array.size for p in own)
    y_shape = tuple(y.shape) if isinstance(y, Tensor) else ()
    x_shape = tuple(x.shape) if isinstance(x, Tensor) else ()
    field = fields.get(id(x)) if len(x_shape) == 4 and len(y_shape) == 4 else None
    if field is not None:
        field = _next_field(field, entry(module).window(module, x_shape, y_shape))
    if isinstance(y, Tensor):
        fields[id(y)] = field
    size, jump, start = field if field is not None else (None, None, None)
    return LayerSummary(
        name=name,
        layer=type(module).__name__,
        kind=entry(module).kind,
        kernel_shape=_kernel_shape(module, x_shape, y_shape),
        output_shape=y_shape[1:],
        params=total,
        trainable=trainable,
        frozen=total - trainable,
        full_params=total + _extra_kernel_params(module),
        macs=entry(module).macs(module, x_shape, y_shape),
        receptive_field=size,
        jump=jump,
        start=start,
    )


def _kernel_shape(module: Module, x_shape, y_shape) -> tuple[int, ...] | None:
    """A convolution's weight shape (C_out, C_in/groups, kH, kW); a pooling window (kH, kW)."""
    kind = entry(module).kind
    if kind == "conv":
        return tuple(module.weight.shape)
    if kind in ("maxpool", "avgpool", "adaptivepool") and len(x_shape) == len(y_shape) == 4:
        window = entry(module).window(module, x_shape, y_shape)
        return tuple(k for k, _, _, _ in window) if isinstance(window, tuple) else None
    return None


def _next_field(field: Field, window) -> Field | None:
    if window is None:
        return None
    if window == "same":
        return field
    size, jump, start = field
    new_size, new_jump, new_start = [], [], []
    for a, (k, s, d, p) in enumerate(window):
        k_eff = d * (k - 1) + 1
        new_size.append(size[a] + (k_eff - 1) * jump[a])
        new_start.append(start[a] + ((k_eff - 1) / 2 - p) * jump[a])
        new_jump.append(jump[a] * s)
    return tuple(new_size), tuple(new_jump), tuple(new_start)


# ---- text
def _axes(value) -> str:
    """(5, 5) → "5", (5, 3) → "5x3", None → "-"."""
    if value is None:
        return "-"
    h, w = (f"{v:g}" for v in value)
    return h if h == w else f"{h}x{w}"


def _columns(s: Summary) -> list[tuple[str, Callable[[LayerSummary], str]]]:
    """(header, row → cell text) of the table's number columns, the optional ones only when
    some layer needs them."""
    symmetric = any(r.full_params != r.params for r in s.rows)
    frozen = any(r.frozen for r in s.rows)
    columns = [("Output shape", lambda r: str(r.output_shape)), ("Params", _count("params"))]
    columns += [("Full kernels", _count("full_params"))] * symmetric
    columns += [("Frozen", _count("frozen"))] * frozen
    columns += [("MACs", _count("macs"))]
    columns += [
        ("Receptive field", lambda r: _axes(r.receptive_field)),
        ("Jump", lambda r: _axes(r.jump)),
        ("Start", lambda r: _axes(r.start)),
    ]
    return columns


def _count(name: str) -> Callable[[LayerSummary], str]:
    return lambda row: f"{getattr(row, name):,}"


def _totals(s: Summary) -> list[str]:
    lines = [f"Params: {s.params:,} (trainable {s.trainable:,}, frozen {s.frozen:,})"]
    if s.full_params != s.params:
        lines.append(
            f"Params with full kernels: {s.full_params:,} (symmetry saves "
            f"{s.full_params - s.params:,})"
        )
    lines.append(f"MACs per image: {s.macs:,}")
    lines.append(f"Input shape: {s.input_shape} -> output shape: {s.output_shape}")
    return lines


def _render(s: Summary) -> str:
    columns = _columns(s)
    header = ["Layer"] + [name for name, _ in columns]
    table = [header]
    for r in s.rows:
        table.append([f"{r.name} {r.layer}".strip()] + [cell(r) for _, cell in columns])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])

    rule = "-" * len(line(header))
    lines = [line(header), rule] + [line(cells) for cells in table[1:]] + [rule]
    return "\n".join(lines + _totals(s))


def render_html(s: Summary) -> str:
    """The summary as an HTML table (every name escaped), the totals below it.

    Beside the text table's columns it names each layer's kind and its kernel shape (a
    convolution's weight, a pooling window); MACs are per image (one MAC is two FLOPs).
    """
    columns = [("Kernel", lambda r: "-" if r.kernel_shape is None else str(r.kernel_shape))]
    columns += _columns(s)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in ["Layer", "Kind"])
    head += "".join(f'<th style="text-align:right">{html.escape(n)}</th>' for n, _ in columns)
    body = []
    for r in s.rows:
        cells = [f"<td><code>{html.escape(r.name)}</code> {html.escape(r.layer)}</td>"]
        cells.append(f"<td>{html.escape(r.kind)}</td>")
        cells += [
            f'<td style="text-align:right">{html.escape(cell(r))}</td>' for _, cell in columns
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    totals = "<br>".join(html.escape(line) for line in _totals(s))
    return (
        '<div class="kernelab-summary"><table>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<p>{totals}</p></div>"
    )
