"""A team of threads for the passes bound by memory: the calling thread and helpers that spin.

A pass that streams an array once (an activation, its gradient, a global average) takes a
few hundred microseconds; on numba's workqueue layer a parallel launch wakes sleeping
workers while the caller sleeps, and on this kind of machine (a virtual one whose idle cores
halt at once) each wake-up costs tens of microseconds, or milliseconds when other programs
hold the cores (ReLU's forward on 64x32x28x28 on numba's two workers: 0.24 ms at best, 4.2
as a median under load; 0.5 ms on one thread). Here the calling thread works too, and the
helpers spin for a while after each pass, so back-to-back passes find them awake.

A team kernel is a one-thread compiled kernel whose last argument is a *control* array: it
takes chunks of its index range with :func:`claim` until none is left, and returns how many
indices it did. :func:`run` calls it on the calling thread and on every helper at once;
whoever comes first takes the next chunk, so a helper that is late (asleep, or its core
taken) takes fewer or none, and the pass never waits for it to start.

Two rules keep the threads from waiting for the GIL, which would put them to sleep: a helper
learns of a pass from the first claim, made inside the caller's kernel, which has released
the GIL; and it reports what it did (the caller's signal that the pass is complete) only
from inside its next spin, once it holds the GIL no longer.

Helpers share a pass only where the machine's memory feeds two cores faster than one, which
:func:`measure` finds out on a team's first pass, and again every :data:`MEASURE_EVERY` seconds
(the load of the machine changes the answer): on a virtual machine whose memory
one core already saturates, a shared pass only adds the helper's wake-up and the wait for its
last chunk (ReLU's forward in ResNet-8's inference step at two threads, 6 passes of 1-4 MB:
2.3-3.9 ms shared against 2.2-2.4 alone, and the 9 batch norms 4.8-6.1 against 3.9-4.3);
then every pass runs on the calling thread, and the helpers sleep, leaving the cores to the
parallel kernels between the passes.

Imported by the compiled twins only: it needs numba.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import jit

NEXT, DONE, STEP = 0, 1, 2  # a control array's cells: next index, indices done, least chunk
GUIDE = 4  # a claim takes this share of what is left of a pass (at least the least chunk)
SPINS = 10_000  # rounds of a spin, some 20 ns each: 0.2 ms
CHUNK = 65_536  # elements a claim takes at least (64K measured faster than 16K: fewer claims)
MEASURE_EVERY = 10.0  # seconds after which :func:`measure` is taken again (~10 ms each time)
PROBE = 1 << 21  # float32 elements of :func:`measure`'s arrays (8 MB each: past the caches)
# how much of the lone time a shared pass must take at most for the team to share: any gain
# (an AMD EPYC's probe took 0.54-0.91 of the lone time shared, varying with the host's load;
# under 0.8 the answer flipped between runs, and ReLU alone on 64x32x28x28 took 1.07x
# PyTorch's time shared, 1.67-1.76x alone, while whole training steps were alike either way)
FASTER = 1.0
SHARE: bool | None = None  # whether teams share passes; None: as :func:`measure` finds


@intrinsic
def atomic_add(typingctx, array, index, value):
    """array[index] += value as one atomic step (x86's ``lock xadd``); the old value."""
    signature = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], view, [args[1]])
        return builder.atomic_rmw("add", pointer, args[2], "seq_cst")

    return signature, codegen


@intrinsic
def atomic_read(typingctx, array, index):
    """array[index] read as another thread last wrote it (an atomic load: LLVM may neither
    keep it in a register across a loop nor move it)."""
    signature = types.int64(array, types.intp)

    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], view, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return signature, codegen


