"""The error for a torchvision name that :mod:`kernelab.vision` does not have."""


def not_in_vision(module: str, name: str, torchvision_module: str) -> AttributeError:
    """An AttributeError naming torchvision's ``<torchvision_module>.<name>``, raised where it is
    used; private names get Python's plain message, so ``hasattr`` probes behave as usual."""
    if name.startswith("_"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return AttributeError(
        f"module {module!r} has no attribute {name!r}: {torchvision_module}.{name} is not part "
        f"of kernelab.vision (see docs/coming-from-pytorch.md)"
    )
