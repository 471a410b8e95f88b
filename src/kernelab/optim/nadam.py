"""NAdam: Adam with Nesterov momentum, whose momentum coefficient warms up over the steps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, check_betas, check_non_negative


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam``.

    At step ``t``, with ``g`` the gradient (``-grad`` when ``maximize``) plus
    ``weight_decay·p`` (or ``p ← p·(1 - lr·weight_decay)`` when ``decoupled_weight_decay``)::

        μ_t = β1·(1 - ½·0.96^(t·momentum_decay)),   Π_t = μ_1···μ_t
        m ← β1·m + (1 - β1)·g          v ← β2·v + (1 - β2)·g²
        d = √(v / (1 - β2^t)) + eps
        p ← p - lr·(1 - μ_t)/(1 - Π_t) · g/d - lr·μ_{t+1}/(1 - Π_t·μ_{t+1}) · m/d

    State: ``step`` (int), ``mu_product`` (Π_t, a Python float), ``exp_avg``, ``exp_avg_sq``.
    """

    _scalar_state = ("step", "mu_product")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative(
            "NAdam", lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay
        )
        defaults = dict(
            lr=lr,
            betas=check_betas("NAdam", betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Any, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": 0,
            "mu_product": 1.0,
            "exp_avg": np.zeros_like(p.array),
            "exp_avg_sq": np.zeros_like(p.array),
        }

    def _update(self, p: Any, grad: np.ndarray, state: dict[str, Any], group: dict) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        momentum_decay = float(group["momentum_decay"])
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = float(state["step"])
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.array *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.array
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's lerp towards grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        denom = np.sqrt(exp_avg_sq / (1 - beta2**step)) + eps
        p.array += (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
        p.array += (-lr * mu_next / (1.0 - mu_product * mu_next)) * exp_avg / denom
