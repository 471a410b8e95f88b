"""The end of a training step compiled on the second core while the first compiles the rest.

On an empty numba cache, a first training step compiles its kernels one after the other, on
one core: the model's forward and backward, then the loss's rows and the optimiser's update
(3-4 s of ``kernelab train``'s 9-13 s cold first step). The loss and the optimiser do not
depend on the model, only on the logits' shape and dtype, the labels' dtype, the optimiser
and the thread count. So, when the loss's kernels are not cached, :func:`start` starts a
process that runs the end of a step on a stand-in (a linear layer giving logits of that
shape; cross-entropy; the optimiser's update): it compiles those kernels, for the same
types, into the same cache, while this process compiles the model's; this one then loads
them when it gets there.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from .. import functional as F
from .. import optim
from ..core import jit
from ..core.tensor import Tensor
from ..core.threads import get_num_threads, set_num_threads
from ..nn import Linear


def job_for(optimizer: tuple[str, dict], batch: int, classes: int, x, y) -> dict:
    """What the stand-in needs: the optimiser (``runs.optimizer_spec``), the logits' rows and
    columns, the inputs' and the labels' dtypes, this process's thread count."""
    return {
        "optimizer": list(optimizer),
        "batch": batch,
        "classes": classes,
        "dtype": str(np.dtype(x.dtype)),
        "labels": str(np.dtype(y.dtype)),
        "threads": get_num_threads(),
    }


_started = None  # the process start started last (it may still be compiling)


def start(job: dict):
    """Start the process that compiles the end of a step, unless ops run on NumPy, the
    loss's kernels are cached, or one started here is still compiling; the process
    (``subprocess.Popen``), or None."""
    global _started
    if not jit.active() or (_started is not None and _started.poll() is None):
        return None
    from ..functional import loss_compiled

    if loss_compiled.forward_rows.cached():
        return None
    code = "import sys; from kernelab.apps import precompile; precompile.child(sys.argv[1])"
    _started = jit.start_process(code, json.dumps(job))
    return _started


def child(job_json: str) -> None:
    """The process :func:`start` starts: a lower priority than the run it works for, whose
    cores it takes only while that run leaves one idle (compiling, on one core)."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not on Windows
        os.nice(5)
    step_end(json.loads(job_json))


def step_end(job: dict) -> None:
    """The end of one training step on a stand-in: logits (batch, classes) from a linear
    layer, cross-entropy against labels of the job's dtype, the backward and one update of
    the job's optimiser."""
    set_num_threads(job["threads"])
    rng = np.random.default_rng(0)
    rows, classes = job["batch"], job["classes"]
    layer = Linear(classes, classes)
    x = Tensor(rng.standard_normal((rows, classes)).astype(job["dtype"]))
    y = Tensor(rng.integers(0, classes, rows).astype(job["labels"]))
    name, options = job["optimizer"]
    optimizer = getattr(optim, name)(layer.parameters(), **options)
    F.cross_entropy(layer(x), y).backward()
    optimizer.step()
