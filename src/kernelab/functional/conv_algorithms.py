"""The algorithms behind ``conv2d``, each a forward and its backward (see ``conv.py`` for the
maths and for when each one is chosen).

Everything here works on channel-major arrays that ``conv.py`` has already padded: the input
``xp`` is (C_in, N, Hp, Wp) and the output (C_out, N, OH, OW). In that layout the columns of
one group are a plain 2-D matrix, (C_in/G·kH·kW, N·OH·OW), so a whole group is one BLAS product
whose result is already the output's memory, and a batch range is a range of its columns.

On the compiled path (``conv_compiled.py``) a convolution runs its ranges of samples on
``kl.set_num_threads`` threads, each with BLAS on one thread and its own im2col and col2im as
numba kernels: every pass then uses every core, where NumPy would run all but the products on
one. Its forward does so too, in inference as well: BLAS's own threads, left spinning by a
product, take the cores the compiled kernels that follow want (see ``products.py``; ResNet-8's
inference, whose 1x1 shortcuts ran on BLAS's threads, took 63 ms at two threads against 53 at
one). The NumPy code below is the reference for both.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..core import jit
from .geometry import ConvGeometry, Pair, conv_geometry, offsets

# Columns are built for a few samples at a time, into one reused buffer of about this size:
# it stays in cache between the copy and the product, a fresh 40 MB array would cost page
# faults on every call, and peak memory stays small. Larger chunks measured no faster.
CHUNK_BYTES = 8 << 20

_scratch = threading.local()


def workspace(shape: tuple[int, ...], dtype, slot: str = "columns") -> np.ndarray:
    """A scratch array reused from call to call (one per slot, dtype and thread).

    Valid until the next call for the same slot: a caller never holds two of one slot at once,
    nor keeps one after it returns. Slots: "columns" (the GEMM's operand), "strip" (inside
    :func:`im2col` and :func:`col2im`).
    """
    size = math.prod(shape)  # np.prod of a tuple took 15 us: 3 ms a call of Winograd's
    buffers = _scratch.__dict__.setdefault("buffers", {})
    key = slot, np.dtype(dtype)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


def contiguous(x: np.ndarray) -> np.ndarray:
    """x (A, B, ...) as a C-contiguous array: x itself if it is one, else a copy split along B
    (:func:`split_copy`): a batch-first array seen channel-major is a transposing copy,
    2-3 ms at 64x64x28x28 on one thread."""
    if x.flags.c_contiguous:
        return x
    out = np.empty(x.shape, x.dtype)

    def fill(start, stop):
        out[:, start:stop] = x[:, start:stop]

    split_copy(fill, x.shape[1], out.nbytes)
    return out


# Copies of fewer bytes stay on the calling thread: split between the pool's two threads they
# measured slower at every size tried, the memory one core already saturates shared and the
# hand-off added (medians of 60-150 interleaved, load 3 on 2 cores; best-of alike): a
# transposing copy of 2 MB 0.92 ms against 0.39 alone, 8 MB 1.44 against 1.14, 32 MB 13.0
# against 10.7; ResNet-8's pads (conv.pad) of 16x64x32x32 1.00 against 0.61, 64x64x8x8
# 0.76 against 0.50. ResNet-8's training step at two threads, best (median) of 16
# interleaved: 273 (323) ms split from 1 MB, 220 (312) from this size; the classic one's 194
# (231) and 168 (234)
SPLIT_BYTES = 64 << 20


def split_copy(copy, count: int, nbytes: int) -> None:
    """``copy(start, stop)`` for ranges covering ``count``: on the compiled path one range per
    thread of the convolution's pool (NumPy's copies release the GIL, so they run side by
    side), else one range."""
    fast = jit.twin(".conv_compiled", __package__)
    threads = 1 if fast is None or nbytes < SPLIT_BYTES else min(count, fast.threads())
    if threads <= 1:
        copy(0, count)
        return
    bounds = [count * i // threads for i in range(threads + 1)]
    fast.run(copy, list(zip(bounds[:-1], bounds[1:], strict=True)))


def im2col(xp: np.ndarray, geometry: ConvGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """Columns of the channel-major padded input xp (C, N, H, W): (C·kH·kW, N·OH·OW).

    Row ``(c, p, q)`` holds what kernel cell (p, q) of channel c meets at every output pixel of
    every sample, so a whole layer is one matrix product with the (C_out, C·kH·kW) kernels.
    ``out`` (C·kH·kW, N·OH·OW) may be a workspace. With vertical stride 1, see :func:`_strips`;
    otherwise one strided slice copy per kernel offset.
    """
    c, n = xp.shape[:2]
    (kh, kw), (oh, ow) = geometry.kernel_size, geometry.output_size(*xp.shape[2:], padded=True)
    if out is None:
        out = np.empty((c * kh * kw, n * oh * ow), xp.dtype)
    if geometry.stride[0] == 1:
        cols = out.reshape(c, kh, kw, n, oh * ow)
        for q, p, strip, rows in _strips(xp.shape, geometry, (oh, ow), fill=xp):
            cols[:, p, q] = strip[:, :, rows]  # (C, N, OH·OW), one contiguous run per sample
        return out
    cols = out.reshape(c, kh, kw, n, oh, ow)
    for p, q, rows, columns in offsets(geometry, (oh, ow)):
        cols[:, p, q] = xp[:, :, rows, columns]  # (C, N, OH, OW)
    return out


def col2im(cols: np.ndarray, padded_shape, geometry: ConvGeometry, out=None) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    ``cols`` is (C, kH, kW, N, OH, OW); the result (``out``, else new zeros) has the
    channel-major padded input's shape (C, N, H, W).
    """
    if out is None:
        out = np.zeros(padded_shape, dtype=cols.dtype)
    if geometry.stride[0] != 1:
        for p, q, rows, columns in offsets(geometry, cols.shape[-2:]):
            out[:, :, rows, columns] += cols[:, p, q]
        return out
    c, kh, kw, n, oh, ow = cols.shape
    cols = cols.reshape(c, kh, kw, n, oh * ow)
    for q, p, strip, rows in _strips(out.shape, geometry, (oh, ow), add_to=out):
        if p == 0:  # the strip holds stale values: write the first run, zero the rest
            strip[:, :, rows] = cols[:, 0, q]
            strip[:, :, rows.stop :] = 0
        else:
            strip[:, :, rows] += cols[:, p, q]
    return out


