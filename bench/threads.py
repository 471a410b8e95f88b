"""The gain from more cores: the same step at 1 and 2 threads, for both engines.

Each round runs every (thread count, engine) pair once, in an order that alternates from round
to round, switching both engines' thread counts between pairs (``harness.use_threads``), so the
four series see the same load from other processes. An engine's *gain* is the median over
rounds of its 1-thread time divided by its 2-thread time (2.0 would be a perfect doubling).
"""

from __future__ import annotations

import gc
import os
import statistics
import time

from .harness import ENGINES, Case, Settings, Target, time_calls, use_threads

COUNTS = (1, 2)
GAIN_TARGET = Target("speed", 1.6)  # kernelab's 2-thread speed-up, at least 1.6x


def _order(items: tuple, r: int) -> tuple:
    return items if r % 2 == 0 else tuple(reversed(items))


def measure(case: Case, settings: Settings, counts: tuple[int, ...] = COUNTS) -> dict:
    """Time ``case`` at each thread count; the record holds times, gains and the verdict."""
    if settings.collect_garbage:
        gc.collect()
    work = case.build()
    fns = {"kernelab": work.kernelab, "torch": work.torch}
    pairs = [(n, engine) for n in counts for engine in ENGINES]
    single: dict[tuple, list[float]] = {pair: [] for pair in pairs}
    for r in range(max(settings.warmup, 1)):
        for n in _order(counts, r):
            use_threads(n)
            for engine in _order(ENGINES, r // 2):
                single[(n, engine)].append(time_calls(fns[engine], 1))
    calls = {
        pair: int(min(settings.max_calls, max(1, settings.min_round // min(times))))
        for pair, times in single.items()
    }
    load_before = os.getloadavg()[0]
    rounds: dict[tuple, list[float]] = {pair: [] for pair in pairs}
    for r in range(settings.rounds):
        for n in _order(counts, r):
            use_threads(n)
            for engine in _order(ENGINES, r // 2):
                time.sleep(settings.settle)
                rounds[(n, engine)].append(time_calls(fns[engine], calls[(n, engine)]))
    use_threads(max(counts))
    return {**summarize(case, rounds, counts), "loadavg_1min": load_before}


def summarize(case: Case, rounds: dict, counts: tuple[int, ...]) -> dict:
    low, high = min(counts), max(counts)
    engines = {}
    for engine in ENGINES:
        gains = [a / b for a, b in zip(rounds[(low, engine)], rounds[(high, engine)], strict=True)]
        engines[engine] = {
            "seconds": {str(n): statistics.median(rounds[(n, engine)]) for n in counts},
            "rounds": {str(n): rounds[(n, engine)] for n in counts},
            "gain": statistics.median(gains),
        }
    kernelab_gain = engines["kernelab"]["gain"]
    return {
        "name": case.name,
        "title": case.title,
        "counts": list(counts),
        "images": case.images,
        "engines": engines,
        "time_ratio": {
            str(n): engines["kernelab"]["seconds"][str(n)] / engines["torch"]["seconds"][str(n)]
            for n in counts
        },
        "target": {"metric": GAIN_TARGET.metric, "bound": GAIN_TARGET.bound},
        "target_met": GAIN_TARGET.met(1 / kernelab_gain),
    }


def threads_case(case: Case) -> Case:
    """``case`` renamed into the ``threads/`` group (same workload): classic/train_b64 →
    threads/classic_train_b64, nets/resnet8_train_b64 → threads/resnet8_train_b64."""
    group, short = case.name.split("/", 1)
    return Case(
        "threads/" + (short if group == "nets" else f"{group}_{short}"),
        case.title if group == "nets" else f"{group} network: {case.title}",
        case.build,
        images=case.images,
        flops=case.flops,
        meta=case.meta,
    )


def all_cases() -> list[Case]:
    """The steps measured at 1 and 2 threads: the classic network and ResNet-8, training."""
    from . import cases

    return [
        threads_case(cases.classic_train(64)),
        threads_case(cases.net_case("resnet8", "train", 64)),
    ]
