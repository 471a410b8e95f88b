"""2-D convolution and its exact gradient.

Like every CNN library, a convolution layer computes a *cross-correlation*: the kernel slides
over the input unflipped. For input ``x`` (N, C_in, H, W) and kernel ``w``
(C_out, C_in/groups, kH, kW)::

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * xp[n, g·C_in/groups + c,
                                                            i·sh + p·dh, j·sw + q·dw]

where ``xp`` is the zero-padded input and ``g`` the group of output channel ``o``. Each
output pixel sees a window of ``dh·(kH−1)+1`` by ``dw·(kW−1)+1`` input pixels, so
``OH = (H + top + bottom − dh·(kH−1) − 1) // sh + 1`` (likewise ``OW``). The settings in
canonical form, these sizes and the windows' slices live in ``geometry.py``.

The backward is the pair of correlations the literature describes:

* kernel gradient = correlation of the input with the output gradient:
  ``dw[o, c, p, q] = sum_{n, i, j} dy[n, o, i, j] · xp[n, c, i·sh + p·dh, j·sw + q·dw]``;
* input gradient = *full* convolution of the output gradient (spread out by the stride) with
  the 180°-rotated kernel, i.e. a transposed convolution: every kernel offset (p, q) sends
  ``w[:, :, p, q]ᵀ · dy`` back to the input pixels it read; then the padding is cut off.

Inside, arrays are channel-major — (C, N, H, W) memory behind (N, C, H, W) views — so the
columns of a group are one 2-D matrix and a product's result is already the output's memory.
The algorithm is selected by shape (``conv_algorithms.choose``); all loop over the kH·kW kernel
offsets, never over pixels:

* **GEMM** (the general case): *im2col* copies, offset by offset, the strided slice each
  kernel cell meets into the columns (C_in/G·kH·kW, N·OH·OW), and the layer is one BLAS product
  per group: ``y = W · cols``, ``dw = dy · colsᵀ``, ``dcols = Wᵀ · dy`` followed by *col2im*
  (the adjoint of im2col: each column entry added back onto its pixel). The columns are built
  for a few samples at a time in one reused workspace, and rebuilt in the backward rather than
  kept: that costs one copy, saves storing kH·kW copies of the input, and keeps them in cache.
* **direct GEMM** (1x1 kernel, stride 1): the channel-major input is its own column matrix,
  so there is no im2col and no col2im.
* **pointwise** (1x1 kernel, no padding, any stride): a batch-first input is not transposed
  at all: one product per sample in its own layout (``conv_algorithms.Pointwise``); a
  channel-major one runs the direct GEMM (at a stride on a copy of the pixels it reads).
* **depthwise** (one input channel per group): G products of a single row each would be all
  overhead, so each offset is a broadcast multiply-add of a slice by the per-channel taps.
* **direct** (compiled path only; one group, wide layers, kernels from 2x2): no column
  matrix and no padded copy: it takes the input unpadded (``unpadded_input``) and frames one
  sample at a time in each thread's cache. Generated micro-kernels
  (``conv_direct_compiled.py``) hold a block of output channels × output columns in vector
  registers while they walk the input channels and the kernel; the input gradient is the
  same correlation of the output gradient with the rotated kernel. Each pass runs there only
  where it measured fastest; the stride-1 3x3 layers' input gradient runs Winograd's F(2x2,
  3x3) (``conv_winograd.py``), the rest the GEMM's (the routing per pass:
  ``conv_direct_compiled.DirectCompiled``).

The GEMM's passes have compiled twins (``conv_compiled.py``): the same columns and the same
products, the batch's sample ranges spread over threads; their col2im, like the direct input
gradient, writes the input gradient without the padding and in the layout the input came in
(batch-first for a network's input, which then needs no copy to become its ``.grad``). The
depthwise one has a compiled twin of its own (``depthwise_compiled.py``): loops over
(channel, sample) planes, vectorised along the output row.

Measured and not used: the direct convolution as a plain numba loop nest (numba keeps an
array of accumulators in memory, not registers: ~25 GFLOP/s where the products reach 40–110;
the generated micro-kernels' scalars are what LLVM keeps in registers); on one NumPy thread, the
input gradient as an im2col of the padded output gradient times the rotated kernel (a bigger
copy and a slower product than col2im), FFT convolution (the transforms alone cost about what
the 5x5 products do at these sizes), and, for stride 1, an output grid as wide as the padded
input (every offset's columns one contiguous slice, but Wp/OW − 1 = 14–29% more product work
and no faster a copy) or its zero-copy form (kH·kW products with K = C_in on shifted views,
each summed into the output: slower).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core import jit
from ..core.errors import DTypeError, ShapeError
from .arithmetic import require_dtypes
from .conv_algorithms import EmptyBatch, choose, contiguous, split_copy
from .geometry import ConvGeometry, Padding, conv_geometry


def pad(x: np.ndarray, padding: Padding, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of an (N, C, H, W) array (no copy when there is nothing to add).
    For the algorithms that read the padded frame (the GEMM's im2col, Winograd's, the NumPy
    path); the direct convolution frames its input itself, a sample at a time.

    The border strips are filled and the input copied inside, each cell written once (what
    ``np.pad`` does, without its per-axis passes: 20% faster at conv2's 32x64x14x14). The
    result is C-contiguous whatever x's layout: a convolution pads its input as (C, N, H, W),
    so the padded copy is channel-major memory. A large copy is split along the second axis
    between the threads (:func:`split_copy`). On the compiled path a float input that is
    C-contiguous, or the channel-major view of a batch-first array (a network's input), is
    copied plane by plane (``conv_compiled.pad_planes``): NumPy's copy of 32-pixel rows
    spends most of its time between them.
    """
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    a, b, h, w = x.shape
    xp = np.empty((a, b, top + h + bottom, left + w + right), x.dtype)
    fast = jit.twin(".conv_compiled", __package__)
    batch_first = x.transpose(1, 0, 2, 3)  # (B, A, H, W): C-contiguous if x is its view
    planes = x.flags.c_contiguous or batch_first.flags.c_contiguous
    if fast is not None and planes and x.dtype in (np.float32, np.float64):
        source, swapped = (x, False) if x.flags.c_contiguous else (batch_first, True)

        def fill(start, stop):
            fast.pad_planes(source, top, left, x.dtype.type(value), xp, start, stop, swapped)

    else:

        def fill(start, stop):
            part = xp[:, start:stop]  # (A, chunk, Hp, Wp)
            part[:, :, :top], part[:, :, top + h :] = value, value
            inside = part[:, :, top : top + h]  # (A, chunk, H, Wp): the rows holding the input
            inside[..., :left], inside[..., left + w :] = value, value
            inside[..., left : left + w] = x[:, start:stop]

    split_copy(fill, b, xp.nbytes)
    return xp


