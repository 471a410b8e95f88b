"""Where kernelab's time goes in one training (or inference) step of the classic network
(or, with ``--net``, of the tutorial CNN, ResNet-8, the MobileNet-like network or the CNN with a
wide dense layer of nets.py).

    python bench/profile_step.py [--threads 1] [--batch 64] [--mode train|infer] [--steps 20]
    python bench/profile_step.py --compare [--best] [--kernels] [--batch 64] [--steps 20]
    python bench/profile_step.py --net resnet8 --compare [--mode infer]

Wraps the ``forward`` and ``backward`` of every operation in ``kernelab.functional`` (and the
im2col/col2im/pad helpers, when the modules have them) with a timer, runs the step, and prints
each piece's exclusive time per step (the median over steps, or the minimum with ``--best``)
beside PyTorch's whole step.
With one thread the clock is the process's CPU time, which other programs on the machine
cannot inflate; with more threads it is wall time (CPU time would add the threads up).

The timers are per thread: the step's table holds what the calling thread waits for, one op
at a time, so a piece's wall time at two threads against one says how much of it the second
core shortens. A timed helper called on another thread (the convolution's sample ranges run
on a pool) is listed apart, as wall time summed over those threads, and not taken out of the
op that waits for it. ``--compare`` runs the step at one and at two threads in turn, on the
wall clock both, and prints each piece's gain from the second core: the serial pieces are the
ones near 1.0x; ``--kernels`` also times each compiled kernel's call, so a parallel launch
that leaves a core idle shows up by name. The wrappers cost about a microsecond each (and
reading the threads' clocks some 20 more). Only ``bench/`` code: the engine
is patched in this process, never edited.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import inspect
import os
import pkgutil
import statistics
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, models  # noqa: E402

HELPERS = ("im2col", "col2im", "pad")  # module-level functions worth timing on their own
ON_WORKERS = " [on worker threads, summed]"  # the label's suffix for calls off the main thread
REST = "rest: autograd, modules, optimizer, Python"  # the step's own exclusive time


def thread_times() -> dict[int, int]:
    """CPU nanoseconds of every thread of this process (numba's, BLAS's and pools' included),
    read from Linux's per-thread CPU clocks; empty elsewhere."""
    times = {}
    try:
        tids = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return times
    for tid in tids:
        with contextlib.suppress(OSError):  # OSError: the thread has ended
            # the clock id of thread tid's CPU time: MAKE_THREAD_CPUCLOCK(tid, SCHED)
            times[tid] = time.clock_gettime_ns((~tid << 3) | 6)
    return times


class Timers:
    """Exclusive time per label in the calling thread: a nested call's time is taken out of its
    caller's. Calls on other threads are totalled apart, under the label with ON_WORKERS.

    With ``per_thread``, each call on the main thread also reads every thread's CPU clock:
    ``cpu`` adds up the CPU time all threads spent in the label (exclusive, per thread), and
    ``path`` its critical path, call by call: the main thread's CPU time plus the busiest
    other thread's (a compiled kernel runs on numba's workers while the caller sleeps; where
    the caller works beside them, as in a BLAS product or ``conv_compiled.run``'s ranges,
    this is an upper bound), and ``overlap`` the lower bound beside it: the busier of the
    main thread and the busiest other (exact where they work side by side). Neither counts
    time the kernel kept a thread off the cores, so on a machine other programs load,
    ``path`` still says how long the call would take on idle cores. Only threads alive at the
    call's start and end are seen (pools' threads are; one started and ended inside is not).
    """

    def __init__(self, clock, per_thread: bool = False):
        self.clock, self.per_thread, self.local = clock, per_thread, threading.local()
        self.total, self.cpu, self.path, self.overlap = (collections.Counter() for _ in range(4))
        self.main = threading.main_thread()

    def clear(self) -> None:
        for counter in (self.total, self.cpu, self.path, self.overlap):
            counter.clear()

    def wrap(self, fn, label):
        def timed(*args, **kwargs):
            on_main = threading.current_thread() is self.main
            stack = getattr(self.local, "stack", None)
            if stack is None:
                stack = self.local.stack = []
            clocks = thread_times() if self.per_thread and on_main else None
            start = self.clock()
            stack.append([0.0, collections.Counter()])  # nested calls' time, per-thread CPU
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed, (inner, inner_cpu) = self.clock() - start, stack.pop()
                spent = collections.Counter()
                if clocks is not None:
                    after = thread_times()
                    spent = collections.Counter({t: after[t] - clocks.get(t, 0) for t in after})
                    own = {t: (spent[t] - inner_cpu[t]) * 1e-9 for t in spent}
                    caller = own.pop(threading.get_native_id(), 0.0)
                    self.cpu[label] += caller + sum(own.values())
                    self.path[label] += caller + max(own.values(), default=0.0)
                    self.overlap[label] += max([caller, *own.values()])
                self.total[label if on_main else label + ON_WORKERS] += elapsed - inner
                if stack:
                    stack[-1][0] += elapsed
                    stack[-1][1].update(spent)

        return timed


def instrument(timers: Timers) -> None:
    """Time every Function in kernelab.functional, and the helpers the modules define."""
    import kernelab.functional as functional
    from kernelab.autograd import Function

    modules = [
        importlib.import_module(f"kernelab.functional.{info.name}")
        for info in pkgutil.iter_modules(functional.__path__)
    ]
    timed = {}  # each helper and its timed wrapper
    for module in modules:
        short = module.__name__.rsplit(".", 1)[-1]
        for name, value in vars(module).items():
            if (
                name in HELPERS
                and inspect.isfunction(value)
                and value.__module__ == module.__name__
            ):
                timed[value] = timers.wrap(value, f"{name} ({short})")
                setattr(module, name, timed[value])
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                _wrap_class(timers, value, issubclass(value, Function))
    for module in modules:  # modules that imported a helper by name (pool's pad) time it too
        for name in HELPERS:
            value = getattr(module, name, None)
            if value in timed:
                setattr(module, name, timed[value])


def instrument_kernels(timers: Timers) -> None:
    """Time every compiled kernel's call on its own, as "numba: <name>" (nested in its op)."""
    from kernelab.core import jit

    call = jit.Kernel.__call__

    def timed_call(kernel, *args):
        return timers.wrap(call, f"numba: {kernel.__name__}")(kernel, *args)

    jit.Kernel.__call__ = timed_call


def _wrap_class(timers: Timers, cls, is_function: bool) -> None:
    # conv algorithms (Gemm, Depthwise, ...) have Function-like static forward/backward too
    for method in ("forward", "backward"):
        raw = inspect.getattr_static(cls, method, None)
        if not (is_function or method in vars(cls)):
            continue
        label = f"{cls.__name__}.{method}"
        if isinstance(raw, staticmethod):
            setattr(cls, method, staticmethod(timers.wrap(raw.__func__, label)))
        elif isinstance(raw, classmethod):  # Winograd's forward reads its class's tile
            setattr(cls, method, classmethod(timers.wrap(raw.__func__, label)))


class Profile:
    """Per-step times of the whole step (each engine) and of each piece, for one setting:
    ``wall`` (the timers' clock), and with per-thread clocks ``cpu`` and ``path``."""

    def __init__(self, statistic=statistics.median):
        self.statistic = statistic  # of the per-step times: the median, or min with --best
        self.steps: dict[str, list[float]] = {"kernelab": [], "torch": []}
        metrics = ("wall", "cpu", "path", "overlap")
        self.pieces = {m: collections.defaultdict(list) for m in metrics}

    def add_step(self, timers: Timers, ours: float, theirs: float) -> None:
        n = len(self.steps["kernelab"])
        for metric, counter in zip(
            self.pieces, (timers.total, timers.cpu, timers.path, timers.overlap), strict=True
        ):
            for label, seconds in counter.items():
                values = self.pieces[metric][label]
                values += [0.0] * (n - len(values)) + [seconds]
        self.steps["kernelab"].append(ours)
        self.steps["torch"].append(theirs)
        timers.clear()

    def labels(self) -> list[str]:
        return list(self.pieces["wall"])

    def median(self, label: str, metric: str = "wall") -> float:
        """The piece's time per step (0 in steps where it did not run)."""
        values = self.pieces[metric].get(label, [])
        return self.statistic(values + [0.0] * (len(self.steps["kernelab"]) - len(values)))

    def step(self, engine: str) -> float:
        return self.statistic(self.steps[engine])


def networks(net: str, batch: int):
    """kernelab's network, PyTorch's with the same weights, and 4 batches: the classic
    network on 1x28x28, or one of ``cases.NETS`` on its image shape (SGD momentum for all:
    the tutorial's Adam is not applied here)."""
    if net == "classic":
        ours = models.classic_kernelab()
        theirs = models.classic_torch()
        models.copy_weights(ours, theirs)
        return ours, theirs, models.make_batches(4, batch)
    import torch

    import kernelab as kl
    from bench import cases

    build, image = cases.NETS[net][:2]
    kl.manual_seed(cases.SEED)
    ours, theirs = build(kl.nn), build(torch.nn)
    models.copy_weights(ours, theirs)
    return ours, theirs, models.make_batches(4, batch, image[-1], cases.SEED, channels=image[0])


def run(args, settings: tuple[int, ...], clock, per_thread=False) -> dict[int, Profile]:
    """Profile the step at each thread count of ``settings``, alternating them step by step."""
    from threadpoolctl import threadpool_limits

    train = args.mode == "train"
    ours_model, their_model, batches = networks(args.net, args.batch)
    timers = Timers(clock, per_thread)
    ours = timers.wrap(
        (models.kernelab_train_step if train else models.kernelab_infer_step)(ours_model, batches),
        REST,  # the step's exclusive time: all that is not a timed piece
    )
    theirs = (models.torch_train_step if train else models.torch_infer_step)(their_model, batches)
    instrument(timers)
    if args.kernels:
        instrument_kernels(timers)
    statistic = min if args.best else statistics.median
    profiles = {threads: Profile(statistic) for threads in settings}
    for step in range(3 + args.steps):
        for threads in settings:
            harness.use_threads(threads)  # both engines, numba's pool started first
            with threadpool_limits(threads):
                times = []
                timers.clear()
                for engine in (ours, theirs):  # PyTorch's step runs untimed by the wrappers
                    time.sleep(0.1)  # let the other engine's spinning threads go idle
                    start = clock()
                    engine()
                    times.append(clock() - start)
            if step >= 3:  # the first steps compile and warm up
                profiles[threads].add_step(timers, *times)
    return profiles


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument(
        "--net",
        choices=("classic", "tutorial", "resnet8", "mobile", "dense_head"),
        default="classic",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--compare", action="store_true", help="1 and 2 threads: each piece's gain, its serial part"
    )
    parser.add_argument(
        "--kernels", action="store_true", help="also time each compiled kernel's call on its own"
    )
    parser.add_argument(
        "--best",
        action="store_true",
        help="each time's minimum over the steps, not its median: on a machine other programs "
        "load, a two-thread op waits whole time slices for a thread the kernel parked",
    )
    args = parser.parse_args(argv)
    if args.compare:
        compare(args, run(args, (1, 2), time.perf_counter, per_thread=True))
        return 0
    clock = time.process_time if args.threads == 1 else time.perf_counter
    profile = run(args, (args.threads,), clock)[args.threads]
    report(args, profile, "CPU" if args.threads == 1 else "wall")
    return 0


def title(args, profile: Profile, threads: int, clock_name: str) -> str:
    ours, theirs = profile.step("kernelab"), profile.step("torch")
    return (
        f"{args.net} network, {args.mode}, batch {args.batch}, {threads} thread(s), {clock_name} "
        f"time: kernelab {1e3 * ours:.1f} ms/step, PyTorch {1e3 * theirs:.1f} ms/step "
        f"({'best' if args.best else 'median'} of {args.steps} steps; {ours / theirs:.2f}x)"
    )


def report(args, profile: Profile, clock_name: str) -> None:
    print(title(args, profile, args.threads, clock_name) + "\n")
    whole = profile.step("kernelab")
    print("| piece | ms/step | share |\n|---|---|---|")
    for label in sorted(profile.labels(), key=profile.median, reverse=True):
        seconds = profile.median(label)
        print(f"| {label} | {1e3 * seconds:.2f} | {100 * seconds / whole:.1f}% |")


def compare(args, profiles: dict[int, Profile]) -> None:
    """Each piece at one and two threads: wall time, and from the threads' CPU clocks the
    critical path that says what the second core gains on idle cores."""
    one, two = profiles[1], profiles[2]
    for threads, profile in profiles.items():
        print(title(args, profile, threads, "wall"))
    gains = {e: one.step(e) / two.step(e) for e in ("kernelab", "torch")}
    labels = [label for label in one.labels() if ON_WORKERS not in label]
    cpu = sum(one.median(label, "cpu") for label in labels)
    path = sum(two.median(label, "path") for label in labels)
    low = sum(two.median(label, "overlap") for label in labels)
    print(
        f"gain from the second core, wall: kernelab {gains['kernelab']:.2f}x, PyTorch "
        f"{gains['torch']:.2f}x; kernelab on idle cores (CPU at 1 thread {1e3 * cpu:.1f} ms / "
        f"critical path at 2 {1e3 * low:.1f}-{1e3 * path:.1f} ms): "
        f"{cpu / path:.2f}-{cpu / low:.2f}x\n"
    )
    print(
        "| piece | CPU ms, 1 thread | wall ms, 2 threads | CPU ms, 2 threads | "
        "critical path ms (its lower bound) | gain on idle cores | ms the 2nd core leaves |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    for label in labels:
        single, critical = one.median(label, "cpu"), two.median(label, "path")
        total, wall = two.median(label, "cpu"), two.median(label)
        low = two.median(label, "overlap")
        rows.append((critical - single / 2, label, single, wall, total, critical, low))
    for left, label, single, wall, total, critical, low in sorted(rows, reverse=True):
        gain = f"{single / critical:.2f}x" if critical > 0 else "-"
        print(
            f"| {label} | {1e3 * single:.2f} | {1e3 * wall:.2f} | {1e3 * total:.2f} | "
            f"{1e3 * critical:.2f} ({1e3 * low:.2f}) | {gain} | {1e3 * left:.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
