"""Where the windows of a convolution or a pooling fall: their settings and sizes, no values.

* **Settings in canonical form.** ``kernel_size``, ``stride`` and ``dilation`` become pairs
  (:func:`pair`); ``padding`` ("valid", "same", an int, a pair or
  ``((top, bottom), (left, right))``) becomes ``((top, bottom), (left, right))``
  (:func:`normalize_padding`, PyTorch's "same" in :func:`same_padding`). :func:`conv_geometry`
  does it all once and returns a :class:`ConvGeometry`; :func:`pool_geometry` does it for a
  pooling, ``ceil_mode`` included. Everything below them sees only that form.
* **Sizes**, per axis, for ``n`` input pixels, kernel ``k``, stride ``s``, dilation ``d`` and
  padding ``p0`` before, ``p1`` after: a window covers ``e = d·(k − 1) + 1`` input pixels
  (:func:`window_extent`) and there are ``⌊(n + p0 + p1 − e) / s⌋ + 1`` outputs
  (:func:`output_length`). Pooling's ``ceil_mode`` rounds up instead
  (:func:`pool_output_length`); :func:`pool_geometry` turns the windows that adds into extra
  bottom/right padding, so its geometry needs only the floor formula.
* **Windows**: the strided slice each kernel offset reads (:func:`offsets`, what the ops loop
  over), every window as one zero-copy view (:func:`windows`), the input pixels one output
  reads (:func:`window_coordinates`), how many cells of each window are counted
  (:func:`window_counts`), and adaptive pooling's bins (:func:`adaptive_bins`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core.errors import ShapeError

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def pair(value, name: str = "value") -> Pair:
    """``3`` → ``(3, 3)``; ``(3, 5)`` stays; anything else is a clear error."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def same_padding(kernel: int, dilation: int = 1) -> Pair:
    """PyTorch's "same" along one axis: ``(before, after)`` of total ``d·(k − 1)``.

    ``total // 2`` goes before, the rest after, so the odd cell of an even kernel is at the
    bottom or right. With stride 1 the output then has the input's size.
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def normalize_padding(padding, kernel_size: Pair, stride: Pair, dilation: Pair) -> Padding:
    """Turn every accepted padding form into ``((top, bottom), (left, right))``.

    Forms: an int, a pair ``(ph, pw)``, ``"valid"`` (none), ``"same"`` (output size equals
    input size; stride 1 only, as in PyTorch), or explicit ``((top, bottom), (left, right))``.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
            return (
                same_padding(kernel_size[0], dilation[0]),
                same_padding(kernel_size[1], dilation[1]),
            )
        raise ValueError(f"padding must be 'valid', 'same', an int or pairs, got {padding!r}")
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == 2
        and all(isinstance(p, (tuple, list)) for p in padding)
    ):
        (top, bottom), (left, right) = (pair(p, "padding") for p in padding)
    else:
        ph, pw = pair(padding, "padding")
        top, bottom, left, right = ph, ph, pw, pw
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return (top, bottom), (left, right)


def window_extent(kernel: int, dilation: int = 1) -> int:
    """Input pixels a dilated kernel spans along one axis: ``d·(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def output_length(padded: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """Outputs along an axis of ``padded`` input pixels, padding included.

    ``⌊(padded − e) / s⌋ + 1`` with ``e = d·(k − 1) + 1``: one per window start
    ``0, s, 2s, ...`` whose window ends inside. Less than 1 means the window does not fit.
    """
    return (padded - window_extent(kernel, dilation)) // stride + 1


def pool_output_length(
    size: int, kernel: int, stride: int, dilation: int, padding: Pair, ceil_mode: bool
) -> int:
    """PyTorch's number of pooling outputs along an axis of ``size`` input pixels.

    ``padding`` is ``(before, after)``. Without ``ceil_mode``, :func:`output_length`. With it,
    ``⌈(n + p0 + p1 − e) / s⌉ + 1``, less one when the last window would start in the
    after-padding (``(out − 1)·s ≥ n + p0``): a window may hang over the end, but it must
    start inside the input or its before-padding.
    """
    before, after = padding
    if not ceil_mode:
        return output_length(size + before + after, kernel, stride, dilation)
    span = size + before + after - window_extent(kernel, dilation)
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution (or a pooling) but its values, in canonical form."""

    kernel_size: Pair
    stride: Pair
    padding: Padding
    dilation: Pair
    groups: int

    @property
    def window(self) -> Pair:
        """Extent of the dilated kernel on the input: ``(dh·(kH − 1) + 1, dw·(kW − 1) + 1)``."""
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        return window_extent(kh, dh), window_extent(kw, dw)

    def padded_size(self, height: int, width: int) -> Pair:
        """``(H + top + bottom, W + left + right)``."""
        (top, bottom), (left, right) = self.padding
        return height + top + bottom, width + left + right

    def output_size(self, height: int, width: int, padded: bool = False) -> Pair:
        """(OH, OW) for an input of this size (``padded``: the size already has the padding).

        ``OH = ⌊(H + top + bottom − dh·(kH − 1) − 1) / sh⌋ + 1``, likewise OW.
        """
        hp, wp = (height, width) if padded else self.padded_size(height, width)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        return output_length(hp, kh, sh, dh), output_length(wp, kw, sw, dw)


