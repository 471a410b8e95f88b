"""The Python source of the direct convolution's micro-kernels, generated per block shape.

numba has no vector types and keeps an array of accumulators in memory, so a loop nest over
such an array runs at about a quarter of the GEMM's speed. These generators instead write the
innermost loop body with one *scalar* local per accumulator — ``a{j}_{b}`` for output column j
of output channel b of the block — and every index into the pixels a constant. LLVM's
straight-line vectoriser then packs the CB channels of a column into vector registers and each
multiply-add becomes one vector FMA: the weights of a kernel offset are one contiguous (CB,)
load (they are repacked so), each input pixel one broadcast.

Baked in: the block sizes, the kernel width (the kernel row is unrolled), the horizontal
stride and (in the correlation) the horizontal dilation; the kernel height, vertical stride and
dilation, rows and channels stay arguments, so one compiled kernel serves all of those. Each
source holds two functions: the block (a plain function, where the accumulators live) and the
driver that calls it per task, a team kernel (``core/team.py``): one call a thread
(``conv_compiled.share``), each claiming chunks of tasks with ``conv_thin_source.claimed``
until none is left, with buffers of its own. ``CACHE`` is set by ``jit.kernel_from_source``.
``conv_direct_compiled.py`` compiles and runs these (see it for the layouts and the blocks).
"""

from __future__ import annotations

from .conv_thin_source import CLAIM, claimed

# Terms per block of a sum (see the sources): about what OpenBLAS's float32 product takes in
# one run of its accumulators, and 32 input channels of a 3x3 kernel in one block
K_BLOCK = 288


HEADER = """import numpy as np
from numba import njit

block = njit(cache=CACHE, nogil=True, error_model="numpy", fastmath={"contract"})


@block
def frame(x, batch_first, s, top, left, buf, border):
    # buf (C, Hp, Wp): sample s of x (C, N, H, W), or of x (N, C, H, W) when batch_first,
    # placed at (top, left) (negative: rows or columns cut), zeros around it if border
    c_in, hp, wp = buf.shape
    h, w = x.shape[2], x.shape[3]
    r0, r1, q0, q1 = max(0, top), min(hp, top + h), max(0, left), min(wp, left + w)
    for c in range(c_in):
        plane, out = x[s, c] if batch_first else x[c, s], buf[c]
        for r in range(hp):
            row = out[r]
            if r < r0 or r >= r1:
                if border:
                    for q in range(wp):
                        row[q] = 0
                continue
            line = plane[r - top, q0 - left :]
            for q in range(q1 - q0):  # indexed from 0, it vectorises
                row[q0 + q] = line[q]
            if border:
                for q in range(q0):
                    row[q] = 0
                for q in range(q1, wp):
                    row[q] = 0


"""


def correlation_name(
    cb: int, jb: int, sw: int, dw: int, kw: int, tail: int = 0, fresh: bool = False
) -> str:
    """The driver's name in :func:`correlation_source`."""
    tiles = f"_j{jb}" + (f"_t{tail}" if tail else "") + ("_fresh" if fresh else "")
    return f"correlate_c{cb}{tiles}_s{sw}_d{dw}_k{kw}"


