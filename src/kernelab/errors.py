"""Errors kernelab raises on bad input."""


class ShapeError(ValueError):
    """An array whose shape does not fit the operation or layer it is given to.

    A layer that catches one from its forward names itself at the front of the message,
    once (``layer`` records who did).
    """

    layer: str | None = None