def conv_geometry(kernel_size, stride=1, padding=0, dilation=1, groups: int = 1) -> ConvGeometry:
    """Validate and normalise the settings of a convolution (or pooling) once."""
    kernel_size, stride, dilation = (
        pair(kernel_size, "kernel_size"),
        pair(stride, "stride"),
        pair(dilation, "dilation"),
    )
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if min(value) < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    padding = normalize_padding(padding, kernel_size, stride, dilation)
    return ConvGeometry(kernel_size, stride, padding, dilation, groups)


def pool_geometry(
    x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, name="pool"
) -> ConvGeometry:
    """The geometry of a pooling of an (N, C, H, W) input, windows laid out as PyTorch does.

    ``stride`` defaults to the kernel size; ``padding`` (an int or a pair, on both sides) is
    at most half the kernel. ``ceil_mode`` adds the bottom/right cells the extra windows of
    :func:`pool_output_length` need, so the result's ``output_size`` is PyTorch's.
    ``name`` (the operation) starts the error messages.
    """
    if len(x_shape) != 4:
        raise ShapeError(f"{name}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    geometry = conv_geometry(kernel, stride, ((ph, ph), (pw, pw)), dilation)
    if ceil_mode:
        extra = []
        for axis, size in enumerate(x_shape[2:]):
            k, s, d, p = kernel[axis], stride[axis], geometry.dilation[axis], (ph, pw)[axis]
            out = pool_output_length(size, k, s, d, (p, p), ceil_mode=True)
            extra.append(max(0, (out - 1) * s + window_extent(k, d) - (size + 2 * p)))
        geometry = conv_geometry(
            kernel, stride, ((ph, ph + extra[0]), (pw, pw + extra[1])), dilation
        )
    hp, wp = geometry.padded_size(*x_shape[2:])
    eh, ew = geometry.window
    if eh > hp or ew > wp:
        raise ShapeError(
            f"{name}: window {eh}x{ew} is larger than the padded input {hp}x{wp} "
            f"(input shape {tuple(x_shape)})"
        )
    return geometry


def offsets(geometry: ConvGeometry, out_size: Pair):
    """For each kernel offset (p, q): the strided slices of the padded input it reads.

    Yields ``(p, q, rows, columns)``: output (i, j) meets padded pixel
    ``(i·sh + p·dh, j·sw + q·dw)``, so ``rows = p·dh : p·dh + sh·(OH − 1) + 1 : sh``.
    """
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    oh, ow = out_size
    for p in range(kh):
        rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
        for q in range(kw):
            yield p, q, rows, slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)


def windows(xp: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Zero-copy view of every receptive field: (A, B, OH, OW, kH, kW) for xp (A, B, H, W)."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    view = sliding_window_view(xp, geometry.window, axis=(2, 3))  # (A, B, H', W', eH, eW)
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def window_coordinates(geometry: ConvGeometry, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
    """The input rows (kH,) and columns (kW,) of the window output (y, x) reads.

    Row ``y·sh − top + p·dh`` for kernel row p (likewise columns): in input coordinates, so
    those outside ``[0, H)`` are padding.
    """
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    (top, _), (left, _) = geometry.padding
    return y * sh - top + np.arange(kh) * dh, x * sw - left + np.arange(kw) * dw


def window_counts(geometry: ConvGeometry, size: Pair, include_padding: bool) -> np.ndarray:
    """How many cells of each window are inside the input, (OH, OW) ints.

    With ``include_padding`` the padding asked for counts too: ``top`` rows on both sides and
    ``left`` columns on both sides; the extra bottom/right cells of ``ceil_mode`` never do
    (PyTorch's divisor for ``avg_pool2d``).
    """
    (top, _), (left, _) = geometry.padding
    h, w = size
    counted = np.zeros((1, 1) + geometry.padded_size(h, w), dtype=np.int64)
    if include_padding:
        counted[:, :, : h + 2 * top, : w + 2 * left] = 1
    else:
        counted[:, :, top : top + h, left : left + w] = 1
    return windows(counted, geometry).sum(axis=(-2, -1))[0, 0]


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Adaptive pooling's ``out`` bins of ``size`` pixels, as PyTorch cuts them.

    Bin i is ``[⌊i·size/out⌋, ⌈(i + 1)·size/out⌉)``: neighbouring bins may share a pixel.
    """
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]