def unpad(x: np.ndarray, padding: Padding) -> np.ndarray:
    """The inverse of :func:`pad`: a view without the padded rows and columns."""
    (top, bottom), (left, right) = padding
    return x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]


def check_conv_input(x_shape, w_shape, b_shape, geometry: ConvGeometry) -> None:
    """Raise a ShapeError that says what was expected and what was received."""
    if len(x_shape) != 4:
        hint = " (add a batch axis: x[None])" if len(x_shape) == 3 else ""
        raise ShapeError(f"expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}{hint}")
    if len(w_shape) != 4:
        raise ShapeError(f"expected a 4-D kernel (C_out, C_in/groups, kH, kW), got {w_shape}")
    groups, c_out, depth = geometry.groups, w_shape[0], w_shape[1]
    if c_out % groups:
        raise ShapeError(f"{c_out} output channels are not divisible by groups={groups}")
    if x_shape[1] != depth * groups:
        raise ShapeError(
            f"expected input with {depth * groups} channels (kernel depth {depth} x groups "
            f"{groups}), got shape {tuple(x_shape)}"
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


class Conv2d(Function):
    """Works channel-major inside — (C, N, H, W) memory, (N, C, H, W) views outside — so each
    group is one matrix product and outputs need no transposing copy."""

    @staticmethod
    def forward(ctx, x, w, b, geometry: ConvGeometry):
        algorithm = EmptyBatch if x.shape[0] == 0 else choose(geometry, w.shape)
        ctx.algorithm, ctx.input_size = algorithm, x.shape[2:]
        ctx.batch_first_input = x.flags.c_contiguous  # the input gradient's layout, if free
        xc = x.transpose(1, 0, 2, 3)  # (C_in, N, H, W)
        if not getattr(algorithm, "unpadded_input", False):  # else it frames x itself
            xc = pad(xc, geometry.padding)  # (C_in, N, Hp, Wp)
        y = ctx.algorithm.forward(ctx, xc, w, b, geometry)  # (C_out, N, OH, OW)
        return y.transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, gy):
        # (C_out, N, OH, OW): free when gy is channel-major (it is when the next layer was a
        # conv, a ReLU or a pool), else one copy that makes every product below faster
        gy_c = gy.transpose(1, 0, 2, 3)
        if not getattr(ctx.algorithm, "any_layout", False):
            gy_c = contiguous(gy_c)
        gxp, gw = ctx.algorithm.backward(ctx, gy_c)  # gxp: (C_in, N, Hp or H, Wp or W)
        gx = None if gxp is None else input_gradient(gxp, ctx.geometry, ctx.input_size)
        gb = getattr(ctx, "bias_gradient", None)  # an algorithm's own, else summed here
        if gb is None and ctx.needs_input_grad[2]:
            gb = bias_gradient(gy_c)
        return gx, gw, gb


def input_gradient(gxp: np.ndarray, geometry: ConvGeometry, size) -> np.ndarray:
    """The input gradient (N, C_in, H, W) from an algorithm's gxp (C_in, N, Hp, Wp), or
    (C_in, N, H, W) when the algorithm computed the input's pixels alone (H, W = ``size``),
    which saves a copy into a zero-framed array."""
    if tuple(gxp.shape[2:]) != tuple(size):
        gxp = unpad(gxp, geometry.padding)
    return gxp.transpose(1, 0, 2, 3)


def bias_gradient(gy: np.ndarray) -> np.ndarray:
    """Σ of the channel-major output gradient gy (C_out, N, OH, OW) over all but channels."""
    fast = jit.twin(".conv_compiled", __package__)
    if not gy.flags.c_contiguous:  # a channel-major view of batch-first memory (Pointwise)
        batch = gy.transpose(1, 0, 2, 3)  # (N, C_out, OH, OW)
        wide = np.float64 if gy.dtype == np.float32 else gy.dtype  # as channel_sums does
        return batch.sum(axis=(2, 3), dtype=wide).sum(axis=0).astype(gy.dtype)
    if fast is None:
        return gy.sum(axis=(1, 2, 3))
    gb = np.empty(gy.shape[0], gy.dtype)
    fast.channel_sums(gy.reshape(gy.shape[0], gy.shape[1], -1), gb)  # (C_out, N, OH·OW)
    return gb


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
        raise DTypeError(f"input dtype {input.dtype} differs from kernel dtype {weight.dtype}")
    if bias is not None and bias.dtype != weight.dtype:
        raise DTypeError(f"bias dtype {bias.dtype} differs from kernel dtype {weight.dtype}")
    require_dtypes("conv2d", weight, kinds="uifc")
    return Conv2d.apply(input, weight, bias, geometry=geometry)
