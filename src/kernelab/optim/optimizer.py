"""The Optimizer base: parameter groups, per-parameter state, and a state_dict made of plain values.

A subclass says how a state starts (:meth:`Optimizer._init_state`) and how one parameter moves
(:meth:`Optimizer._update`), or a group's parameters together (:meth:`Optimizer._update_group`:
a compiled update in one launch); the base walks the groups, skips parameters without a
gradient or that are frozen, and saves and restores everything in PyTorch's layout::

    {"state": {index: {"step": int, "exp_avg": ndarray, ...}},
     "param_groups": [{"lr": float, ..., "params": [index, ...]}]}

Every value there is an ndarray, a Python number, str, bool, None or a list, so a checkpoint can
store it as JSON plus arrays, with no pickle.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd import enable_grad


class Optimizer:
    """Base class of every optimiser, with PyTorch's interface.

    ``params`` is an iterable of parameters, of ``(name, parameter)`` pairs, or of dicts each
    holding ``"params"`` and the hyper-parameters that differ from ``defaults`` for that group.
    A parameter is a tensor: its ``.array`` is updated in place from ``.grad.array`` (the
    gradient's array) when ``.grad`` is not None and ``.requires_grad``.
    """

    # state entries that are Python numbers, not arrays (restored with int/float, never cast)
    _scalar_state: tuple[str, ...] = ("step",)

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if _is_param(params):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of parameters or dicts, "
                f"got a single {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        # keyed by the parameter object itself (hashed by identity), as torch does
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    # ---- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with its own hyper-parameters (the rest from defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param_group must be a dict, got {type(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if _is_param(params):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"{name}: parameters must be in an ordered collection (list, tuple), got a set"
            )
        params = list(params)
        if params and all(isinstance(p, tuple) for p in params):
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        elif any(isinstance(p, tuple) for p in params):
            raise ValueError(f"{name}: give every parameter a name, or none of them")
        for p in params:
            if not _is_param(p):
                raise TypeError(
                    f"{name} can only optimize parameters (tensors), got {type(p).__name__}"
                )
        group["params"] = params
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: a parameter group holds the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            raise ValueError(f"{name}: all parameter groups must be named, or none of them")
        self.param_groups.append(group)

    # ---- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: set it to None (default) or fill it with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return what ``closure`` returned.

        ``closure`` recomputes the loss (and the gradients) before the update.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            items = []
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = p.grad.array
                if grad.dtype != p.array.dtype:  # keep all arithmetic in the parameter's dtype
                    grad = grad.astype(p.array.dtype)
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                items.append((p, grad, state))
            self._update_group(items, group)
        return loss

    def _init_state(self, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        """The state of a parameter before its first update."""
        return {}

    def _update_group(self, items: list[tuple[Any, np.ndarray, dict]], group: dict) -> None:
        """Move every ``(parameter, gradient, state)`` of a group: one at a time with
        :meth:`_update`, unless a subclass updates them together (one compiled launch)."""
        for p, grad, state in items:
            self._update(p, grad, state, group)

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        """Move ``p.array`` in place, given its gradient (never to be written into)."""
        raise NotImplementedError

    # ---- saving
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state in PyTorch's layout, made only of plain values and arrays.

        ``{"state": {index: {key: ndarray | int | float}}, "param_groups": [{..., "params":
        [index, ...]}]}``, where ``index`` numbers the parameters in group order. Arrays are
        copies, so the snapshot does not move on with later steps.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: to_plain(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {k: to_plain(v) for k, v in s.items()}
            for p, s in self.state.items()
            if s and id(p) in index
        }
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: hyper-parameters from it, state cast to each dtype.

        State keys may be ints or their strings (as JSON leaves them); step counters may be
        Python numbers or 0-d arrays.
        """
        name = f"{type(self).__name__}.load_state_dict"
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: expected {len(self.param_groups)} parameter groups, "
                f"got {len(saved_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}: expected {len(group['params'])} parameters in group {i}, "
                    f"got {len(saved['params'])}"
                )
        params = {
            int(k): p
            for group, saved in zip(self.param_groups, saved_groups, strict=True)
            for k, p in zip(saved["params"], group["params"], strict=True)
        }
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, saved_state in state_dict["state"].items():
            p = params.get(int(key))
            if p is None:
                raise ValueError(f"{name}: state for parameter {key}, which no group holds")
            state[p] = {k: self._restore(p, int(key), k, v) for k, v in saved_state.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            new = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            for k, v in new.items():
                if isinstance(group.get(k), tuple) and isinstance(v, list):
                    new[k] = tuple(v)  # e.g. Adam's betas, a list in the saved form
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    def _restore(self, p: Any, index: int, key: str, value: Any) -> Any:
        """One saved state entry, as the running optimiser keeps it."""
        if key in self._scalar_state:
            value = value.item() if isinstance(value, np.ndarray | np.generic) else value
            return int(value) if key == "step" else float(value)
        if isinstance(value, np.ndarray):
            if value.shape != p.array.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state {key!r} of parameter "
                    f"{index} has shape {value.shape}, expected {p.array.shape}"
                )
            dtype = p.array.dtype if np.issubdtype(p.array.dtype, np.floating) else value.dtype
            return np.array(value, dtype=dtype, copy=True)
        return copy.deepcopy(value)


def _is_param(obj: Any) -> bool:
    return isinstance(getattr(obj, "array", None), np.ndarray) and hasattr(obj, "grad")


def to_plain(value: Any) -> Any:
    """A copy made of plain values: tuples become lists, NumPy scalars Python numbers."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def check_non_negative(owner: str, **values: float) -> None:
    """Raise ValueError naming the first hyper-parameter below zero."""
    for key, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"{owner}: expected {key} >= 0, got {value}")


def check_betas(owner: str, betas: tuple[float, float]) -> tuple[float, float]:
    """Adam's ``betas`` as a pair of floats in [0, 1)."""
    if len(betas) != 2:
        raise ValueError(f"{owner}: expected betas to be a pair, got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{owner}: expected 0 <= betas[{i}] < 1, got {beta}")
    return (float(betas[0]), float(betas[1]))
