"""The Python source of the thin-input convolution's kernels, generated per block shape.

With one to four input channels a layer has K = C_in·kH·kW between 1 and about 200 kernel
taps: little work per output pixel, and the output's pixels are what the kernels vectorise
along (JB of them a vector: 16 float32 or 8 float64).

* The forward (:func:`correlation_source`) holds a block of OB output channels × JB output
  columns in *scalar* locals ``a{o}_{l}`` with constant indices, as ``conv_direct_source.py``
  does (numba keeps an array of accumulators in memory); LLVM's straight-line vectoriser packs
  the JB columns of a channel into one vector register. Each step of the kernel walk is one
  contiguous load of JB input pixels and OB FMAs with a broadcast weight, and the finished
  tile is OB contiguous stores into the output rows: the wide layers' channel-innermost tiles
  would cost a scattered store per FMA or two here.
* The kernel gradient (:func:`kernel_gradient_source`) copies each sample's input once into
  planes in which every tap meets the sample's output pixels as ONE contiguous run, then sums
  ``gy[o, u] · run_k[u]`` into a block of OB·TQ scalars: a reduction in a plain loop, which
  LLVM's *loop* vectoriser splits into vector lanes by itself (``fastmath`` "reassoc" for that
  loop only) and adds pairwise at its end, so a float32 sum runs over a few hundred terms,
  not all N·OH·OW. Written with scalar lanes for the straight-line vectoriser instead, the
  same block took ~10 s to compile and ran no faster.

Only the block sizes are baked in; kernel size, strides, dilation, padding and channel counts
are arguments, so one forward and one kernel gradient per dtype serve every thin layer.
``CACHE`` is set by ``jit.kernel_from_source``.
"""

from __future__ import annotations

import textwrap

# the drivers' (see claimed); the comment names claim's scheme, which numba inlines into each
# driver: numba caches a driver by its source alone
CLAIM = "from kernelab.core.team import claim  # guided: chunks shrink as a pass ends\n"
BLOCK_HEADER = (
    CLAIM
    + """import numpy as np
from numba import njit

block = njit(cache=CACHE, nogil=True, error_model="numpy", fastmath={"contract"})


"""
)
HEADER = (
    BLOCK_HEADER
    + """reduction = njit(
    cache=CACHE, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"}
)


@block
def fill(xp, s, sh, sw, dw, ow, xq):
    # plane (c, q, a) = rows a, a + sh, ... of channel c from column q·dw on, OW pixels each
    c_in, hp, kw = xp.shape[0], xp.shape[2], xq.shape[0] // (xp.shape[0] * sh)
    for c in range(c_in):
        for q in range(kw):
            for a in range(sh):
                plane = xq[(c * kw + q) * sh + a]
                for h in range((hp - a + sh - 1) // sh):
                    src = xp[c, s, h * sh + a, q * dw :]
                    if sw == 1:  # indexed by the loop counter: no negative-index checks
                        run, src = plane[h * ow : (h + 1) * ow], src[:ow]
                        for j in range(ow):
                            run[j] = src[j]
                    else:
                        strided, run = src[::sw], plane[h * ow : (h + 1) * ow]
                        for j in range(ow):
                            run[j] = strided[j]
"""
)


def correlation_name(ob: int, jb: int) -> str:
    """The driver's name in :func:`correlation_source`."""
    return f"thin_correlate_o{ob}_j{jb}"


def correlation_source(ob: int, jb: int) -> str:
    """A kernel ``(xph, wpk, bias, starts, sh, dh, phase, shift, y, control)`` computing, for
    the tasks it claims (:func:`claimed`)::

        y[o, s, i, j] = bias[o] + Σ_{c,p,q} wpk[o // OB, c, p, q, o % OB]
                                            · xph[c, s, i·sh + p·dh, phase[q], j + shift[q]]

    for the phased input xph (C, N, Hp, R, Wr), wpk (C_out/OB, C, kH, kW, OB), bias
    (C_out/OB·OB,) and y (C_out/OB·OB, N, OH, OW). A task is one (sample, block of OB output
    channels); it walks the output rows in tiles of JB columns starting at ``starts`` (the
    last may overlap its neighbour), holding OB·JB accumulators while it walks the kernel.
    """
    lanes = range(jb)
    body = [
        "@block",
        "def tile_sums(xph, wpk, bv, s, ob, i, sh, j0, dh, phase, shift, y):",
        "    c_in, kh, kw = wpk.shape[1], wpk.shape[2], wpk.shape[3]",
    ]
    for o in range(ob):
        body.append(f"    b = bv[{o}]")
        body.append(f"    {_names(f'a{o}_', jb)} = {', '.join('b' for _ in lanes)}")
    body += [
        "    for c in range(c_in):",
        "        for p in range(kh):",
        "            xr, wr = xph[c, s, i * sh + p * dh], wpk[ob, c, p]",
        "            for q in range(kw):",
        "                xs, wq = xr[phase[q], j0 + shift[q] :], wr[q]",
        f"                {_names('x', jb)} = {_names('xs[', jb, ']')}",
    ]
    for o in range(ob):
        body.append(f"                w = wq[{o}]")
        body += [f"                a{o}_{lane} += x{lane} * w" for lane in lanes]
    for o in range(ob):  # one contiguous (JB,) store per output channel
        body.append(f"    r = y[ob * {ob} + {o}, s, i, j0:]")
        body.append(f"    {_names('r[', jb, ']')} = {_names(f'a{o}_', jb)}")
    driver = f"""
def {correlation_name(ob, jb)}(xph, wpk, bias, starts, sh, dh, phase, shift, y, control):
    blocks, oh = wpk.shape[0], y.shape[2]
""" + claimed(
        "y.shape[1] * blocks",
        f"""s, ob = task // blocks, task % blocks
bv = bias[ob * {ob} : (ob + 1) * {ob}]
for i in range(oh):
    for t in range(starts.shape[0]):
        tile_sums(xph, wpk, bv, s, ob, i, sh, starts[t], dh, phase, shift, y)
""",
    )
    return BLOCK_HEADER + "\n".join(body) + "\n\n" + driver


