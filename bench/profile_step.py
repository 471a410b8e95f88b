"""Where kernelab's time goes in one training (or inference) step of the classic network.

    python bench/profile_step.py [--threads 1] [--batch 64] [--mode train|infer] [--steps 20]
    python bench/profile_step.py --compare [--batch 64] [--steps 20]

Wraps the ``forward`` and ``backward`` of every operation in ``kernelab.functional`` (and the
im2col/col2im/pad helpers, when the modules have them) with a timer, runs the step, and prints
each piece's exclusive time per step (the median over steps) beside PyTorch's whole step.
With one thread the clock is the process's CPU time, which other programs on the machine
cannot inflate; with more threads it is wall time (CPU time would add the threads up).

The timers are per thread: the step's table holds what the calling thread waits for, one op
at a time, so a piece's wall time at two threads against one says how much of it the second
core shortens. A timed helper called on another thread (the convolution's sample ranges run
on a pool) is listed apart, as wall time summed over those threads, and not taken out of the
op that waits for it. ``--compare`` runs the step at one and at two threads in turn, on the
wall clock both, and prints each piece's gain from the second core: the serial pieces are the
ones near 1.0x. The wrappers cost about a microsecond each. Only ``bench/`` code: the engine
is patched in this process, never edited.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import inspect
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


class Timers:
    """Exclusive time per label in the calling thread: a nested call's time is taken out of its
    caller's. Calls on other threads are totalled apart, under the label with ON_WORKERS."""

    def __init__(self, clock):
        self.clock, self.total, self.local = clock, collections.Counter(), threading.local()
        self.main = threading.main_thread()

    def wrap(self, fn, label):
        def timed(*args, **kwargs):
            stack = getattr(self.local, "stack", None)
            if stack is None:
                stack = self.local.stack = []
            start = self.clock()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed, inner = self.clock() - start, stack.pop()
                if threading.current_thread() is self.main:
                    self.total[label] += elapsed - inner
                else:
                    self.total[label + ON_WORKERS] += elapsed - inner
                if stack:
                    stack[-1] += elapsed

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


def _wrap_class(timers: Timers, cls, is_function: bool) -> None:
    # conv algorithms (Gemm, Depthwise, ...) have Function-like static forward/backward too
    for method in ("forward", "backward"):
        raw = inspect.getattr_static(cls, method, None)
        if isinstance(raw, staticmethod) and (is_function or method in vars(cls)):
            label = f"{cls.__name__}.{method}"
            setattr(cls, method, staticmethod(timers.wrap(raw.__func__, label)))


class Profile:
    """Per-step times of the whole step (each engine) and of each piece, for one setting."""

    def __init__(self):
        self.steps: dict[str, list[float]] = {"kernelab": [], "torch": []}
        self.pieces: dict[str, list[float]] = collections.defaultdict(list)

    def add_step(self, timers: Timers, ours: float, theirs: float) -> None:
        n = len(self.steps["kernelab"])
        for label, seconds in timers.total.items():
            self.pieces[label] += [0.0] * (n - len(self.pieces[label])) + [seconds]
        self.steps["kernelab"].append(ours)
        self.steps["torch"].append(theirs)
        timers.total.clear()

    def median(self, label: str) -> float:
        """The piece's median time per step (0 in steps where it did not run)."""
        values = self.pieces.get(label, [])
        return statistics.median(values + [0.0] * (len(self.steps["kernelab"]) - len(values)))

    def step(self, engine: str) -> float:
        return statistics.median(self.steps[engine])

    def rest(self) -> float:
        """The step's time outside every timed piece on the main thread (medians)."""
        timed = sum(self.median(label) for label in self.pieces if ON_WORKERS not in label)
        return self.step("kernelab") - timed


def run(args, settings: tuple[int, ...], clock) -> dict[int, Profile]:
    """Profile the step at each thread count of ``settings``, alternating them step by step."""
    from threadpoolctl import threadpool_limits

    batches = models.make_batches(4, args.batch)
    train = args.mode == "train"
    ours = (models.kernelab_train_step if train else models.kernelab_infer_step)(
        models.classic_kernelab(), batches
    )
    theirs = (models.torch_train_step if train else models.torch_infer_step)(
        models.classic_torch(), batches
    )
    timers = Timers(clock)
    instrument(timers)
    profiles = {threads: Profile() for threads in settings}
    for step in range(3 + args.steps):
        for threads in settings:
            harness.use_threads(threads)  # both engines, numba's pool started first
            with threadpool_limits(threads):
                times = []
                timers.total.clear()
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
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--compare", action="store_true", help="1 and 2 threads, wall time, each piece's gain"
    )
    args = parser.parse_args(argv)
    if args.compare:
        compare(args, run(args, (1, 2), time.perf_counter))
        return 0
    clock = time.process_time if args.threads == 1 else time.perf_counter
    profile = run(args, (args.threads,), clock)[args.threads]
    report(args, profile, "CPU" if args.threads == 1 else "wall")
    return 0


def title(args, profile: Profile, threads: int, clock_name: str) -> str:
    ours, theirs = profile.step("kernelab"), profile.step("torch")
    return (
        f"classic network, {args.mode}, batch {args.batch}, {threads} thread(s), {clock_name} "
        f"time: kernelab {1e3 * ours:.1f} ms/step, PyTorch {1e3 * theirs:.1f} ms/step "
        f"(medians; {ours / theirs:.2f}x)"
    )


def report(args, profile: Profile, clock_name: str) -> None:
    print(title(args, profile, args.threads, clock_name) + "\n")
    whole = profile.step("kernelab")
    print("| piece | ms/step | share |\n|---|---|---|")
    for label in sorted(profile.pieces, key=profile.median, reverse=True):
        seconds = profile.median(label)
        print(f"| {label} | {1e3 * seconds:.2f} | {100 * seconds / whole:.1f}% |")
    rest = profile.rest()
    print(
        f"| rest: autograd, modules, optimizer, Python | {1e3 * rest:.2f} | "
        f"{100 * rest / whole:.1f}% |"
    )


def compare(args, profiles: dict[int, Profile]) -> None:
    """Each piece's wall time at one and two threads, and the second core's gain on it."""
    one, two = profiles[1], profiles[2]
    for threads, profile in profiles.items():
        print(title(args, profile, threads, "wall"))
    gains = {e: one.step(e) / two.step(e) for e in ("kernelab", "torch")}
    print(
        f"gain from the second core: kernelab {gains['kernelab']:.2f}x, "
        f"PyTorch {gains['torch']:.2f}x\n"
    )
    print("| piece | ms at 1 thread | ms at 2 | gain | ms the 2nd core did not save |")
    print("|---|---|---|---|---|")
    rows = [(label, one.median(label), two.median(label)) for label in one.pieces]
    rows.append(("rest: autograd, modules, optimizer, Python", one.rest(), two.rest()))
    for label, a, b in sorted(rows, key=lambda row: row[2] - row[1] / 2, reverse=True):
        gain = f"{a / b:.2f}x" if b > 0 else "-"
        print(f"| {label} | {1e3 * a:.2f} | {1e3 * b:.2f} | {gain} | {1e3 * (b - a / 2):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