@jit.njit(cache=True, nogil=True, inline="always")
def claim(control, size):
    """The next chunk [start, stop) of range(size) no other thread has; empty when none is
    left. The first claim of a pass is what tells the spinning helpers to join.

    A chunk is a :data:`GUIDE`-th of what is left, the control's STEP at least: large chunks
    first (few claims), the least ones last, so the threads end a pass within a least chunk
    of each other. With chunks of a sixteenth of the pass each, the calling thread had
    waited for a helper's last one 3.9-5.7 ms of ResNet-8's 106-111 ms training step at two
    threads; 3.2-3.9 ms with these."""
    step = max(control[STEP], (size - atomic_read(control, NEXT)) // GUIDE)
    start = atomic_add(control, NEXT, step)
    return min(start, size), min(start + step, size)


@jit.njit(cache=True, nogil=True)
def report_and_wait(done_control, done, control, total, spins):
    """Add ``done`` to ``done_control``'s count, then spin up to ``spins`` rounds until
    ``control``'s pass is complete (``total`` indices done) or, with ``total`` < 0, until it
    has started (its first chunk claimed); whether it did."""
    if done:
        atomic_add(done_control, DONE, done)
    for _ in range(spins):
        if atomic_read(control, DONE if total >= 0 else NEXT) >= max(total, 1):
            return True
        np.empty(1, np.int8)  # a call LLVM cannot see into, the length of a round
    return False


LINE = 64  # bytes of a cache line: what one streaming store writes


@intrinsic
def store_fence(typingctx):
    """Order this thread's streaming stores before its next ones (x86's ``mfence``): its
    chunks of a pass must be in memory before it reports them done."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


def load_line(context, builder, array_type, array, index):
    """Code that loads the cache line's worth of elements of ``array`` from ``index`` as
    one LLVM vector (a numba intrinsic's codegen calls it); the line need not be aligned."""
    element = context.get_data_type(array_type.dtype)
    vector = ir.VectorType(element, LINE // (array_type.dtype.bitwidth // 8))
    view = context.make_array(array_type)(context, builder, array)
    pointer = cgutils.get_item_pointer(context, builder, array_type, view, [index])
    return builder.load(builder.bitcast(pointer, vector.as_pointer()), align=1)


def stream_line(context, builder, array_type, array, index, vector) -> None:
    """Code that stores ``vector`` (one cache line) into ``array`` from ``index``, which
    must start a line, past the caches: unlike an ordinary store's write-allocate, it does
    not read the line first. An output the next operation reads at once from the caches
    must not be written so (see the callers' sizes)."""
    view = context.make_array(array_type)(context, builder, array)
    pointer = cgutils.get_item_pointer(context, builder, array_type, view, [index])
    store = builder.store(vector, builder.bitcast(pointer, vector.type.as_pointer()), align=LINE)
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


@jit.njit(cache=True, nogil=True, inline="always")
def first_line(y, start, stop):
    """The first index in [start, stop) at which an element of ``y`` starts a cache line
    (``stop`` if none does): the elements before it are stored one by one."""
    offset = (y.ctypes.data + start * y.itemsize) % LINE
    return min(stop, start + (LINE - offset) % LINE // y.itemsize)


def new_control(step: int) -> np.ndarray:
    """A control array for one pass in chunks of ``step`` indices."""
    control = np.zeros(3, np.int64)
    control[STEP] = step
    return control


class Team:
    """The calling thread and ``helpers`` threads that take chunks of one pass at a time."""

    def __init__(self, helpers: int):
        self.busy = threading.Lock()  # one pass at a time; another caller runs alone
        self.posted = threading.Condition()
        self.task = None  # (kernel, args, control, the next pass's control)
        self.next_control = new_control(CHUNK)
        self.measured = None  # whether a shared pass is faster (:func:`measure`), as last found
        self.measured_at = 0.0  # perf_counter time of the last :func:`measure`
        for _ in range(helpers):
            threading.Thread(target=self.serve, name="kernelab-team", daemon=True).start()

    def shares(self) -> bool:
        """Whether this machine's passes run faster shared: :func:`measure` on the first
        pass and again once :data:`MEASURE_EVERY` seconds have passed (the caller holds
        ``busy``)."""
        if self.measured is None or time.perf_counter() - self.measured_at > MEASURE_EVERY:
            self.measured, self.measured_at = measure(self), time.perf_counter()
        return self.measured

    def serve(self) -> None:
        """A helper: spin until a pass starts (or sleep until one is posted), take its
        chunks, then report them from the next spin."""
        task, control = None, self.next_control
        reported, done = control, 0
        while True:
            if not report_and_wait(reported, done, control, -1, SPINS):
                with self.posted:
                    while self.task is task:
                        self.posted.wait()
            done = 0
            task = self.task
            kernel, args, reported, control = task
            try:
                done = kernel(*args, reported)
            except Exception:  # the caller's own call raises it (a kernel that cannot compile)
                done = 0

    def run(self, kernel, args, size: int, chunk: int) -> None:
        """``kernel(*args, control)`` on this thread and the helpers until ``size`` indices
        are done, in chunks of ``chunk`` at least (see :func:`claim`)."""
        control = self.next_control
        control[STEP] = chunk
        self.next_control = new_control(chunk)
        with self.posted:
            self.task = (kernel, args, control, self.next_control)
            self.posted.notify_all()
        begun = time.perf_counter()
        done = kernel(*args, control)
        ended = time.perf_counter()
        # a helper's last chunk ends within about one least chunk's time of this thread's last
        chunks = -(-done // control[STEP])
        patience = max(SPINS * 20e-9, 2 * (ended - begun) / chunks) if chunks else SPINS * 20e-9
        while not report_and_wait(control, done, control, size, SPINS):
            done = 0
            if time.perf_counter() - ended > patience:
                # a helper lost its core in the middle of a chunk: wait for it asleep
                time.sleep(50e-6)


@jit.njit(cache=True, nogil=True)
def probe_pass(x, y, control):
    """y = x + 1 in claimed chunks: a pass bound by memory, for :func:`measure`."""
    done = 0
    start, stop = claim(control, x.size)
    while start < stop:
        xs, ys = x[start:stop], y[start:stop]
        for i in range(xs.size):
            ys[i] = xs[i] + 1
        done += stop - start
        start, stop = claim(control, x.size)
    return done


def measure(team: Team, rounds: int = 5) -> bool:
    """Whether ``team`` streams :data:`PROBE` elements in under :data:`FASTER` of the time
    the calling thread alone takes (best of ``rounds`` each, interleaved; each shared pass
    right after an untimed one, so that it finds the helpers awake, as a run of passes
    does): some 10 ms. The caller holds ``team.busy``."""
    x = np.ones(PROBE, np.float32)
    y = np.empty_like(x)
    probe_pass(x, y, new_control(x.size))  # compiled or loaded, and y's pages mapped
    alone, shared = [], []
    for _ in range(rounds):
        begun = time.perf_counter()
        probe_pass(x, y, new_control(x.size))
        alone.append(time.perf_counter() - begun)
        team.run(probe_pass, (x, y), x.size, CHUNK)  # wakes the helpers
        begun = time.perf_counter()
        team.run(probe_pass, (x, y), x.size, CHUNK)
        shared.append(time.perf_counter() - begun)
    return min(shared) < FASTER * min(alone)


_teams: dict[int, Team] = {}
os.register_at_fork(after_in_child=_teams.clear)  # a forked child has none of the threads


def run(kernel, args: tuple, size: int, unit: int = 1) -> None:
    """``kernel(*args, control)`` over range(size), each index ``unit`` elements (a plane's
    pixels, say): on ``kl.set_num_threads``' threads from 2·:data:`CHUNK` elements where
    :func:`measure` found shared passes faster; else on this thread alone, as while another
    thread runs a pass.

    A pass does not go alone after a helper held it up (its core taken by another program):
    running every pass alone for a while after such a wait had made ResNet-8's training
    step slower, not faster. The host of a virtual machine takes a core from a helper about
    once a step, and PyTorch's threads spin on after its calls: with PyTorch's steps
    interleaved, 85.7-110 ms a step against 101-124 (medians of 9-12 rounds, three runs); at
    load 4 on 2 cores, 243 against 252, and the classic step 85.7 against 87.8."""
    team = team_for(size, -(-CHUNK // unit))
    if team is None or not team.busy.acquire(blocking=False):
        kernel(*args, new_control(max(size, 1)))
        return
    try:
        if SHARE if SHARE is not None else team.shares():
            team.run(kernel, args, size, -(-CHUNK // unit))
        else:
            kernel(*args, new_control(max(size, 1)))
    finally:
        team.busy.release()


def team_for(size: int, chunk: int) -> Team | None:
    """The team to share a pass of ``size`` indices in chunks of ``chunk`` at least, or None
    when it runs on the calling thread alone."""
    jit.numba_module()  # until loaded, its thread count reads as 1 whatever was asked
    threads = jit.get_threads() or 1
    if threads == 1 or size < 2 * chunk:
        return None
    return _teams.get(threads - 1) or _teams.setdefault(threads - 1, Team(threads - 1))
