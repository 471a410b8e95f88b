"""``torch.accelerator`` as kernelab answers it: there is none, so scripts pick the CPU."""

from __future__ import annotations

from .core.errors import not_provided


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def current_accelerator(check_available: bool = False) -> None:
    """None: kernelab has no accelerator (PyTorch's answer on a machine without one)."""
    return None


def __getattr__(name: str):
    raise not_provided(__name__, name, "torch.accelerator")