def correlation_source(
    cb: int, jb: int, sw: int, dw: int, kw: int, tail: int = 0, fresh: bool = False
) -> str:
    """A team kernel ``(x, x_batch_first, top, left, hp, wp, wpk, bias, starts, sh, dh, cc,
    parts, batch_first, y, control)`` computing, for the tasks it claims::

        y[o, s, i, j] = Σ_{c,p,q} wpk[o // CB, c, p, q, o % CB]
                                  · xp[c, s, i·sh + p·dh, j·sw + q·dw]  + bias[o]

    where xp (C, N, Hp, Wp) is x (C, N, H, W) (batch-first (N, C, H, W) memory when
    ``x_batch_first``) placed at row ``top``, column ``left`` of a zero frame, for wpk
    (C_out/CB, C, kH, kW, CB), bias (C_out/CB·CB,) and y (C_out, N, OH, OW), or y batch-first
    (N, C_out, OH, OW) when ``batch_first``. The frame is never built whole: each thread
    copies the planes of each sample it meets into its own (C, Hp, Wp) buffer, border zeroed
    once, which stays in its core's cache (a whole padded copy had been a memory-bound pass
    of its own, slower at two threads than at one). A task is one of ``parts`` runs of a
    sample's blocks of CB output channels, tasks in sample order; each block walks the
    output rows in tiles of JB columns starting at ``starts`` (the last one may overlap its
    neighbour, so OW need not be a multiple of JB), holding CB·JB accumulators, and with
    ``tail`` its last ``tail`` columns in a narrower tile of their own. The kernel
    row is unrolled and its columns' offsets ``j·sw + q·dw`` are constants, so LLVM loads the
    kW weight vectors of a kernel row and each input pixel once for all the FMAs that use it
    (once per FMA when ``dw`` was an argument: load-bound, 15% slower at 5x5). With
    ``fresh``, each kernel column loads its JB pixels afresh instead, from an offset made
    :func:`~kernelab.core.opaque.opaque` in the column's own code: a wide kernel row's
    pixels, held for all their FMAs, had outgrown the vector registers and gone to the
    stack. The opaque offset also bounds LLVM's instruction scheduler, which then keeps a
    column's loads beside its FMAs (offsets made opaque once, before the loops, left it free
    to load every column's pixels first, and they spilled again). Each sum
    runs over (c, p, q) in that order and takes the bias last, as the GEMM's product and its
    bias do, in blocks as BLAS takes it: the accumulators start from zero for each block of
    ``cc`` input channels, and the block's sums are added into the tile. A 3x3 layer of 32
    input channels (one block of K_BLOCK) is then the GEMM's to the bit (OpenBLAS), a bias
    added first had rounded the sums differently enough to flip a ReLU in a training run, and
    one running sum over all K = C·kH·kW terms had 1.8x the GEMM's float32 error at 5x5
    (forward) and 6x (input gradient, K = 1600).
    """
    body = tile_source("tile_sums", cb, jb, sw, dw, kw, fresh)
    if tail:
        body += ["", ""] + tile_source("tail_sums", cb, tail, sw, dw, kw, fresh)
    driver = (
        f"""
def {correlation_name(cb, jb, sw, dw, kw, tail, fresh)}(
    x, x_batch_first, top, left, hp, wp, wpk, bias, starts, sh, dh, cc, parts, batch_first, y,
    control
):
    n, c_in = (x.shape[0], x.shape[1]) if x_batch_first else (x.shape[1], x.shape[0])
    blocks = wpk.shape[0]
    xp = np.empty((c_in, hp, wp), y.dtype)  # one sample's framed planes, in cache
    tile, zero = np.empty(({jb}, {cb}), y.dtype), np.zeros({cb}, y.dtype)
    framed = -1  # the sample in xp; the border is written once
"""
        + claimed(
            "n * parts",
            """s, part = task // parts, task % parts
if s != framed:
    frame(x, x_batch_first, s, top, left, xp, framed < 0)
    framed = s
for ob in range(blocks * part // parts, blocks * (part + 1) // parts):
    block_rows(xp, wpk, bias, starts, sh, dh, cc, batch_first, y, s, ob, tile, zero)
""",
        )
        + f"""

@block
def block_rows(xp, wpk, bias, starts, sh, dh, cc, batch_first, y, s, ob, tile, zero):
    oh = y.shape[2]
    bv = bias[ob * {cb} : (ob + 1) * {cb}]
    for i in range(oh):
        for t in range(starts.shape[0]):
            j0 = starts[t]
            tile_sums(xp, wpk, zero, ob, i * sh, j0, dh, tile, cc)
            store(tile, bv, batch_first, y, s, ob, i, j0, {jb})
"""
        + (
            f"""        tail_sums(xp, wpk, zero, ob, i * sh, y.shape[3] - {tail}, dh, tile, cc)
        store(tile, bv, batch_first, y, s, ob, i, y.shape[3] - {tail}, {tail})
"""
            if tail
            else ""
        )
        + f"""

@block
def store(tile, bv, batch_first, y, s, ob, i, j0, columns):
    # two loops, each indexing y C-contiguous: one view of either layout would index a
    # strided array, which made the stores slower
    c_out = y.shape[1] if batch_first else y.shape[0]
    for b in range(min({cb}, c_out - ob * {cb})):
        if batch_first:
            for j in range(columns):
                y[s, ob * {cb} + b, i, j0 + j] = tile[j, b] + bv[b]
        else:
            for j in range(columns):
                y[ob * {cb} + b, s, i, j0 + j] = tile[j, b] + bv[b]
"""
    )
    header = HEADER + (OPAQUE if fresh else "")
    return CLAIM + header + "\n".join(body) + "\n\n" + driver


