"""Adagrad: steps divided by the root of the sum of all past squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, check_non_negative


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    At step ``t``, with ``g`` the gradient (``-grad`` when ``maximize``) plus
    ``weight_decay·p``::

        s ← s + g²                     (s starts at initial_accumulator_value)
        p ← p - lr/(1 + (t - 1)·lr_decay) · g / (√s + eps)

    State: ``step`` (int) and ``sum``, created when the optimiser is, as torch does. A group's
    own ``initial_accumulator_value`` is honoured (torch uses the constructor's for all).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative(
            "Adagrad",
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)

    def _init_state(self, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        value = float(group["initial_accumulator_value"])
        return {"step": 0, "sum": np.full_like(p.array, value)}

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * p.array
        clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        state_sum = state["sum"]
        state_sum += grad * grad
        p.array -= clr * grad / (np.sqrt(state_sum) + eps)
