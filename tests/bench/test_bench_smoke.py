"""The benchmark code runs: each kind of case once, tiny, and the report renders.

No timing is asserted; this only keeps ``bench/`` from rotting as the engine changes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: ``bench``

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

from bench import cases, harness, memory, profile_step, report  # noqa: E402

TINY = harness.Settings(rounds=2, warmup=1, min_round=0.0, settle=0.0, collect_garbage=False)


def tiny_cases() -> list[harness.Case]:
    return [
        cases.matmul_ceiling(size=8),
        cases.classic_train(2, target=harness.Target("speed", 0.8)),
        cases.classic_infer(2, size=56, sweep="size"),
        cases.conv_layer("k2", 2, n=2, c_in=3, c_out=4, size=8),
        cases.conv_layer("depthwise_k3", 3, stride=2, padding=1, groups=3, n=2, c_in=3, c_out=3),
        cases.pool_layer("maxpool3_stride2", "max", 3, stride=2, padding=1, shape=(2, 3, 8, 8)),
        cases.relu_layer(shape=(2, 3, 4, 4)),
        cases.linear_layer("linear", 2, 6, 3),
        cases.cross_entropy("cross_entropy", 4, 5),
    ]


def test_cases_run_and_agree_with_pytorch():
    records = [harness.measure(case, TINY) for case in tiny_cases()]
    for record in records:
        assert record["kernelab_s"] > 0 and record["torch_s"] > 0
        assert len(record["rounds"]["kernelab"]) == TINY.rounds
        assert record["max_rel_diff"] < 1e-4, record["name"]
    results = {
        "date": "today",
        "mode": "smoke",
        "only": [],
        "threads": 1,
        "settings": vars(TINY),
        "machine": harness.machine(),
        "optimizer": "test",
        "cases": records,
        "memory": None,
        "loadavg": {"start": [0.0] * 3, "end": [0.0] * 3},
        "duration_s": 1.0,
    }
    results["ceiling"] = report.ceiling(results)
    text = report.markdown(results)
    assert "Conv2d 3→4, 2x2" in text and "## Targets" in text


def test_memory_child_trains():
    record = memory.train_epoch("kernelab", batches=1, batch_size=2, threads=1)
    assert record["peak_mb"] >= record["baseline"]["hwm_mb"] > 0


def test_profile_timers_take_nested_time_out_of_the_caller():
    timers = profile_step.Timers(time.perf_counter)
    inner = timers.wrap(lambda: time.sleep(0.01), "inner")
    timers.wrap(lambda: inner(), "outer")()
    assert timers.total["inner"] >= 0.01 > timers.total["outer"]


def test_every_standard_case_builds_a_name():
    names = [case.name for case in cases.all_cases()]
    assert len(names) == len(set(names))