OPAQUE = "from kernelab.core.opaque import opaque\n\n\n"


def tile_source(
    name: str, cb: int, jb: int, sw: int, dw: int, kw: int, fresh: bool = False
) -> list[str]:
    """Source lines of ``name(xp, wpk, zero, ob, row, j0, dh, tile, cc)``: the sums of a
    tile of JB columns from ``j0`` × CB channels of block ``ob`` at output row ``row``,
    into ``tile`` (see :func:`correlation_source`, also for ``fresh``)."""
    body = [
        "@block",
        f"def {name}(xp, wpk, zero, ob, row, j0, dh, tile, cc):",
        "    c_in, kh = xp.shape[0], wpk.shape[2]",
        f"    o = np.uint64(j0 * {sw})",
    ]
    # unsigned indices, which numba does not check for wraparound (a signed one cost a few
    # instructions per kernel column); a literal would make uint64 + int64 a float
    offsets = sorted({j * sw + q * dw for j in range(jb) for q in range(kw)} - {0})
    body += [f"    u{k} = np.uint64({k})" for k in offsets]
    body += ["    for c0 in range(0, c_in, cc):"]
    body += [f"        {names(f'a{j}_', cb)} = {names('zero[', cb, ']')}" for j in range(jb)]
    body += [
        "        for c in range(c0, min(c0 + cc, c_in)):",
        "            for p in range(kh):",
        "                xr, wr = xp[c, row + p * dh], wpk[ob, c, p]",
    ]
    for q in range(kw):
        body.append(f"                {names('w', cb)} = {names(f'wr[{q}, ', cb, ']')}")
        if fresh:  # kernel column q's first pixel, at an offset LLVM cannot match to another's
            body.append(
                f"                oq = opaque(o + u{q * dw})"
                if q
                else "                oq = opaque(o)"
            )
        for j in range(jb):
            k = j * sw + q * dw
            at = (f"oq + u{j * sw}" if j else "oq") if fresh else (f"o + u{k}" if k else "o")
            body.append(f"                x = xr[{at}]")
            body += [f"                a{j}_{b} += x * w{b}" for b in range(cb)]
    body += store_tile("c0 == 0", jb, cb)
    return body


def kernel_gradient_name(cb: int, cc: int, sw: int, kw: int, fresh: bool = False) -> str:
    """The driver's name in :func:`kernel_gradient_source`."""
    return f"kernel_gradient_c{cb}_i{cc}_s{sw}_k{kw}" + ("_fresh" if fresh else "")


