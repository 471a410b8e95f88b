"""Devices, honestly: kernelab computes on the CPU, and says so when asked for anything else.

``device("cpu")``, ``tensor.to("cpu")`` and ``model.to(device)`` work as in PyTorch, so the usual
device-picking lines (``"cuda" if torch.cuda.is_available() else "cpu"``) run unchanged. A
``device("cuda")`` object can be made, as in PyTorch, but moving anything to it raises one
error that says kernelab computes on the CPU.
"""

from __future__ import annotations

from typing import Any

# PyTorch's device types: a known name is a valid device, even where it is not available
_KNOWN = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "mtia", "ipu", "hpu", "vulkan")


class device:  # noqa: N801  (PyTorch's name)
    """A device description, ``device("cpu")``, ``device("cuda:0")`` or ``device("cuda", 0)``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index  # noqa: A001
        name, _, number = str(type).partition(":")
        if name not in _KNOWN:
            raise RuntimeError(
                f"Expected one of {', '.join(_KNOWN)} device type at start of device string: {type}"
            )
        if number:
            if index is not None:
                raise RuntimeError(f"device {type!r} has an index already, got index={index}")
            index = int(number)
        self.type, self.index = name, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = device(other) if other.partition(":")[0] in _KNOWN else None
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def check_device(where: Any) -> None:
    """kernelab computes on the CPU; asking for anything else is a clear error."""
    name = str(getattr(where, "type", where))
    if name.split(":")[0] != "cpu":
        raise RuntimeError(
            f"device {name!r} is not available: kernelab computes on the CPU only (use 'cpu')"
        )
