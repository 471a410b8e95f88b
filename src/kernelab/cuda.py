"""``torch.cuda`` as kernelab answers it: no CUDA here, so the usual checks say False.

``is_available()`` is False and ``device_count()`` 0, so ``"cuda" if torch.cuda.is_available()
else "cpu"`` picks the CPU; seeding calls are no-ops, as PyTorch's are without a GPU. Anything
that would need a GPU raises the error kernelab gives for any non-CPU device.
"""

from __future__ import annotations

from .core.devices import check_device
from .core.errors import not_provided


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """No GPU to seed: a no-op, as in PyTorch without CUDA."""


def manual_seed_all(seed: int) -> None:
    """No GPU to seed: a no-op, as in PyTorch without CUDA."""


def synchronize(device=None) -> None:
    check_device("cuda")


def current_device() -> int:
    check_device("cuda")
    return 0


def get_device_name(device=None) -> str:
    check_device("cuda")
    return ""


def __getattr__(name: str):
    raise not_provided(__name__, name, "torch.cuda")
