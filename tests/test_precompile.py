"""``apps/precompile.py``: the end of a training step compiled in a second process, for the
types the step itself asks for."""

import json
import os
import subprocess
import sys

import pytest
from mnist_files import write_bar_mnist

import kernelab as kl
from kernelab import cli
from kernelab.apps import precompile
from kernelab.core import jit

numba = pytest.importorskip("numba")

MODULES = ("kernelab.functional.loss_compiled", "kernelab.optim.updates_compiled")


@pytest.fixture
def calls(monkeypatch):
    """The (kernel, argument types) of every call of a loss or optimiser kernel, on the
    compiled path whatever the suite runs on."""
    seen = []
    call = jit.Kernel.__call__

    def recorded(kernel, *args):
        if kernel.function.__module__ in MODULES:
            seen.append((kernel.__name__, tuple(numba.typeof(a) for a in args)))
        return call(kernel, *args)

    monkeypatch.setattr(jit.Kernel, "__call__", recorded)
    with kl.backends.kernels.using("numba"):
        yield seen


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_the_stand_in_asks_for_the_kernels_a_training_step_ends_with(
    calls, monkeypatch, tmp_path, optimizer
):
    jobs = []
    monkeypatch.setattr(precompile, "start", jobs.append)
    write_bar_mnist(tmp_path / "mnist", 64, 16)
    args = ["train", "--data-dir", str(tmp_path / "mnist"), "--run-dir", str(tmp_path / "run")]
    args += ["--epochs", "1", "--arch", "conv3x3x4,relu,flatten,linear10", "--no-progress"]
    assert cli.main([*args, "--optimizer", optimizer]) == 0
    (job,) = jobs
    assert job["batch"] == 64 and job["classes"] == 10
    step = set(calls)
    calls.clear()
    precompile.step_end(json.loads(json.dumps(job)))  # as the child gets it
    assert step <= set(calls)
    kinds = {name for name, _ in step}
    assert {"forward_rows", "backward_rows"} <= kinds
    assert optimizer == "rmsprop" or kinds & {"sgd_tasks", "adam_tasks"}


def test_the_process_compiles_into_the_cache_this_one_loads(tmp_path):
    # a fresh numba cache: the loss's kernels are not in it, so start starts the process;
    # once it is done they are, for this process and the next, and start starts no other
    script = """
import sys
import numpy as np
import kernelab as kl
from kernelab.apps import precompile
from kernelab.functional import loss_compiled
from kernelab.optim import updates_compiled
x, y = np.zeros((64, 1, 8, 8), np.float32), np.zeros(64, np.int64)
job = precompile.job_for(("Adam", {"lr": 1e-3, "weight_decay": 0.0}), 64, 10, x, y)
process = precompile.start(job)
assert process is not None and precompile.start(job) is None  # one at a time
assert process.wait(timeout=300) == 0
assert loss_compiled.forward_rows.cached() and updates_compiled.adam_tasks.cached()
with kl.backends.kernels.using("numpy"):
    assert precompile.start(job) is None
print("ok")
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "KERNELAB_KERNELS": "numba"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    again = "from kernelab.functional import loss_compiled as l; print(l.forward_rows.cached())"
    done = subprocess.run([sys.executable, "-c", again], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr[-2000:]
