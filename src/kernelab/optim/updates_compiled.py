"""Compiled twins of the SGD and Adam updates (``sgd.py``, ``adam.py``): a group in one launch.

The NumPy updates make a temporary array per operation; these read each element of the
parameter, its gradient and its state once and write them back in place, on all threads.
Every hyper-parameter arrives already cast to the parameters' dtype and each operation is
done in the same order as the NumPy reference, so a float32 run rounds exactly as NumPy's
float32 arithmetic does (NumPy casts a Python float to the array's dtype first).

A group's parameters of one dtype are updated by one pass (ResNet-8's 29 parameters had made
SGD 29 launches a step), a team kernel (``core/team.py``: the calling thread and helpers that
spin, where a parallel launch on numba's workers cost tens of microseconds even at one thread,
and numba's parallel pipeline took 2-2.4 s to compile Adam, most of a cold first step's
compilation). The kernel gets the parameters' memory as a table of addresses (``count`` rows
of the arrays' addresses: one signature whatever the group holds, where a tuple of arrays
would compile one per length) and its tasks: runs of at most :data:`CHUNK` elements of one
parameter each (:func:`parts`), kept with the table.
"""

from __future__ import annotations

import weakref

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from ..core import jit, team
from ..core.team import claim

FLOATS = (np.float32, np.float64)
CHUNK = 1 << 13  # elements per task: 32-64 KB of each array, a few tasks a thread


@intrinsic
def pointer(typingctx, address, like):
    """The integer ``address`` as a pointer to numbers of ``like``'s (a scalar's) type."""
    kind = types.CPointer(like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(kind))

    return kind(address, like), codegen


@numba.njit(cache=True, inline="always")
def run(address, start, stop, like):
    """Elements ``start:stop`` of the 1-D run of numbers of ``like``'s type at ``address``.

    Loops index it from 0: a loop counter that starts elsewhere could be negative for all
    numba knows, and its wraparound check keeps the loop from vectorising (10x slower).
    """
    return numba.carray(pointer(address, like), stop)[start:stop]


def by_dtype(items: list, arrays) -> tuple[dict, list]:
    """The items (parameter, gradient, state) a kernel can take, by dtype, and the others.

    Taken: a float32 or float64 parameter whose own arrays, ``arrays(p, state)`` (None where
    the state has none yet), are writeable and C-contiguous of its dtype, so flat views of
    them exist (the kernels write through addresses: NumPy's read-only flag guards nothing).
    """
    batches: dict[np.dtype, list] = {}
    rest = []
    for item in items:
        p, _, state = item
        dtype = p.array.dtype
        own = [a for a in arrays(p, state) if a is not None]
        flags = [a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable for a in own]
        if dtype.type in FLOATS and all(flags):
            batches.setdefault(dtype, []).append(item)
        else:
            rest.append(item)
    return batches, rest


