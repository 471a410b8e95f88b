"""The benchmark code runs: each kind of case once, tiny, and the report renders.

No timing is asserted (beyond the profile timers' own arithmetic); this only keeps ``bench/``
from rotting as the engine changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: ``bench``

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

from bench import cases, harness, memory, profile_step, report, run, startup, threads  # noqa: E402

TINY = harness.Settings(rounds=2, warmup=1, min_round=0.0, settle=0.0, collect_garbage=False)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread for both engines: on a busy machine, PyTorch's two threads wait for each
    other for seconds on tiny work. The bench sets kernelab's kernel path and thread count for
    the whole process, as its child processes need; both are put back for the tests after."""
    import kernelab as kl

    chosen, threads = kl.backends.kernels.chosen(), kl.get_num_threads()
    limiter = harness.set_threads(1)
    yield
    limiter.restore_original_limits()
    kl.backends.kernels.use(chosen)
    kl.set_num_threads(threads)


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
        cases.net_case("tutorial", "train", 2, size=8, target=cases.NET_TARGET),
        cases.net_case("resnet8", "train", 2, size=8),
        cases.net_case("resnet8", "infer", 2, size=8),
        cases.net_case("mobile", "train", 2, size=8),
        cases.net_case("dense_head", "train", 2, size=8),
        cases.batchnorm_layer(shape=(2, 3, 4, 4)),
        cases.global_avgpool_layer(shape=(2, 3, 4, 4)),
    ]


def tiny_startup() -> dict:
    """A start-up record as ``startup.compare`` makes it, without starting processes."""
    run = {"to_first_step_s": 1.5, "to_step_start_s": 1.4, "import_s": 0.2, "step_s": 0.1}
    return {
        "name": startup.NAME,
        "title": "tiny",
        "data": "none",
        "threads": 1,
        "kernels": "numba",
        "cold_s": 3.0,
        "warm_s": 1.5,
        "torch_s": 2.0,
        "import_s": 0.2,
        "torch_import_s": 1.0,
        "settled_s": 12.5,
        "runs": {"cold": [run], "warm": [run], "torch": [run]},
        "targets": {"warm_s": 1.0, "cold_s": 10.0},
        "target_met": {"warm_s": False, "cold_s": True},
    }


def test_cases_run_and_agree_with_pytorch(tmp_path):
    records = [harness.measure(case, TINY) for case in tiny_cases()]
    records.append(harness.measure(cases.relu_layer(shape=(2, 3, 4, 4)), TINY, numpy_path=True))
    assert records[-1]["numpy_s"] > 0 and records[-1]["compiled_vs_numpy"] > 0
    import torch

    assert torch.get_num_threads() == 1  # numba's thread pool did not reset PyTorch's count
    gain = threads.measure(threads.threads_case(cases.classic_train(2, size=8)), TINY)
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
        "kernels": {"asked": "numba", "running": "numba"},
        "cases": records,
        "threads_gain": [gain],
        "startup": tiny_startup(),
        "memory": None,
        "loadavg": {"start": [0.0] * 3, "end": [0.0] * 3},
        "duration_s": 1.0,
    }
    results["ceiling"] = report.ceiling(results)
    text = report.markdown(results)
    assert "Conv2d 3→4, 2x2" in text and "## Targets" in text
    for title in ("ResNet-8", "MobileNet-like", "BatchNorm2d", "AdaptiveAvgPool2d", "1 and 2"):
        assert title in text
    assert "2-thread gain" in text and "first step, cold" in text and "NumPy path ms" in text
    assert gain["engines"]["kernelab"]["gain"] > 0 and gain["name"] == "threads/classic_train_b2"
    path = tmp_path / "results-partial.json"
    report.write_json(results, path)
    assert report.main([str(path)]) == 0
    assert "ResNet-8" in (tmp_path / "RESULTS-partial.md").read_text()
    assert "tutorial_train_b2" not in report.readme(results)  # only the standard sizes
    assert "first step" in report.readme(results)
    assert "finished (12.50 s after it)" in text


def test_memory_child_trains():
    record = memory.train_epoch("kernelab", batches=1, batch_size=2, threads=1, kernels="numba")
    assert record["peak_mb"] >= record["baseline"]["hwm_mb"] > 0
    assert record["kernels"] in ("numba", "numpy")


def test_startup_child_reaches_the_first_step(tmp_path):
    folder = startup.write_bar_mnist(tmp_path / "mnist")
    images, labels = startup.read_first_batch(folder, 4)
    assert images.shape == (4, 1, 28, 28) and labels.shape == (4,)
    record = startup.launch("kernelab", folder, 1, tmp_path / "numba-cache", "numba")
    assert 0 < record["import_s"] < record["to_step_start_s"] < record["to_first_step_s"]
    if record["numba_cache_dir"] is not None:  # numba was imported: the cache we gave it
        assert record["numba_cache_dir"] == str(tmp_path / "numba-cache")


def test_warm_runs_wait_for_the_cold_run_s_background_compilations(tmp_path):
    """A process whose environment names the cache (as a run's children have), or a lock
    file of a background compilation, is compiling into it: ``settle`` waits for it."""
    cache = tmp_path / "numba-cache"
    (cache / "generated").mkdir(parents=True)
    assert not startup._compiling(cache)
    lock = cache / "generated" / "kernel.py.0123.compiling"
    lock.touch()
    assert startup._compiling(cache)
    lock.unlink()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"], env=env)
    try:
        assert startup._compiling(cache)
        assert startup.settle(cache) > 0.2
        assert child.poll() is not None and not startup._compiling(cache)
    finally:
        child.kill()
        child.wait()


def test_profile_timers_take_nested_time_out_of_the_caller():
    timers = profile_step.Timers(time.perf_counter)
    inner = timers.wrap(lambda: time.sleep(0.01), "inner")
    timers.wrap(lambda: inner(), "outer")()
    assert timers.total["inner"] >= 0.01 > timers.total["outer"]


def test_profile_timers_list_calls_on_other_threads_apart():
    timers = profile_step.Timers(time.perf_counter)
    work = timers.wrap(lambda: time.sleep(0.01), "work")
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert "work" not in timers.total
    assert timers.total["work" + profile_step.ON_WORKERS] >= 0.01


def burn(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's per-thread clocks")
def test_profile_critical_path_counts_the_busiest_other_thread():
    """Two pool threads burning 30 ms of CPU each while the caller waits: 60 ms of CPU, a 30 ms
    critical path (the GIL makes them take turns; their clocks count only their own turns)."""
    timers = profile_step.Timers(time.perf_counter, per_thread=True)
    go, finish = threading.Barrier(3), threading.Event()

    def pool_thread():  # alive before and after the timed call, as numba's workers are
        go.wait()
        burn(0.03)
        go.wait()
        finish.wait()

    workers = [threading.Thread(target=pool_thread) for _ in range(2)]
    for worker in workers:
        worker.start()
    timers.wrap(lambda: (go.wait(), go.wait()), "fan out")()
    finish.set()
    for worker in workers:
        worker.join()
    assert 0.055 < timers.cpu["fan out"] < 0.09
    assert 0.028 < timers.path["fan out"] < 0.045


def test_every_standard_case_builds_a_name(capsys):
    names = [case.name for case in cases.all_cases() + threads.all_cases()]
    assert len(names) == len(set(names))
    assert run.main(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert set(names) | {"memory/train_epoch", "startup/train_cli"} == set(listed)
    assert {"nets/tutorial_train_b100", "ops/batchnorm2d", "threads/resnet8_train_b64"} <= set(
        listed
    )