def kernel_gradient_source(cb: int, cc: int, sw: int, kw: int, fresh: bool = False) -> str:
    """A team kernel ``(gy, gy_batch_first, sums, x, x_batch_first, top, left, hp, wp,
    bounds, sh, dh, dw, partial, control)`` computing, per task t it claims::

        partial[t, o // CB, c, p, q, o % CB] = Σ_{s in task t, i, j} gy[o, s, i, j]
                                                · xp[c, s, i·sh + p·dh, j·sw + q·dw]

    for gy (C_out, N, OH, OW) (batch-first (N, C_out, OH, OW) memory when
    ``gy_batch_first``), xp (C, N, Hp, Wp) x framed as in :func:`correlation_source` (each
    sample's planes framed into the thread's own buffer) and partial (T, C_out/CB, C, kH, kW,
    CB), zeros; task t sums samples ``bounds[t]:bounds[t + 1]`` into its own partial, so the
    numbers do not depend on which thread took it. Each sample's output
    gradient is first repacked channels innermost into the thread's own (C_out/CB, 1, OH, OW,
    CB) buffer (``unpack``), which stays in its core's cache, for contiguous (CB,) loads;
    when ``sums`` (N, C_out) has rows, ``sums[s, o] = Σ_{i,j} gy[o, s, i, j]`` in float64
    (the bias gradient's terms) in the same pass. A repack of the whole gy before the pass
    had been a pass over memory of its own (4.7-5.5 ms of a 2x2 or dilated 3x3 layer's
    50-60 at one thread, no faster at two). Per (block, CC input channels, kernel row) it
    holds the CB·CC·kW accumulators of the kernel row while it walks the sample's pixels:
    each (CB,) load of the output gradient feeds CC·kW vector FMAs. Past the last input
    channel the block repeats it, unstored. With ``fresh``, each (channel, column) pair loads
    its pixel from an :func:`~kernelab.core.opaque.opaque` offset, which keeps the load
    beside the pair's FMAs: where the accumulators fill the registers, LLVM had loaded all
    the pairs' pixels first and spilled them (see :func:`correlation_source`).

    The sum is taken in blocks, as BLAS takes it: the accumulators start from zero for each
    run of about K_BLOCK of a sample's OH·OW terms (whole output rows) and that sum is then
    added into the task's partial, so a rounding error grows with K_BLOCK plus the blocks per
    task, not with their product (one running sum of N·OH·OW terms, 36,864 at the classic
    network's conv2, drifted; one per sample's 784 had 1.5x the GEMM's float32 error).
    """
    pairs = [(c, q) for c in range(cc) for q in range(kw)]
    body = [
        "@block",
        "def row_sums(gyr, xp, zero, s, ob, cs, c0, p, sh, dh, dw, partial, t):",
        "    oh, ow, c_in = gyr.shape[2], gyr.shape[3], xp.shape[0]",
    ]
    body += [f"    r{c} = partial[t, ob, cs[{c}], p]" for c in range(cc)]  # (kW, CB)
    body += [
        f"    rows = max(1, {K_BLOCK} // ow)",
        "    for i0 in range(0, oh, rows):",
    ]
    body += [f"        {names(f'a{c}_{q}_', cb)} = {names('zero[', cb, ']')}" for c, q in pairs]
    body += [
        "        for i in range(i0, min(i0 + rows, oh)):",
        "            g, row = gyr[ob, s, i], i * sh + p * dh",
    ]
    body += [f"            x{c}_{q} = xp[cs[{c}], row, {q} * dw :]" for c, q in pairs]
    body += [
        "            for j in range(ow):",
        f"                {names('g', cb)} = {names('g[j, ', cb, ']')}",
    ]
    if fresh:
        body.append(f"                at = np.uint64(j * {sw})")
    for c, q in pairs:
        body.append(f"                x = x{c}_{q}[{'opaque(at)' if fresh else f'j * {sw}'}]")
        body += [f"                a{c}_{q}_{b} += x * g{b}" for b in range(cb)]
    for c in range(cc):  # only the channels that exist: a repeated one is not stored
        body.append(f"        if c0 + {c} < c_in:")
        for q in range(kw):
            adds = ", ".join(f"r{c}[{q}, {b}] + a{c}_{q}_{b}" for b in range(cb))
            body.append(f"            {names(f'r{c}[{q}, ', cb, ']')} = {adds}")
    driver = f"""
def {kernel_gradient_name(cb, cc, sw, kw, fresh)}(
    gy, gy_batch_first, sums, x, x_batch_first, top, left, hp, wp, bounds, sh, dh, dw, partial,
    control
):
    blocks, c_in, kh = partial.shape[1], partial.shape[2], partial.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    cs, zero = np.empty({cc}, np.int64), np.zeros({cb}, partial.dtype)
    xp = np.empty((c_in, hp, wp), partial.dtype)  # one sample's framed planes, in cache
    gs = np.empty((blocks, 1, oh, ow, {cb}), partial.dtype)  # its output gradient
    border = True  # written once
""" + claimed(
        "partial.shape[0]",
        f"""for s in range(bounds[task], bounds[task + 1]):
    frame(x, x_batch_first, s, top, left, xp, border)
    border = False
    unpack(gy, gy_batch_first, s, gs, sums)
    for ob in range(blocks):
        for c0 in range(0, c_in, {cc}):
            for k in range({cc}):
                cs[k] = min(c0 + k, c_in - 1)
            for p in range(kh):
                row_sums(gs, xp, zero, 0, ob, cs, c0, p, sh, dh, dw, partial, task)
""",
    )
    header = HEADER + (OPAQUE if fresh else "")
    return CLAIM + header + UNPACK + "\n".join(body) + "\n\n" + driver


