"""Where kernelab's time goes in one training (or inference) step of the classic network.

    python bench/profile_step.py [--threads 1] [--batch 64] [--mode train|infer] [--steps 20]

Wraps the ``forward`` and ``backward`` of every operation in ``kernelab.functional`` (and the
im2col/col2im/pad helpers, when the modules have them) with a timer, runs the step, and prints
each piece's exclusive time per step beside PyTorch's whole step. With one thread the clock is
the process's CPU time, which other programs on the machine cannot inflate; with more threads
it is wall time (CPU time would add the threads up). The wrappers cost about a microsecond each.
Only ``bench/`` code: the engine is patched in this process, never edited.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import inspect
import pkgutil
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, models  # noqa: E402

HELPERS = ("im2col", "col2im", "pad")  # module-level functions worth timing on their own


class Timers:
    """Exclusive time per label: a nested call's time is taken out of its caller's."""

    def __init__(self, clock):
        self.clock, self.total, self.stack = clock, collections.Counter(), []

    def wrap(self, fn, label):
        def timed(*args, **kwargs):
            start = self.clock()
            self.stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed, inner = self.clock() - start, self.stack.pop()
                self.total[label] += elapsed - inner
                if self.stack:
                    self.stack[-1] += elapsed

        return timed


def instrument(timers: Timers) -> None:
    """Time every Function in kernelab.functional, and the helpers the modules define."""
    import kernelab.functional as functional
    from kernelab.autograd import Function

    for info in pkgutil.iter_modules(functional.__path__):
        module = importlib.import_module(f"kernelab.functional.{info.name}")
        for name, value in vars(module).items():
            if (
                name in HELPERS
                and inspect.isfunction(value)
                and value.__module__ == module.__name__
            ):
                setattr(module, name, timers.wrap(value, f"{name} ({info.name})"))
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                _wrap_class(timers, value, issubclass(value, Function))


def _wrap_class(timers: Timers, cls, is_function: bool) -> None:
    # conv algorithms (Gemm, Depthwise, ...) have Function-like static forward/backward too
    for method in ("forward", "backward"):
        raw = inspect.getattr_static(cls, method, None)
        if isinstance(raw, staticmethod) and (is_function or method in vars(cls)):
            label = f"{cls.__name__}.{method}"
            setattr(cls, method, staticmethod(timers.wrap(raw.__func__, label)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    clock = time.process_time if args.threads == 1 else time.perf_counter
    harness.use_threads(args.threads)  # both engines, numba's pool started first
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
    times: dict[str, list[float]] = {"kernelab": [], "torch": []}
    with threadpool_limits(args.threads):
        for _ in range(3):
            ours(), theirs()
        timers.total.clear()
        for _ in range(args.steps):
            for name, step in (("kernelab", ours), ("torch", theirs)):
                time.sleep(0.1)  # let the other engine's spinning threads go idle
                start = clock()
                step()
                times[name].append(clock() - start)
    report(args, timers.total, times, "CPU" if args.threads == 1 else "wall")
    return 0


def report(args, total: collections.Counter, times: dict, clock_name: str) -> None:
    ours, theirs = (statistics.median(times[e]) for e in ("kernelab", "torch"))
    whole = sum(times["kernelab"])
    print(
        f"classic network, {args.mode}, batch {args.batch}, {args.threads} thread(s), "
        f"{clock_name} time: kernelab {1e3 * ours:.1f} ms/step, PyTorch {1e3 * theirs:.1f} ms/step "
        f"(medians; {ours / theirs:.2f}x)\n"
    )
    print("| piece | ms/step | share |\n|---|---|---|")
    for label, seconds in total.most_common():
        print(f"| {label} | {1e3 * seconds / args.steps:.1f} | {100 * seconds / whole:.1f}% |")
    rest = whole - sum(total.values())
    print(
        f"| rest: autograd, modules, optimizer, Python | {1e3 * rest / args.steps:.1f} | "
        f"{100 * rest / whole:.1f}% |"
    )


if __name__ == "__main__":
    sys.exit(main())
