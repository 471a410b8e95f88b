"""The default random generator, and how functions take one.

Everything random in kernelab (initialisers, dropout, shuffling) accepts ``generator``: a
``np.random.Generator``, an int seed, or None for the default generator that
:func:`manual_seed` resets. Runs are reproducible without touching NumPy's global state.
"""

from __future__ import annotations

import numpy as np

from .devices import check_device


class Generator(np.random.Generator):
    """PyTorch's ``torch.Generator`` interface on a NumPy generator (PCG64).

    ``Generator().manual_seed(s)`` gives what ``np.random.default_rng(s)`` gives, and can be
    passed wherever kernelab takes a ``generator`` (a DataLoader, ``random_split``, ``randn``,
    the initialisers). The numbers differ from PyTorch's for the same seed.
    """

    def __init__(self, device: str = "cpu"):
        check_device(device)
        self._initial_seed = _fresh_seed()
        super().__init__(np.random.PCG64(self._initial_seed))

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed``; returns the generator itself, as PyTorch."""
        self.bit_generator.state = np.random.PCG64(int(seed)).state
        self._initial_seed = int(seed)
        return self

    def initial_seed(self) -> int:
        return self._initial_seed

    def seed(self) -> int:
        """Restart from a fresh random seed, and return it."""
        self.manual_seed(_fresh_seed())
        return self._initial_seed


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy) % 2**63


_default: np.random.Generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Reset the default generator, so what follows draws the same numbers every run."""
    global _default
    _default = Generator().manual_seed(seed)
    return _default


def default_generator() -> np.random.Generator:
    return _default


def as_generator(generator: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (NumPy's or :class:`Generator`), a seed, or None (the
    default generator)."""
    if generator is None:
        return _default
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)
