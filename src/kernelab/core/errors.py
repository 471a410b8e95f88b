"""Errors kernelab raises on bad input."""


class ShapeError(ValueError):
    """An array whose shape does not fit the operation or layer it is given to.

    A layer that catches one from its forward names itself at the front of the message,
    once (``layer`` records who did).
    """

    layer: str | None = None


class DTypeError(RuntimeError, TypeError):
    """Operands whose dtypes an operation refuses, where PyTorch refuses them
    (``float32 @ float64``, ``int_tensor += 0.5``, ``mean`` of integers).

    A RuntimeError, as PyTorch raises, and a TypeError, as Python raises for a bad operand type.
    """


def not_provided(module: str, name: str, torch_module: str) -> AttributeError:
    """The error for a PyTorch name that kernelab does not have, raised where it is used.

    ``module`` is kernelab's module (``"kernelab.nn"``), ``torch_module`` PyTorch's
    (``"torch.nn"``). Private names get Python's plain message, so ``hasattr`` probes for
    dunders (``__path__``, ``__wrapped__``) behave as for any module.
    """
    if name.startswith("_"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return AttributeError(
        f"module {module!r} has no attribute {name!r}: {torch_module}.{name} is not part of "
        f"kernelab (see docs/coming-from-pytorch.md)"
    )
