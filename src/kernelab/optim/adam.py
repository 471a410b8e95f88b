"""Adam and AdamW: steps scaled by running estimates of the gradient's first two moments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core import jit
from .optimizer import Optimizer, check_betas, check_non_negative


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``.

    At step ``t``, with ``g`` the gradient (``-grad`` when ``maximize``) plus
    ``weight_decay·p`` (or, when ``decoupled_weight_decay``, ``p ← p·(1 - lr·weight_decay)``
    first, which is AdamW)::

        m ← β1·m + (1 - β1)·g          v ← β2·v + (1 - β2)·g²
        v̂ ← max(v̂, v) with amsgrad, else v̂ = v
        p ← p - lr/(1 - β1^t) · m / (√v̂ / √(1 - β2^t) + eps)

    State: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        name = type(self).__name__
        check_non_negative(name, lr=lr, eps=eps, weight_decay=weight_decay)
        defaults = dict(
            lr=lr,
            betas=check_betas(name, betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "exp_avg": np.zeros_like(p.array), "exp_avg_sq": np.zeros_like(p.array)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.array)
        return state

    def _update_group(self, items: list, group: dict) -> None:
        for _, _, state in items:
            state["step"] += 1
        fast = jit.twin(".updates_compiled", __package__)
        if fast is not None:
            items = self._update_compiled(fast, items, group)
        for p, grad, state in items:
            self._update(p, grad, state, group)

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        """One parameter's step, its ``state["step"]`` counted already."""
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        step = float(state["step"])  # Python floats: no NumPy scalar may upcast a float32 run
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.array *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.array
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's lerp towards grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        p.array -= step_size * exp_avg / denom

    def _update_compiled(self, fast, items: list, group: dict) -> list:
        """The group's updates in one compiled launch per dtype; the items it cannot take
        (not float32 or float64, or memory without a flat view) returned for the NumPy path."""
        amsgrad, decoupled = bool(group["amsgrad"]), bool(group["decoupled_weight_decay"])
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
        batches, rest = fast.by_dtype(items, lambda p, s: [p.array] + [s[n] for n in names])
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        decay = (1 - lr * weight_decay) if decoupled else weight_decay
        hyper = [decay, 1 - beta1, beta2, 1 - beta2, float(group["eps"])]
        for dtype, batch in batches.items():
            rows, corrections = [], []
            for p, grad, state in batch:
                moments = [state[n] for n in names] + ([] if amsgrad else [np.empty(0, dtype)])
                rows.append([p.array, np.ascontiguousarray(grad), *moments])
                step = float(state["step"])
                corrections.append([lr / (1 - beta1**step), (1 - beta2**step) ** 0.5])
            # rows holds the arrays until the launch ends
            addresses, tasks = fast.kept_table(self, (id(group), dtype), rows)
            fast.adam(
                addresses,
                tasks,
                np.array(hyper, dtype),
                np.array(corrections, dtype),  # (count, 2)
                decoupled,
                amsgrad,
                bool(group["maximize"]),
            )
        return rest


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: ``p ← p·(1 - lr·λ)`` first.

    The decay never passes through the moment estimates, so it shrinks every weight by the
    same fraction instead of being rescaled per coordinate.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True  # as torch: AdamW always decouples
