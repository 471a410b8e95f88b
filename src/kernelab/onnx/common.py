"""What export and import share: the error they raise and the ONNX package, imported lazily."""

from __future__ import annotations

from types import ModuleType

import numpy as np

MIN_OPSET = 13  # Softmax along one axis, ReduceSum/Squeeze/Unsqueeze axes as inputs


class ONNXError(ValueError):
    """A model, operation or file that cannot be converted to or from ONNX."""


def require_onnx() -> ModuleType:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(
            'ONNX export and import need the onnx extra: pip install "kernelab[onnx]"'
        ) from None
    return onnx


def supported(names, width: int = 100) -> str:
    """The sorted names, as many as fit in about ``width`` characters, then how many in all."""
    names = sorted(names)
    text = ", ".join(names)
    if len(text) <= width:
        return text
    shown = text[:width].rpartition(", ")[0]
    return f"{shown}, ... ({len(names)} in all)"


def one_line(error: Exception, width: int = 160) -> str:
    """The onnx package's multi-line messages (checker context, protobuf) as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def cells_inside(size: int, kernel: int, stride: int, before: int, count: int) -> np.ndarray:
    """For ``count`` windows along an axis, padded by ``before``, the cells inside ``size``.

    Window i covers input positions ``[i·stride − before, i·stride − before + kernel)``.
    """
    starts = np.arange(count) * stride - before
    return np.clip(starts + kernel, 0, size) - np.clip(starts, 0, size)
