"""2-D convolution and its exact gradient.

Like every CNN library, a convolution layer computes a *cross-correlation*: the kernel slides
over the input unflipped. For input ``x`` (N, C_in, H, W) and kernel ``w``
(C_out, C_in/groups, kH, kW)::

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * xp[n, g·C_in/groups + c,
                                                            i·sh + p·dh, j·sw + q·dw]

where ``xp`` is the zero-padded input and ``g`` the group of output channel ``o``. Each
output pixel sees a window of ``dh·(kH−1)+1`` by ``dw·(kW−1)+1`` input pixels, so
``OH = (H + top + bottom − dh·(kH−1) − 1) // sh + 1`` (likewise ``OW``).

The forward gathers every window into a column (*im2col*: one strided, zero-copy window view,
then a single copy) and multiplies by the kernel matrix: one BLAS product per group.

The backward is the pair of correlations the literature describes:

* kernel gradient = correlation of the input with the output gradient:
  ``dw[o, c, p, q] = sum_{n, i, j} dy[n, o, i, j] · xp[n, c, i·sh + p·dh, j·sw + q·dw]``,
  i.e. the output gradient times the same columns the forward used;
* input gradient = *full* convolution of the output gradient (spread out by the stride) with
  the 180°-rotated kernel, i.e. a transposed convolution: every kernel offset (p, q) sends
  ``w[:, :, p, q]ᵀ · dy`` back to the input pixels it read. It is computed offset by offset
  (kH·kW strided slice additions, never a loop over pixels), then the padding is cut off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function
from ..errors import ShapeError

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


def same_padding(kernel: int, dilation: int) -> Pair:
    """PyTorch's "same": total ``d·(k−1)``, half before, the odd one out after (bottom/right)."""
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


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution but its values, in canonical form."""

    kernel_size: Pair
    stride: Pair
    padding: Padding
    dilation: Pair
    groups: int

    @property
    def window(self) -> Pair:
        """Extent of the dilated kernel on the input."""
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    def padded_size(self, height: int, width: int) -> Pair:
        (top, bottom), (left, right) = self.padding
        return height + top + bottom, width + left + right

    def output_size(self, height: int, width: int) -> Pair:
        hp, wp = self.padded_size(height, width)
        (eh, ew), (sh, sw) = self.window, self.stride
        return (hp - eh) // sh + 1, (wp - ew) // sw + 1


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


def pad(x: np.ndarray, padding: Padding, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of an (N, C, H, W) array (no copy when there is nothing to add)."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def unpad(x: np.ndarray, padding: Padding) -> np.ndarray:
    (top, bottom), (left, right) = padding
    return x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]


def windows(xp: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Zero-copy view of every receptive field: (A, B, OH, OW, kH, kW) for xp (A, B, H, W)."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    view = sliding_window_view(xp, geometry.window, axis=(2, 3))  # (A, B, H', W', eH, eW)
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def offsets(geometry: ConvGeometry, out_size: Pair):
    """For each kernel offset (p, q): the strided slices of the padded input it reads."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    oh, ow = out_size
    for p in range(kh):
        rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
        for q in range(kw):
            yield p, q, rows, slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)