def kernel_gradient_name(ob: int, tq: int) -> str:
    """The driver's name in :func:`kernel_gradient_source`."""
    return f"thin_kernel_gradient_o{ob}_t{tq}"


def kernel_gradient_source(ob: int, tq: int) -> str:
    """A kernel ``(gy, xp, bounds, taps, sh, sw, dw, planes, ow, partial, control)``
    computing, for the tasks t it claims (:func:`claimed`)::

        partial[t, o // OB, k // TQ, o % OB, k % TQ] = Σ_{s in task t, i, j} gy[o, s, i·OW + j]
                                          · xp[c_k, s, i·sh + p_k·dh, j·sw + q_k·dw]

    for gy (C_out, N, OH·OW), the padded input xp (C, N, Hp, Wp), taps (2, K) and partial
    (T, ⌈C_out/OB⌉, K/TQ, OB, TQ), zeros; task t sums samples ``bounds[t]:bounds[t + 1]``.

    The planes: plane (c, q, a) holds rows a, a + sh, ... of channel c from column q·dw on,
    OW pixels each (every sw-th). What tap (c, p, q) meets at output pixel (i, j) is row
    i + ⌊p·dh / sh⌋, pixel j of plane (c, q, p·dh mod sh), so at pixels 0, 1, ... of the
    sample it meets ONE run of that plane from ``taps[1] = ⌊p·dh / sh⌋·OW`` on (``taps[0]``
    the plane; K a multiple of TQ, the last tap repeated). Output channels past C_out repeat
    the last one; their sums are ignored.
    """
    pairs = [(o, k) for o in range(ob) for k in range(tq)]
    body = ["@reduction", "def tap_sums(gy, s, xq, taps, ob, kg, am):"]
    body += [f"    g{o} = gy[min(ob * {ob} + {o}, gy.shape[0] - 1), s]" for o in range(ob)]
    for k in range(tq):
        body.append(f"    plane, start = taps[0, kg * {tq} + {k}], taps[1, kg * {tq} + {k}]")
        body.append(f"    v{k} = xq[plane, start : start + gy.shape[2]]")
    body += [f"    a{o}_{k} = am[{o}, {k}]" for o, k in pairs]
    body += ["    for u in range(gy.shape[2]):"]
    body += [f"        g{o}u = g{o}[u]" for o in range(ob)]
    for k in range(tq):
        body.append(f"        x = v{k}[u]")
        body += [f"        a{o}_{k} += g{o}u * x" for o in range(ob)]
    body += [f"    am[{o}, {k}] = a{o}_{k}" for o, k in pairs]
    driver = f"""

def {kernel_gradient_name(ob, tq)}(gy, xp, bounds, taps, sh, sw, dw, planes, ow, partial, control):
    blocks, groups, hr = partial.shape[1], partial.shape[2], -(-xp.shape[2] // sh)
""" + claimed(
        "bounds.shape[0] - 1",
        """# every row a tap's run reaches is filled: no zeros needed
xq = np.empty((planes, hr * ow), gy.dtype)
out = partial[task]
for s in range(bounds[task], bounds[task + 1]):
    fill(xp, s, sh, sw, dw, ow, xq)
    for ob in range(blocks):
        for kg in range(groups):
            tap_sums(gy, s, xq, taps, ob, kg, out[ob, kg])
""",
    )
    return HEADER + "\n\n" + "\n".join(body) + "\n" + driver


def claimed(count: str, body: str) -> str:
    """The rest of a driver: ``body`` (Python at indent 0) for each ``task`` of
    ``range(count)`` it claims, in chunks, from the control array ``control`` with
    ``core/team.py``'s :func:`claim`, until none is left; it returns how many it did. Every
    thread of a pass makes one call (``conv_compiled.share``) and holds no GIL in between."""
    return f"""    done, tasks = 0, {count}
    first, last = claim(control, tasks)
    while first < last:
        for task in range(first, last):
{textwrap.indent(body, " " * 12)}
        done += last - first
        first, last = claim(control, tasks)
    return done
"""


def _names(prefix: str, count: int, suffix: str = "") -> str:
    """``"a0, a1, a2"`` for ``_names("a", 3)``; ``"v[0], v[1]"`` for ``_names("v[", 2, "]")``."""
    return ", ".join(f"{prefix}{b}{suffix}" for b in range(count))