def _strips(padded_shape, geometry: ConvGeometry, out_size: Pair, fill=None, add_to=None):
    """Yield ``(q, p, strip, rows)`` so that im2col and col2im copy long runs, not short rows.

    With vertical stride 1, the (OH, OW) window of kernel offset (p, q) is, in the strip
    ``xp[:, :, :, columns(q)]`` made contiguous as (C, N, H·OW), ONE contiguous run per sample:
    ``rows = p·dh·OW : p·dh·OW + OH·OW``. So per kernel column q: one strided copy of short rows
    into the strip (C, N, H, OW) (from ``fill``, or after the p loop added onto ``add_to``),
    and kH copies of OH·OW-long runs instead of kH copies of OH rows of OW — about 3x faster
    per element in NumPy, whose cost for short rows is the per-row overhead.
    """
    (kh, kw), (_, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    c, n, h = padded_shape[:3]
    ow, area = out_size[1], out_size[0] * out_size[1]
    strip = workspace((c, n, h, ow), add_to.dtype if fill is None else fill.dtype, "strip")
    flat = strip.reshape(c, n, h * ow)  # (C, N, H·OW)
    for q in range(kw):
        columns = slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)
        if fill is not None:
            strip[...] = fill[:, :, :, columns]  # (C, N, H, OW)
        for p in range(kh):
            yield q, p, flat, slice(p * dh * ow, p * dh * ow + area)
        if add_to is not None:
            add_to[:, :, :, columns] += strip