def table(rows: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The addresses (count, arrays a row) of each row's arrays, an empty array's as 0, and
    the :func:`parts` of the rows' first arrays.

    The arrays must stay alive, C-contiguous, until the kernel returns: the caller holds them.
    """
    addresses = np.array(
        [[a.ctypes.data if a.size else 0 for a in row] for row in rows], np.int64
    )  # (count, arrays a row)
    return addresses, parts([row[0].size for row in rows])


def parts(sizes: list[int]) -> np.ndarray:
    """The kernels' tasks (P, 3): (row k, start, end) of runs of at most :data:`CHUNK`
    elements, the run over all rows' elements cut every CHUNK elements and where a row ends
    (a task then reads one parameter's arrays: the kernels need not walk across rows)."""
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    cuts = np.union1d(np.arange(0, offsets[-1], CHUNK), offsets)
    k = np.searchsorted(offsets, cuts[:-1], side="right") - 1
    return np.stack([k, cuts[:-1] - offsets[k], cuts[1:] - offsets[k]], axis=1)


# owner (an optimiser) -> {key: (the rows' arrays but their gradients, addresses, parts)}
_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def kept_table(owner, key, rows: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`table` of ``rows`` (each ``[parameter, gradient, state...]``), reusing the one
    ``owner`` made last under ``key`` while every row holds the same arrays but its gradient.

    Reading an array's address costs 1.4 µs: ResNet-8's 29 parameters with their gradients
    and momentum buffers took 120 µs a step to tabulate. A parameter's and its state's arrays
    are the same objects step after step (their memory cannot move while the table holds
    them: NumPy resizes in place only what nothing else references), so only the gradients'
    column, new each step, is read again. A copy of the optimiser is another owner, whose
    arrays are others: it starts a table of its own (an owner that cannot be a weak key,
    unhashable, tabulates every time)."""
    try:
        tables = _tables.setdefault(owner, {})
    except TypeError:
        return table(rows)
    kept = tables.get(key)
    if kept is None or not _same_arrays(kept[0], rows):
        addresses, tasks = table(rows)
        tables[key] = [[row[0], *row[2:]] for row in rows], addresses, tasks
        return addresses, tasks
    addresses = kept[1]
    addresses[:, 1] = [row[1].ctypes.data if row[1].size else 0 for row in rows]
    return addresses, kept[2]


def _same_arrays(kept: list[list[np.ndarray]], rows: list[list[np.ndarray]]) -> bool:
    """Whether ``rows`` hold the arrays ``kept`` does, gradients aside (an empty array, which
    has no address, stands for any other)."""
    if len(kept) != len(rows):
        return False
    for old, row in zip(kept, rows, strict=True):
        if len(old) + 1 != len(row) or old[0] is not row[0]:
            return False
        for a, b in zip(old[1:], row[2:], strict=True):
            if a is not b and (a.size or b.size):
                return False
    return True


def sgd(addresses, tasks, *arguments) -> None:
    """:func:`sgd_tasks` over the table's :func:`parts`, on the team."""
    team.run(sgd_tasks, (addresses, tasks, *arguments), len(tasks), unit=CHUNK)


def adam(addresses, tasks, *arguments) -> None:
    """:func:`adam_tasks` over the table's :func:`parts`, on the team."""
    team.run(adam_tasks, (addresses, tasks, *arguments), len(tasks), unit=CHUNK)


@jit.kernel()
def sgd_tasks(
    addresses, tasks, first, lr, momentum, keep, weight_decay, nesterov, maximize, control
):
    """SGD in place on the elements of the :func:`parts` ``tasks`` this thread claims:
    ``addresses[k]`` = (parameter, gradient, momentum buffer, 0 without momentum),
    ``first[k]`` whether the buffer starts from this gradient. ``keep`` is ``1 − dampening``."""
    done = 0
    t0, t1 = claim(control, tasks.shape[0])
    while t0 < t1:
        for task in range(t0, t1):
            k, start, end = tasks[task, 0], tasks[task, 1], tasks[task, 2]
            p = run(addresses[k, 0], start, end, lr)
            grad = run(addresses[k, 1], start, end, lr)
            buf = run(addresses[k, 2], start, end if momentum != 0 else start, lr)
            restart = first[k]  # in a register: the stores below might alias ``first``
            for i in range(end - start):
                g = -grad[i] if maximize else grad[i]
                if weight_decay != 0:
                    g = g + weight_decay * p[i]
                if momentum != 0:
                    b = g if restart else buf[i] * momentum + keep * g
                    buf[i] = b
                    g = g + momentum * b if nesterov else b
                p[i] = p[i] - lr * g
        done += t1 - t0
        t0, t1 = claim(control, tasks.shape[0])
    return done


@jit.kernel()
def adam_tasks(addresses, tasks, hyper, corrections, decoupled, amsgrad, maximize, control):
    """Adam in place on the elements of the :func:`parts` ``tasks`` this thread claims:
    ``addresses[k]`` = (parameter, gradient, first moment, second moment, its running maximum
    or 0 without amsgrad).

    ``hyper`` holds, in the parameters' dtype: weight decay (or the decoupled shrink factor
    ``1 − lr·weight_decay``), ``1 − β1``, ``β2``, ``1 − β2`` and eps; ``corrections[k]`` the
    step size ``lr / (1 − β1^t)`` and ``√(1 − β2^t)`` of parameter k's step count t.
    """
    decay, rest1, beta2, rest2, eps = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    done = 0
    t0, t1 = claim(control, tasks.shape[0])
    while t0 < t1:
        for task in range(t0, t1):
            k, start, end = tasks[task, 0], tasks[task, 1], tasks[task, 2]
            p = run(addresses[k, 0], start, end, eps)
            grad = run(addresses[k, 1], start, end, eps)
            m = run(addresses[k, 2], start, end, eps)
            v = run(addresses[k, 3], start, end, eps)
            v_max = run(addresses[k, 4], start, end if amsgrad else start, eps)
            step_size, correction2 = corrections[k, 0], corrections[k, 1]
            for i in range(end - start):
                g = -grad[i] if maximize else grad[i]
                if decoupled:
                    p[i] = p[i] * decay
                elif decay != 0:
                    g = g + decay * p[i]
                mi = m[i] + rest1 * (g - m[i])  # torch's lerp towards g
                m[i] = mi
                vi = v[i] * beta2 + rest2 * g * g
                v[i] = vi
                if amsgrad:
                    w = v_max[i]
                    if w > vi or w != w:  # np.maximum: NaN wins
                        vi = w
                    v_max[i] = vi
                p[i] = p[i] - step_size * mi / (np.sqrt(vi) / correction2 + eps)
        done += t1 - t0
        t0, t1 = claim(control, tasks.shape[0])
    return done