def im2col(xp: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Columns of the channel-major padded input xp (C, N, H, W): (C·kH·kW, N·OH·OW).

    Row ``(c, p, q)`` holds what kernel cell (p, q) of channel c meets at every output pixel of
    every sample, so a whole layer is one matrix product with the (C_out, C·kH·kW) kernels.
    """
    c, n = xp.shape[:2]
    view = windows(xp, geometry)  # (C, N, OH, OW, kH, kW)
    oh, ow, kh, kw = view.shape[2:]
    cols = np.ascontiguousarray(view.transpose(0, 4, 5, 1, 2, 3))  # (C, kH, kW, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols: np.ndarray, padded_shape: tuple[int, ...], geometry: ConvGeometry) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    ``cols`` is (C, kH, kW, N, OH, OW); the result is the channel-major padded input's shape.
    """
    out = np.zeros(padded_shape, dtype=cols.dtype)  # (C, N, H, W)
    for p, q, rows, columns in offsets(geometry, cols.shape[-2:]):
        out[:, :, rows, columns] += cols[:, p, q]
    return out


def check_conv_input(x_shape, w_shape, b_shape, geometry: ConvGeometry) -> None:
    """Raise a ShapeError that says what was expected and what was received."""
    if len(x_shape) != 4:
        hint = " (add a batch axis: x[None])" if len(x_shape) == 3 else ""
        raise ShapeError(f"expected a 4-D input (N, C, H, W), got shape {x_shape}{hint}")
    if len(w_shape) != 4:
        raise ShapeError(f"expected a 4-D kernel (C_out, C_in/groups, kH, kW), got {w_shape}")
    groups, c_out, depth = geometry.groups, w_shape[0], w_shape[1]
    if c_out % groups:
        raise ShapeError(f"{c_out} output channels are not divisible by groups={groups}")
    if x_shape[1] != depth * groups:
        raise ShapeError(
            f"expected input with {depth * groups} channels (kernel depth {depth} x groups "
            f"{groups}), got shape {x_shape}"
        )
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ShapeError(f"expected a bias of shape ({c_out},), got {tuple(b_shape)}")
    hp, wp = geometry.padded_size(*x_shape[2:])
    eh, ew = geometry.window
    if eh > hp or ew > wp:
        raise ShapeError(
            f"kernel window {eh}x{ew} (kernel {w_shape[2]}x{w_shape[3]}, dilation "
            f"{geometry.dilation}) is larger than the padded input {hp}x{wp} "
            f"(input shape {x_shape})"
        )


def _grouped_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[g] @ b[g]`` for each group g, each one plain 2-D BLAS product (NumPy's stacked
    matmul is slower on transposed operands)."""
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])
    return out


class Conv2d(Function):
    """Works channel-major inside — (C, N, H, W) memory, (N, C, H, W) views outside — so each
    group is one matrix product and outputs need no transposing copy."""

    @staticmethod
    def forward(ctx, x, w, b, geometry: ConvGeometry):
        n, c_in, h, w_in = x.shape
        c_out, depth, kh, kw = w.shape
        g = geometry.groups
        oh, ow = geometry.output_size(h, w_in)
        xp = pad(x.transpose(1, 0, 2, 3), geometry.padding)  # (C_in, N, H, W)
        cols = im2col(xp, geometry).reshape(g, depth * kh * kw, n * oh * ow)
        kernels = w.reshape(g, c_out // g, depth * kh * kw)
        y = _grouped_matmul(kernels, cols).reshape(c_out, n, oh, ow)
        if b is not None:
            y += b.reshape(c_out, 1, 1, 1)
        ctx.cols, ctx.w, ctx.padded_shape, ctx.geometry = cols, w, xp.shape, geometry
        return y.transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, gy):
        cols, w, geometry = ctx.cols, ctx.w, ctx.geometry
        g, k = cols.shape[:2]
        c_out = w.shape[0]
        gy_c = gy.transpose(1, 0, 2, 3)  # (C_out, N, OH, OW), free when gy is channel-major
        gy_groups = gy_c.reshape(g, c_out // g, -1)  # (G, C_out/G, N·OH·OW)
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = gw = gb = None
        if need_w:  # correlation of the input with the output gradient
            gw = _grouped_matmul(gy_groups, cols.transpose(0, 2, 1)).reshape(w.shape)
        if need_b:
            gb = gy_c.sum(axis=(1, 2, 3))
        if need_x:  # transposed convolution: each offset sends w[:, :, p, q]ᵀ·dy back
            kernels = w.reshape(g, c_out // g, k)
            gcols = _grouped_matmul(kernels.transpose(0, 2, 1), gy_groups)  # (G, K, N·OH·OW)
            kh, kw = geometry.kernel_size
            gcols = gcols.reshape((-1, kh, kw) + gy_c.shape[1:])  # (C_in, kH, kW, N, OH, OW)
            gxp = col2im(gcols, ctx.padded_shape, geometry)
            gx = unpad(gxp, geometry.padding).transpose(1, 0, 2, 3)
        return gx, gw, gb


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D convolution (cross-correlation) of ``input`` with ``weight``, plus ``bias``.

    Shape:
        input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out,),
        output (N, C_out, OH, OW). ``padding``: int, pair, "valid", "same" or
        ``((top, bottom), (left, right))``.
    """
    geometry = conv_geometry(weight.shape[2:], stride, padding, dilation, groups)
    check_conv_input(input.shape, weight.shape, None if bias is None else bias.shape, geometry)
    if input.dtype != weight.dtype:
        raise TypeError(f"input dtype {input.dtype} differs from kernel dtype {weight.dtype}")
    if bias is not None and bias.dtype != weight.dtype:
        raise TypeError(f"bias dtype {bias.dtype} differs from kernel dtype {weight.dtype}")
    return Conv2d.apply(input, weight, bias, geometry=geometry)
