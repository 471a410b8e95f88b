"""The base of every learning-rate schedule: set ``initial_lr``, step, save and load state."""

from __future__ import annotations

import copy
from typing import Any

from .optimizer import Optimizer, to_plain


class LRScheduler:
    """Base class: sets ``initial_lr`` on each group, then steps once to epoch 0.

    A subclass computes the next rates in :meth:`get_lr` from ``last_epoch``, ``base_lrs``
    and the groups' current ``lr``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {optimizer!r}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs "
                    f"'initial_lr' in param_groups[{i}]; load the optimizer's state first"
                )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True  # the step made here sets the rates of epoch 0
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates of epoch ``last_epoch``, one per parameter group."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch (or one batch) and write the new rates into the optimiser."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last :meth:`step` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimiser, as plain values."""
        skip = ("optimizer", "_is_initial")
        return {k: to_plain(v) for k, v in vars(self).items() if k not in skip}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def per_group(name: str, value: Any, groups: list[dict[str, Any]]) -> list[Any]:
    """One value per parameter group: a list of them, or one value repeated."""
    if isinstance(value, list | tuple):
        if len(value) != len(groups):
            raise ValueError(
                f"expected {name} to have one value per parameter group ({len(groups)}), "
                f"got {len(value)}"
            )
        return list(value)
    return [value] * len(groups)