UNPACK = """@block
def unpack(gy, batch_first, s, gs, sums):
    # gs[ob, 0, i, j, b] = gy[ob·CB + b, s, i, j] (zeros past C_out) for gy (C_out, N, OH,
    # OW), or (N, C_out, OH, OW) when batch_first; sums[s, o] = Σ gy[o, s] if sums has rows
    blocks, area, cb = gs.shape[0], gs.shape[2] * gs.shape[3], gs.shape[4]
    c_out, n, flat = gy.shape[1] if batch_first else gy.shape[0], gy.shape[1], gy.reshape(-1)
    # gy[o, s] starts at (s·C_out + o)·area batch-first, else (o·N + s)·area
    step = area if batch_first else n * area  # from channel o to o + 1
    totals = np.zeros(cb)
    for ob in range(blocks):
        out = gs[ob, 0].reshape(area, cb)  # (OH·OW, CB)
        width = min(cb, c_out - ob * cb)
        first = (s * c_out + ob * cb) * area if batch_first else (ob * cb * n + s) * area
        for b in range(cb):
            totals[b] = 0
        for k0 in range(0, area, 16):  # 16 rows of CB channels at a time, in L1
            k1 = min(k0 + 16, area)
            for b in range(width):
                at = first + b * step
                for k in range(k0, k1):
                    out[k, b] = flat[at + k]
            for b in range(width, cb):
                for k in range(k0, k1):
                    out[k, b] = 0
            if sums.shape[0]:  # a row at a time: CB independent sums, not one chain
                for k in range(k0, k1):
                    for b in range(width):
                        totals[b] += out[k, b]
        if sums.shape[0]:
            for b in range(width):
                sums[s, ob * cb + b] = totals[b]


"""


def names(prefix: str, count: int, suffix: str = "") -> str:
    """``"a0, a1, a2"`` for ``names("a", 3)``; ``"v[0], v[1]"`` for ``names("v[", 2, "]")``."""
    return ", ".join(f"{prefix}{b}{suffix}" for b in range(count))


def store_tile(first: str, jb: int, cb: int) -> list[str]:
    """Source lines that put the accumulators ``a{j}_{b}`` (JB columns × CB channels) into
    ``tile`` where the condition ``first`` holds, else add them to it; the tile keeps a
    column's CB values together: one vector store each."""
    lines = [f"        if {first}:"]
    for j in range(jb):
        lines.append(f"            {names(f'tile[{j}, ', cb, ']')} = {names(f'a{j}_', cb)}")
    lines.append("        else:")
    for j in range(jb):
        adds = ", ".join(f"tile[{j}, {b}] + a{j}_{b}" for b in range(cb))
        lines.append(f"            {names(f'tile[{j}, ', cb, ']')} = {adds}")
    return lines
