"""Compiled twins of the GEMM convolution's passes in ``conv_algorithms.py``.

The products stay BLAS's; what is compiled are the passes around them, which NumPy runs on
one core: the zero framing of the input (``conv.pad``), *im2col* and its adjoint *col2im*,
and the bias gradient. Each kernel runs one (channel, sample) plane per task, so the threads
never write the same memory: im2col writes that plane's rows of the columns, col2im gathers
every column entry of one plane into it (zeroing it first, so the input gradient needs no
separate zeroing pass), into the unpadded gradient in the layout the input came in.

Arrays are channel-major as in ``conv_algorithms``: the padded input ``xp`` (C, N, Hp, Wp),
the columns of a chunk of samples as (C, kH, kW, chunk, OH, OW).
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..core import jit, team
from ..core.team import claim
from ..core.threads import one_blas_thread
from .geometry import ConvGeometry


def plane_kernel(function):
    """Compile a per-plane body that the kernels below call (cached, GIL released)."""
    return numba.njit(function, cache=True, nogil=True, error_model="numpy", inline="always")


@plane_kernel
def im2col_plane(xp, start, sh, sw, dh, dw, cols, task):
    """Plane ``task`` = (channel, sample in the chunk) of :func:`im2col`."""
    chunk, oh, ow = cols.shape[3:]
    ch, s = task // chunk, task % chunk
    for p in range(cols.shape[1]):
        for q in range(cols.shape[2]):
            for i in range(oh):
                src, dst = xp[ch, start + s, i * sh + p * dh], cols[ch, p, q, s, i]
                # loops over a slice: indexed by the loop counter, so free of numba's
                # negative-index check, they vectorise (a slice copy is 6x slower off prange).
                # Two names: one would make the contiguous run a strided array type too.
                if sw == 1:
                    run = src[q * dw : q * dw + ow]
                    for j in range(ow):
                        dst[j] = run[j]
                else:
                    strided = src[q * dw :: sw]
                    for j in range(ow):
                        dst[j] = strided[j]


@plane_kernel
def col2im_plane(cols, start, sh, sw, dh, dw, top, left, batch_first, gx, task):
    """Plane ``task`` = (channel, sample in the chunk) of :func:`col2im`: zeroed, then every
    column entry that was read from one of its pixels added back (those read from the
    padding are dropped). The output rows and columns that land inside are found once per
    kernel offset: a floor division per row had made the pass twice as slow."""
    chunk, oh, ow = cols.shape[3:]
    h, w = gx.shape[2:]
    ch, s = task // chunk, task % chunk
    plane = gx[start + s, ch] if batch_first else gx[ch, start + s]  # (H, W)
    plane[:] = 0
    for p in range(cols.shape[1]):
        y = p * dh - top  # output row i lands on row y + i·sh
        top_row, stop_row = max(0, (sh - 1 - y) // sh), min(oh, (h - y + sh - 1) // sh)
        for q in range(cols.shape[2]):
            x = q * dw - left  # output column j lands on column x + j·sw
            first, stop = max(0, (sw - 1 - x) // sw), min(ow, (w - x + sw - 1) // sw)
            for i in range(top_row, stop_row):
                # slices indexed from 0 by the loop counter: no negative-index checks
                src, run = cols[ch, p, q, s, i, first:stop], plane[y + i * sh, x + first * sw :]
                if sw == 1:  # vectorised, as in im2col_plane
                    for j in range(stop - first):
                        run[j] += src[j]
                else:
                    for j in range(stop - first):
                        run[j * sw] += src[j]


@jit.kernel()
def im2col(xp, start, sh, sw, dh, dw, cols, control):
    """Fill ``cols`` (C, kH, kW, chunk, OH, OW) from samples ``start:start + chunk`` of xp:
    ``cols[c, p, q, s, i, j] = xp[c, start + s, i·sh + p·dh, j·sw + q·dw]``, the planes
    (channel, sample) this thread claims."""
    planes = cols.shape[0] * cols.shape[3]
    done = 0
    first, last = claim(control, planes)
    while first < last:
        for task in range(first, last):
            im2col_plane(xp, start, sh, sw, dh, dw, cols, task)
        done += last - first
        first, last = claim(control, planes)
    return done


@jit.kernel()
def col2im(cols, start, sh, sw, dh, dw, top, left, batch_first, gx, control):
    """Overwrite samples ``start:start + chunk`` of the unpadded input gradient gx (C, N, H,
    W), or (N, C, H, W) when ``batch_first``, with the adjoint of :func:`im2col`: each entry
    of ``cols`` (C, kH, kW, chunk, OH, OW) added onto its pixel, ``top`` rows and ``left``
    columns of padding off; the planes (channel, sample) this thread claims."""
    planes = cols.shape[0] * cols.shape[3]
    done = 0
    first, last = claim(control, planes)
    while first < last:
        for task in range(first, last):
            col2im_plane(cols, start, sh, sw, dh, dw, top, left, batch_first, gx, task)
        done += last - first
        first, last = claim(control, planes)
    return done


def channel_sums(gy: np.ndarray, out: np.ndarray) -> None:
    """``out[o] = Σ gy[o]`` for gy (C_out, N, OH·OW): the bias gradient, accumulated in
    float64 (one partial sum per sample), the channels spread over the team's threads (on one
    it was a serial 0.5-1 ms of the classic step at two threads, the profile's ``--compare``;
    a team kernel, as numba's parallel pipeline took 0.8-1.1 s to compile it cold)."""
    team.run(channel_sums_tasks, (gy, out), gy.shape[0], unit=gy.shape[1] * gy.shape[2])


