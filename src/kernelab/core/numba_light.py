"""numba without the parts of it that only compiling needs, for a start in a fraction of a second.

* Loads from the on-disk cache (:func:`lightly`). numba refreshes its target context before
  every load: it imports and installs all its typing and lowering registries (0.15-0.25 s,
  with its array maths 0.25-0.4 s), a quarter of a warm ``kernelab train`` to the end of its
  first step. Only compiling needs them, and a compile refreshes on its own. Machine code
  loaded from the cache needs only numba's runtime (NRT) to link against, and the modules its
  environments name.
* numba's array maths, whenever it is imported (:func:`skip_scipy_in_array_math`).
  ``numba.np.arraymath`` imports ``scipy.linalg`` (0.2-0.35 s, where SciPy is installed) only
  to set one flag: whether BLAS is there for 1-D ``np.correlate``/``np.convolve``. The flag is
  set from SciPy's files instead (a path finder's look, no import); numba's BLAS functions
  still import SciPy when they compile, as they do anyway.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

ARRAY_MATH, BLAS = "numba.np.arraymath", "scipy.linalg.cython_blas"


def lightly(dispatcher):
    """numba's ``dispatcher``, its cache loads (if it has a cache) made by
    :func:`load_overload`."""
    cache = dispatcher._cache
    if hasattr(cache, "_load_overload"):  # numba's NullCache (an uncached function) has none
        cache.load_overload = functools.partial(load_overload, cache)
    return dispatcher


def load_overload(cache, signature, target_context):
    """numba's ``Cache.load_overload`` without the refresh: the machine code of
    ``signature`` from the cache, or None (numba then compiles it)."""
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)
    result = None
    with cache._guard_against_spurious_io_errors():  # as numba's own load
        result = cache._load_overload(signature, target_context)
    return result


def skip_scipy_in_array_math() -> None:
    """From now on, numba's array maths is imported without SciPy's linear algebra (unless
    that is imported already). Called once, when numba is imported."""
    if ARRAY_MATH not in sys.modules:
        sys.meta_path.insert(0, _ArrayMathFinder())


class _ArrayMathFinder(importlib.abc.MetaPathFinder):
    """Finds numba's array maths, to be run by :class:`_WithoutScipy`."""

    def find_spec(self, name, path=None, target=None):
        if name != ARRAY_MATH:
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and "scipy.linalg" not in sys.modules:
            spec.loader = _WithoutScipy(spec.loader)
        return spec


class _WithoutScipy(importlib.abc.Loader):
    """A module's loader, running the module with SciPy's BLAS blocked, then setting the
    module's ``_HAVE_BLAS`` to whether SciPy has it."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_source, get_filename, ...: the loader's own
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.modules[BLAS] = None  # the flag's import fails at once
        try:
            self.loader.exec_module(module)
        finally:
            del sys.modules[BLAS]
        module._HAVE_BLAS = _scipy_has_blas()


def _scipy_has_blas() -> bool:
    scipy = importlib.util.find_spec("scipy")
    folders = scipy.submodule_search_locations if scipy is not None else None
    return bool(folders) and any(
        importlib.machinery.PathFinder.find_spec("cython_blas", [os.path.join(folder, "linalg")])
        for folder in folders
    )
