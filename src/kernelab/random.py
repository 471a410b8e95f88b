"""The default random generator, and how functions take one.

Everything random in kernelab (initialisers, dropout, shuffling) accepts ``generator``: a
``np.random.Generator``, an int seed, or None for the default generator that
:func:`manual_seed` resets. Runs are reproducible without touching NumPy's global state.
"""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator, so what follows draws the same numbers every run."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    return _default


def as_generator(generator: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (the default generator)."""
    if generator is None:
        return _default
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)