@jit.kernel(fastmath={"reassoc"})  # so that the sums vectorise
def channel_sums_tasks(gy, out, control):
    """:func:`channel_sums` of the channels this thread claims."""
    c_out, n, area = gy.shape
    done = 0
    start, stop = claim(control, c_out)
    while start < stop:
        for o in range(start, stop):
            total = 0.0
            for s in range(n):
                part = 0.0
                for k in range(area):
                    part += gy[o, s, k]
                total += part
            out[o] = total
        done += stop - start
        start, stop = claim(control, c_out)
    return done


@jit.kernel()
def pad_planes(x, top, left, value, xp, start, stop, batch_first):
    """Samples ``start:stop`` (axis 1) of xp (C, N, Hp, Wp): x (C, N, H, W), or the
    batch-first x (N, C, H, W) when ``batch_first``, framed by ``value``, ``top`` rows above
    it and ``left`` columns before it, the rest after.

    A plane at a time, on the calling thread (:func:`run` spreads ranges of samples), each
    cell written once: the frame between two rows (the right columns of one, the left ones
    of the next) is one run of cells. NumPy's strided copy spent most of its time between
    rows: 1.5-2.5x this kernel's time on ResNet-8's inputs, 2x from a batch-first input.
    """
    c, n, hp, wp = xp.shape
    h, w = x.shape[2:]
    planes, padded = x.reshape(c * n, h * w), xp.reshape(c * n, hp * wp)  # (C·N, H·W), ...
    chunk = stop - start
    for task in range(c * chunk):  # in the source's order, so that the reads run in sequence
        if batch_first:
            s, ch = start + task // c, task % c
            src = planes[s * c + ch]
        else:
            ch, s = task // chunk, start + task % chunk
            src = planes[ch * n + s]
        dst = padded[ch * n + s]
        at = top * wp + left  # where the input's first row goes
        for j in range(at):
            dst[j] = value
        for i in range(h):
            run, line = dst[at : at + w], src[i * w : i * w + w]
            for j in range(w):  # indexed from 0, it vectorises (as in im2col_plane)
                run[j] = line[j]
            at += wp
            for j in range(at - wp + w, at if i < h - 1 else hp * wp):
                dst[j] = value


