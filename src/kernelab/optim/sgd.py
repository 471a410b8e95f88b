"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core import jit
from .optimizer import Optimizer, check_non_negative


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    With ``g = grad + weight_decay·p`` (``-grad`` when ``maximize``)::

        b ← g                           first step
        b ← momentum·b + (1 - dampening)·g   later steps
        p ← p - lr·(g + momentum·b)     nesterov, else p ← p - lr·b

    Without momentum ``p ← p - lr·g``. State: ``momentum_buffer`` when ``momentum != 0``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: Nesterov momentum needs momentum > 0 and dampening 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update_group(self, items: list, group: dict) -> None:
        fast = jit.twin(".updates_compiled", __package__)
        if fast is not None:
            items = self._update_compiled(fast, items, group)
        for p, grad, state in items:
            self._update(p, grad, state, group)

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p.array
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.copy(grad)  # not p.grad; an array if 0-d
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.array -= lr * grad

    def _update_compiled(self, fast, items: list, group: dict) -> list:
        """The group's updates in one compiled launch per dtype; the items it cannot take
        (not float32 or float64, or memory without a flat view) returned for the NumPy path."""
        momentum = float(group["momentum"])
        batches, rest = fast.by_dtype(
            items, lambda p, s: [p.array] + ([s.get("momentum_buffer")] if momentum else [])
        )
        for dtype, batch in batches.items():
            rows, first = [], []
            for p, grad, state in batch:
                buf = state.get("momentum_buffer") if momentum != 0 else np.empty(0, dtype)
                first.append(buf is None)
                if buf is None:
                    buf = state["momentum_buffer"] = np.empty_like(p.array)  # C-ordered as p
                rows.append([p.array, np.ascontiguousarray(grad), buf])
            # rows holds the arrays until the launch ends
            addresses, tasks = fast.kept_table(self, (id(group), dtype), rows)
            hyper = [group["lr"], momentum, 1 - float(group["dampening"]), group["weight_decay"]]
            fast.sgd(
                addresses,
                tasks,
                np.array(first),
                *(dtype.type(h) for h in hyper),
                bool(group["nesterov"]),
                bool(group["maximize"]),
            )
        return rest
