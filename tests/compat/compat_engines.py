"""Run one program's source text on either engine: PyTorch, or kernelab with only the imports
changed (``import torch`` → kernelab, ``torch.nn`` → ``kernelab.nn``, ``torchvision`` →
``kernelab.vision``)."""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
PROGRAMS = HERE / "programs"


def _kernelab_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    """``__import__`` with every ``torch`` module read as the kernelab module of that name, and
    ``torchvision`` as ``kernelab.vision``."""
    if level == 0 and (name == "torchvision" or name.startswith("torchvision.")):
        name = "kernelab.vision" + name[len("torchvision") :]
    elif level == 0 and (name == "torch" or name.startswith("torch.")):
        name = "kernelab" + name[len("torch") :]
    return builtins.__import__(name, globals, locals, fromlist, level)


def _standin_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    """``__import__`` with ``torchvision`` read as torchvision_standin.py: torchvision is not
    a test dependency, so without it the PyTorch side uses that module's reader and
    transforms, written after torchvision's."""
    if level == 0 and name == "torchvision":
        name = "torchvision_standin"
    return builtins.__import__(name, globals, locals, fromlist, level)


def load(path: Path, engine: str) -> dict[str, Any]:
    """Execute ``path`` as a module of its own; with ``engine="kernelab"`` its imports of
    ``torch...`` give ``kernelab...``. Returns the module's namespace."""
    namespace: dict[str, Any] = {"__name__": f"{path.stem}_{engine}", "__file__": str(path)}
    if engine == "kernelab":
        namespace["__builtins__"] = {**vars(builtins), "__import__": _kernelab_import}
    elif engine == "torch" and importlib.util.find_spec("torchvision") is None:
        namespace["__builtins__"] = {**vars(builtins), "__import__": _standin_import}
    elif engine != "torch":
        raise ValueError(f"engine must be 'torch' or 'kernelab', got {engine!r}")
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def program(name: str, engine: str) -> dict[str, Any]:
    return load(PROGRAMS / f"{name}.py", engine)


def max_differences(ours: Any, theirs: Any) -> tuple[float, float]:
    """(max absolute, max relative) difference of two arrays; relative to max |theirs|."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff, diff / max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-12)