def fill_columns(xp: np.ndarray, start: int, geometry: ConvGeometry, cols: np.ndarray) -> None:
    """Write into ``cols`` (C·kH·kW, chunk·OH·OW) the columns of the samples
    ``start:start + chunk`` of the whole channel-major padded input xp (C, N, Hp, Wp)."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    cols = cols.reshape(xp.shape[0], kh, kw, -1, oh, ow)  # (C, kH, kW, chunk, OH, OW)
    share(im2col, (xp, start, sh, sw, dh, dw, cols), cols.shape[0] * cols.shape[3])


def add_columns(
    cols: np.ndarray, start: int, geometry: ConvGeometry, gx: np.ndarray, batch_first: bool
) -> None:
    """Overwrite samples ``start:start + chunk`` of the unpadded input gradient gx (C, N, H,
    W), or (N, C, H, W) when ``batch_first``, with the col2im of ``cols`` (C, kH, kW, chunk,
    OH, OW). Written unpadded, in the layout the input came in, the gradient needs no copy
    after: the padded one had been cut out by a transposing copy (a leaf's ``.grad``)."""
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    (top, _), (left, _) = geometry.padding
    args = (cols, start, sh, sw, dh, dw, top, left, batch_first, gx)
    share(col2im, args, cols.shape[0] * cols.shape[3])


# ---- threads: each range of samples a task, BLAS on one thread inside each

SPINS = 20_000  # reads of the flags in wait_for, some 50 ns apart: about a millisecond
_pools: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the threads


# True in the threads running ranges (:func:`run`), whose passes then run on their own
# thread (:func:`share`): each range is one thread's work, and the team serves one pass at a time
class _Worker(threading.local):
    active = False


_worker = _Worker()


def _start_worker() -> None:
    _worker.active = True


def threads() -> int:
    """The threads to share a convolution between: ``kl.set_num_threads``'s count. numba is
    loaded first: until it is, its count reads as 1 whatever was asked, and a layer that runs
    no compiled kernel (a 1x1 one: products only) would run its ranges one after another."""
    jit.numba_module()
    return jit.get_threads() or 1


def run(task, ranges: list[tuple[int, int]]) -> list:
    """``task(start, stop)`` for every range, on :func:`threads` threads; the results.

    Each thread runs whole ranges — im2col, products at one BLAS thread, col2im — so
    the two kinds of threads never compete: BLAS's own threads, spinning after a product,
    would take the cores the compiled passes want. The calling thread is one of them: it
    takes ranges in turn with the pool's threads (the next one free takes the next range),
    so a call wakes one thread fewer, and the caller's core, already running, starts at once.
    Its own ranges done, the caller waits for the pool's last ones spinning (:func:`wait_for`,
    without the GIL) for up to about a millisecond, then asleep: woken from a sleep it
    resumed 0.06-0.1 ms after the last range ended, a tenth of a first layer's pass.
    """
    workers = min(threads(), len(ranges))
    if workers == 1 or _worker.active:  # a task waiting on its own pool would never end
        return [task(start, stop) for start, stop in ranges]
    pool = _pools.get(workers - 1)
    if pool is None:
        pool = _pools[workers - 1] = ThreadPoolExecutor(workers - 1, initializer=_start_worker)
    results = [None] * len(ranges)
    done = np.zeros(len(ranges), np.int8)  # set as each range ends
    turns = itertools.count()  # next() on it is atomic: each range is taken once

    def take_turns() -> None:
        for index in turns:
            if index >= len(ranges):
                return
            results[index] = task(*ranges[index])
            done[index] = 1

    with one_blas_thread():
        helpers = [pool.submit(take_turns) for _ in range(workers - 1)]
        _worker.active = True
        try:
            take_turns()
            wait_for(done, SPINS)
        finally:
            _worker.active = False
            for helper in helpers:  # done before the caller's buffers go, even on an error
                helper.exception()
        for helper in helpers:
            helper.result()  # a helper's error raised here
    return results


def share(kernel, args: tuple, count: int) -> None:
    """``kernel(*args, control)`` over the tasks ``range(count)`` on :func:`threads` threads:
    a team kernel (``core/team.py``), which claims chunks of tasks until none is left.

    The calling thread and the team's spinning helpers each make ONE call, so the GIL is
    taken only at the pass's start and end; a helper that wakes late takes fewer chunks or
    none. Handed out by :func:`run` instead, each range's call took the GIL back when its
    kernel returned, and a thread that found the other one holding it slept (tens of
    microseconds or more on a virtual machine). On the calling thread alone inside a range
    of :func:`run`, or while another thread's pass holds the team."""
    helpers = None if _worker.active else team.team_for(count, 1)
    if helpers is None or not helpers.busy.acquire(blocking=False):
        kernel(*args, team.new_control(max(count, 1)))
        return
    try:
        helpers.run(kernel, args, count, 1)
    finally:
        helpers.busy.release()


@jit.kernel()
def wait_for(done, spins):
    """Whether every flag of ``done`` is set, read again up to ``spins`` times. The allocation
    in the loop is a call LLVM cannot see into: without it the flags would be read once. The
    flags are counted in a loop of its own: ``done.min()`` had compiled NumPy's generic
    minimum, 0.8 s of a cold first step."""
    for _ in range(spins):
        unset = 0
        for i in range(done.size):
            unset += done[i] == 0
        if unset == 0:
            return True
        np.empty(1, np.int8)
    return False
