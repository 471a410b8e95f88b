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

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        fast = jit.twin(".updates_compiled", __package__)
        if fast is not None and self._update_compiled(fast, p, grad, state, group):
            return
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

    def _update_compiled(self, fast, p: Any, grad: np.ndarray, state: dict, group: dict) -> bool:
        """The same update in one compiled pass; False (nothing done) where it does not apply."""
        dtype, momentum = p.array.dtype.type, float(group["momentum"])
        buf = state.get("momentum_buffer")
        first = momentum != 0 and buf is None
        if first:
            buf = np.empty_like(p.array, order="C")
        arrays = [p.array, np.ascontiguousarray(grad)] + ([buf] if momentum != 0 else [])
        flats = fast.flat_arrays(p.array.dtype, *arrays)
        if flats is None:
            return False
        if momentum == 0:
            flats.append(np.empty(0, p.array.dtype))  # no buffer
        if first:
            state["momentum_buffer"] = buf
        fast.sgd(
            *flats,
            dtype(group["lr"]),
            dtype(momentum),
            dtype(1 - float(group["dampening"])),
            dtype(group["weight_decay"]),
            bool(group["nesterov"]),
            bool(group["maximize"]),
            first,
        )
        return True