class Gemm:
    """im2col + one matrix product per group, the batch a few samples at a time.

    A 1x1 kernel with stride 1 needs no im2col: the channel-major input is its own column
    matrix, so the products read it (and write the input gradient) in place. Each range of
    samples is one task; the compiled path runs the tasks on several threads (see
    ``conv_compiled.run``), the NumPy path one after the other.
    """

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        c_out, g = w.shape[0], geometry.groups
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        n, area = xp.shape[1], oh * ow
        direct = geometry.kernel_size == (1, 1) and geometry.stride == (1, 1)
        if direct:
            xp = contiguous(xp)  # so that its sample ranges are column ranges
        kernels = w.reshape(g, c_out // g, -1)  # (G, C_out/G, C_in/G·kH·kW)
        y = np.empty((c_out, n, oh, ow), dtype=xp.dtype)
        y_groups = y.reshape(g, c_out // g, n * area)  # (G, C_out/G, N·OH·OW)
        fast = jit.twin(".conv_compiled", __package__)
        biases = None if b is None else b.reshape(g, c_out // g, 1)  # (G, C_out/G, 1)

        def product(start, stop):
            cols = _columns(xp, geometry, direct, start, stop, fast=fast)
            for k in range(g):  # cols: (G, C_in/G·kH·kW, chunk·OH·OW)
                out = y_groups[k, :, start * area : stop * area]  # (C_out/G, chunk·OH·OW)
                np.matmul(kernels[k], cols[k], out=out)
                if biases is not None:  # while the chunk's output is still in cache
                    out += biases[k]

        _run(product, xp, geometry, direct, fast)
        ctx.xp, ctx.w, ctx.geometry, ctx.direct = xp, w, geometry, direct
        return y

    @staticmethod
    def backward(ctx, gy):
        xp, w, geometry, direct = ctx.xp, ctx.w, ctx.geometry, ctx.direct
        need_x, need_w, _ = ctx.needs_input_grad
        c_in, c_out, g = xp.shape[0], w.shape[0], geometry.groups
        n, area = xp.shape[1], gy.shape[2] * gy.shape[3]
        kernels = w.reshape(g, c_out // g, -1)  # (G, C_out/G, C_in/G·kH·kW)
        gy_groups = gy.reshape(g, c_out // g, n * area)  # (G, C_out/G, N·OH·OW), a view
        fast = jit.twin(".conv_compiled", __package__)
        gxp, target = (
            _input_gradient_arrays(ctx, xp, geometry, direct, fast) if need_x else (None, None)
        )

        def gradients(start, stop):
            """The chunk's share of the kernel gradient (transposed); its input gradient into
            gxp."""
            cols = _columns(xp, geometry, direct, start, stop, need_w, fast)
            gy_chunk = gy_groups[:, :, start * area : stop * area]  # (G, C_out/G, chunk·OH·OW)
            gw_t = None
            if need_w:  # correlation of the input with the output gradient, transposed:
                # cols·gyᵀ runs 1.2-1.6x faster in BLAS than gy·colsᵀ at these thin shapes
                gw_t = np.empty((g, kernels.shape[2], kernels.shape[1]), xp.dtype)
                for k in range(g):
                    np.matmul(cols[k], gy_chunk[k].T, out=gw_t[k])
            if need_x:  # transposed convolution: the columns' gradient, then col2im
                gcols = cols  # the columns' gradient overwrites the columns
                if direct:  # the columns are the input: their gradient is gxp's sample range
                    gcols = gxp.reshape(g, c_in // g, -1)[..., start * area : stop * area]
                for k in range(g):
                    np.matmul(kernels[k].T, gy_chunk[k], out=gcols[k])
                if not direct:
                    _add_columns(gcols, geometry, start, stop, gy.shape[2:], target, fast)
            return gw_t

        parts = _run(gradients, xp, geometry, direct, fast)  # each (G, C_in/G·kH·kW, C_out/G)
        gw = sum(parts[1:], parts[0]).transpose(0, 2, 1).reshape(w.shape) if need_w else None
        return gxp, gw


def _input_gradient_arrays(ctx, xp, geometry: ConvGeometry, direct: bool, fast):
    """(gxp, target): the input gradient as the backward returns it, (C_in, N, Hp, Wp) or
    unpadded (C_in, N, H, W), and the array col2im writes (see :func:`_add_columns`).

    The NumPy col2im adds into zeros, padded; the 1x1 direct product writes every pixel of
    gxp itself. The compiled col2im overwrites each plane of the unpadded gradient, in the
    layout the input came in (``ctx.batch_first_input``): no zeros, no padding to cut off,
    and for a batch-first input no transposing copy when it becomes a leaf's ``.grad``.
    """
    if fast is None or direct:
        gxp = (np.empty if fast else np.zeros)(xp.shape, xp.dtype)  # (C_in, N, Hp, Wp)
        return gxp, gxp
    (top, bottom), (left, right) = geometry.padding
    c_in, n, hp, wp = xp.shape
    size = (hp - top - bottom, wp - left - right)
    if getattr(ctx, "batch_first_input", False):
        memory = np.empty((n, c_in) + size, xp.dtype)  # (N, C_in, H, W)
        return memory.transpose(1, 0, 2, 3), (memory, True)
    gx = np.empty((c_in, n) + size, xp.dtype)  # (C_in, N, H, W)
    return gx, (gx, False)


def _add_columns(gcols, geometry: ConvGeometry, start, stop, out_size, target, fast) -> None:
    """col2im of the chunk's column gradient gcols (G, C_in/G·kH·kW, chunk·OH·OW) into
    samples ``start:stop`` of ``target``: the padded gxp (C_in, N, Hp, Wp) on the NumPy path,
    the compiled path's (memory, batch_first) pair (``conv_compiled.add_columns``)."""
    kh, kw = geometry.kernel_size
    c_in = gcols.shape[0] * gcols.shape[1] // (kh * kw)
    gcols = gcols.reshape(
        (c_in, kh, kw, stop - start) + tuple(out_size)
    )  # (C_in, kH, kW, chunk, OH, OW)
    if fast is not None:
        fast.add_columns(gcols, start, geometry, *target)
    else:
        col2im(gcols, None, geometry, out=target[:, start:stop])


def _run(task, xp, geometry: ConvGeometry, direct: bool, fast) -> list:
    """``task(start, stop)`` for ranges of samples that cover the batch; the results.

    Direct (1x1, stride 1): no columns to build, so the ranges only split the work between
    threads. Otherwise each range's columns fill about CHUNK_BYTES (shared between threads).
    """
    c_in, n = xp.shape[:2]
    threads = 1 if fast is None else fast.threads()
    if direct:
        step = max(1, -(-n // threads))
    else:
        (kh, kw), (oh, ow) = geometry.kernel_size, geometry.output_size(*xp.shape[2:], True)
        step = max(1, CHUNK_BYTES // threads // (c_in * kh * kw * oh * ow * xp.itemsize))
    # a multiple of the threads, of sizes that differ by at most one: they finish together
    chunks = -(-n // step)
    count = max(1, min(n, -(-chunks // threads) * threads))  # an empty batch: one empty range
    bounds = [n * i // count for i in range(count + 1)]
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    if fast is None:
        return [task(start, stop) for start, stop in ranges]
    return fast.run(task, ranges)


def _columns(xp, geometry: ConvGeometry, direct: bool, start, stop, fill=True, fast=None):
    """The columns of samples ``start:stop``: (G, C_in/G·kH·kW, chunk·OH·OW).

    Direct (1x1, stride 1): a view of xp. Otherwise the chunk's im2col in this thread's
    workspace (by the compiled twin ``fast`` when given), or (``fill=False``) just a
    workspace of that shape.
    """
    c_in, n = xp.shape[:2]
    g, (kh, kw) = geometry.groups, geometry.kernel_size
    if direct:
        area = xp.shape[2] * xp.shape[3]
        return xp.reshape(g, c_in // g, n * area)[..., start * area : stop * area]
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    cols = workspace((c_in * kh * kw, (stop - start) * oh * ow), xp.dtype)
    if fill and fast is not None:
        fast.fill_columns(xp, start, geometry, cols)
    elif fill:
        im2col(xp[:, start:stop], geometry, out=cols)
    return cols.reshape(g, c_in * kh * kw // g, -1)  # (G, C_in/G·kH·kW, chunk·OH·OW)


class Pointwise:
    """1x1 kernels, one group, no padding: one product per sample (C_out, C_in)·(C_in, OH·OW)
    in the batch-first layout the input came in, so neither the input nor the output gradient
    is transposed to channel-major (two copies that took as long as the products: 2.5 ms of
    the 10 a 64x32x28x28 layer's forward and backward took). A stride takes every sh-th row
    and sw-th column first (a quarter of the input at stride 2). An input that is channel-major
    memory already (a convolution's output) runs the GEMM's passes, whose products read it in
    place at stride 1; at a stride on its every sh-th row and sw-th column, copied once, at
    stride 1 (a residual network's projection shortcut): the GEMM's im2col had copied them
    again in the backward and its col2im added the input gradient back column by column
    (ResNet-8's 16→32 shortcut, 64x16x32x32, forward and backward: 4.2 → 2.9 ms of CPU at one
    thread, the same numbers).

    ``any_layout``: ``Conv2d`` hands the backward the output gradient as it comes, channel-major
    view or not; the backward then leaves the bias gradient in ``ctx.bias_gradient`` too.
    """

    any_layout = True

    @staticmethod
    def suits(geometry: ConvGeometry, w_shape) -> bool:
        """A 1x1 kernel, one group, no padding (dilation is moot)."""
        unpadded = geometry.padding == ((0, 0), (0, 0))
        return tuple(w_shape[2:]) == (1, 1) and geometry.groups == 1 and unpadded

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        ctx.batch_first = not xp.flags.c_contiguous
        ctx.in_size = xp.shape[2:]
        if not ctx.batch_first:
            (sh, sw), unit = geometry.stride, conv_geometry(1)
            if (sh, sw) != (1, 1):  # every sh-th row and sw-th column: (C_in, N, OH, OW)
                xp, geometry = contiguous(xp[:, :, ::sh, ::sw]), unit
            ctx.stride = sh, sw
            return Gemm.forward(ctx, xp, w, b, geometry)
        (sh, sw), c_out = geometry.stride, w.shape[0]
        x = xp.transpose(1, 0, 2, 3)[:, :, ::sh, ::sw]  # (N, C_in, OH, OW)
        n, c_in, oh, ow = x.shape
        x = contiguous(x).reshape(n, c_in, oh * ow)  # (N, C_in, OH·OW)
        kernel = w.reshape(c_out, c_in)  # (C_out, C_in)
        y = np.empty((n, c_out, oh * ow), x.dtype)  # (N, C_out, OH·OW)

        def product(start, stop):
            np.matmul(kernel, x[start:stop], out=y[start:stop])
            if b is not None:
                y[start:stop] += b.reshape(c_out, 1)  # (C_out, 1)

        _by_threads(product, n)
        ctx.x, ctx.w, ctx.geometry = x, w, geometry
        return y.reshape(n, c_out, oh, ow).transpose(1, 0, 2, 3)  # (C_out, N, OH, OW) view

    @staticmethod
    def backward(ctx, gy):
        if not ctx.batch_first:
            gxp, gw = Gemm.backward(ctx, contiguous(gy))
            if gxp is None or tuple(gxp.shape[2:]) == tuple(ctx.in_size):
                return gxp, gw
            # the gradient of the pixels read at a stride (the forward's copy); zeros between
            gx = np.zeros(gxp.shape[:2] + tuple(ctx.in_size), gxp.dtype)  # (C_in, N, H, W)
            gx[:, :, :: ctx.stride[0], :: ctx.stride[1]] = gxp
            return gx, gw
        need_x, need_w, _ = ctx.needs_input_grad
        x, w, (sh, sw), (h, width) = ctx.x, ctx.w, ctx.geometry.stride, ctx.in_size
        (n, c_in, area), c_out = x.shape, w.shape[0]
        gy = contiguous(gy.transpose(1, 0, 2, 3)).reshape(n, c_out, area)  # (N, C_out, OH·OW)
        kernel_t = w.reshape(c_out, c_in).T  # (C_in, C_out)
        strided = (sh, sw) != (1, 1)
        # (N, C_in, H, W): at a stride, zero but at the pixels the outputs read (zeroed by
        # the workers, range by range)
        gx = np.empty((n, c_in, h, width), x.dtype) if need_x else None

        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        wide = np.float64 if x.dtype == np.float32 else x.dtype  # as channel_sums sums

        def gradients(start, stop):
            """The samples' input gradient into gx; their shares of the kernel gradient and
            of the bias gradient (on the workers too: serial, it took 1.5 ms of 8)."""
            sums = gy[start:stop].sum(axis=2, dtype=wide).sum(axis=0) if need_b else None
            if need_x and strided:
                gx_part = np.matmul(kernel_t, gy[start:stop])  # (chunk, C_in, OH·OW)
                gx[start:stop] = 0
                out_size = gx_part.shape[:2] + (-(-h // sh), -(-width // sw))
                gx[start:stop, :, ::sh, ::sw] = gx_part.reshape(out_size)
            elif need_x:
                np.matmul(kernel_t, gy[start:stop], out=gx.reshape(n, c_in, area)[start:stop])
            if not need_w:
                return None, sums
            # Σ over the chunk's samples of gy·xᵀ: (C_out, C_in)
            return np.matmul(gy[start:stop], x[start:stop].transpose(0, 2, 1)).sum(axis=0), sums

        parts = _by_threads(gradients, n)
        gw = sum(p[0] for p in parts).reshape(w.shape) if need_w else None
        if need_b:  # for Conv2d, which would otherwise sum gy again
            ctx.bias_gradient = sum(p[1] for p in parts).astype(x.dtype)
        return None if gx is None else gx.transpose(1, 0, 2, 3), gw


def _by_threads(task, n: int) -> list:
    """``task(start, stop)`` for one range of samples per thread of the convolution's pool
    (``conv_compiled.run``: BLAS on one thread in each), or for all of them on the NumPy
    path; the results."""
    fast = jit.twin(".conv_compiled", __package__)
    count = 1 if fast is None else max(1, min(n, fast.threads()))
    bounds = [n * i // count for i in range(count + 1)]
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    return [task(*ranges[0])] if fast is None else fast.run(task, ranges)


class Depthwise:
    """One input channel per group (depth 1): for each kernel offset, a broadcast multiply-add
    of a strided slice by a per-channel tap, instead of G matrix products of one row each.

    Output channel o = c·M + m reads input channel c (M = C_out / C_in, the multiplier).
    """

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        c_in, n = xp.shape[:2]
        c_out, (oh, ow) = w.shape[0], geometry.output_size(*xp.shape[2:], padded=True)
        taps = w.reshape(c_in, c_out // c_in, -1, 1, 1, 1)  # (C_in, M, kH·kW, 1, 1, 1)
        y = term = None  # y, term: (C_in, M, N, OH, OW)
        for k, (_, _, rows, columns) in enumerate(offsets(geometry, (oh, ow))):
            window = xp[:, None, :, rows, columns]  # (C_in, 1, N, OH, OW)
            if y is None:
                y = taps[:, :, k] * window
                term = np.empty_like(y)
            else:
                y += np.multiply(taps[:, :, k], window, out=term)
        y = y.reshape(c_out, n, oh, ow)
        if b is not None:
            y += b.reshape(c_out, 1, 1, 1)
        ctx.xp, ctx.w, ctx.geometry = xp, w, geometry
        return y

    @staticmethod
    def backward(ctx, gy):
        xp, w, geometry = ctx.xp, ctx.w, ctx.geometry
        need_x, need_w, _ = ctx.needs_input_grad
        c_in, c_out = xp.shape[0], w.shape[0]
        taps = w.reshape(c_in, c_out // c_in, -1)  # (C_in, M, kH·kW)
        gy5 = gy.reshape((c_in, c_out // c_in) + gy.shape[1:])  # (C_in, M, N, OH, OW)
        gw = np.empty(taps.shape, xp.dtype) if need_w else None
        gxp = np.zeros(xp.shape, xp.dtype) if need_x else None
        term = np.empty_like(gy5[:, 0]) if taps.shape[1] == 1 else None  # (C_in, N, OH, OW)
        for k, (_, _, rows, columns) in enumerate(offsets(geometry, gy.shape[2:])):
            if need_w:
                gw[:, :, k] = np.einsum("cmnij,cnij->cm", gy5, xp[:, :, rows, columns])
            if need_x and term is not None:  # multiplier 1: a broadcast product is enough
                gxp[:, :, rows, columns] += np.multiply(
                    taps[:, :1, k, None, None], gy5[:, 0], out=term
                )
            elif need_x:
                gxp[:, :, rows, columns] += np.einsum("cm,cmnij->cnij", taps[:, :, k], gy5)
        return gxp, None if gw is None else gw.reshape(w.shape)


class EmptyBatch:
    """A batch of no samples: an empty output and zero kernel and bias gradients, as
    PyTorch gives, without running an algorithm over nothing."""

    @staticmethod
    def forward(ctx, xp, w, b, geometry: ConvGeometry):
        oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
        ctx.shapes, ctx.geometry = (xp.shape, w.shape), geometry
        return np.empty((w.shape[0], 0, oh, ow), xp.dtype)

    @staticmethod
    def backward(ctx, gy):
        (need_x, need_w), (xp_shape, w_shape) = ctx.needs_input_grad[:2], ctx.shapes
        if ctx.needs_input_grad[2:] and ctx.needs_input_grad[2]:
            ctx.bias_gradient = np.zeros(gy.shape[0], gy.dtype)
        gxp = np.zeros(xp_shape, gy.dtype) if need_x else None
        return gxp, np.zeros(w_shape, gy.dtype) if need_w else None


def choose(geometry: ConvGeometry, w_shape) -> type:
    """The algorithm for a convolution of this shape (see ``conv.py``): depthwise ones get
    their own (compiled on the compiled path); on the compiled path, thin inputs (at most 4
    channels) the thin direct convolution (``conv_thin_compiled``); layers where the direct
    convolution or Winograd's measured faster for some pass the algorithm that picks one
    per pass (``conv_direct_compiled.DirectCompiled``: ``passes`` and ``winograd_route``),
    or Winograd's alone when the direct convolution is off; everything else the GEMM."""
    if not (w_shape[1] == 1 and geometry.groups > 1):
        if Pointwise.suits(geometry, w_shape):
            return Pointwise
        thin = jit.twin(".conv_thin_compiled", __package__)
        if thin is not None and thin.fits(geometry, w_shape):
            return thin.ThinCompiled
        direct = jit.twin(".conv_direct_compiled", __package__)
        if direct is not None and any(direct.passes(geometry, w_shape)):
            return direct.DirectCompiled
        winograd = jit.twin(".conv_winograd", __package__)
        if winograd is not None and winograd.suits(geometry, w_shape):
            return winograd.Winograd
        return Gemm
    fast = jit.twin(".depthwise_compiled", __package__)
    return Depthwise if fast is None else fast.DepthwiseCompiled
