"""numba's cached machine code loaded without the parts of numba that only compiling needs.

numba refreshes its target context before every load from its on-disk cache: it imports and
installs all its typing and lowering registries (0.15-0.25 s) with its array maths (0.1-0.15 s;
where SciPy is installed, its linear algebra too, 0.2-0.35 s more): a third of a warm
``kernelab train`` up to its first step. Only compiling needs them, and a compile refreshes on
its own. Machine code loaded from the cache needs numba's runtime (NRT) to link against, and
the modules its environments name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys

ARRAY_MATH, BLAS = "numba.np.arraymath", "scipy.linalg.cython_blas"


def lightly(dispatcher):
    """numba's ``dispatcher``, its cache loads made by :func:`load_overload`."""
    dispatcher._cache.load_overload = functools.partial(load_overload, dispatcher._cache)
    return dispatcher


def load_overload(cache, signature, target_context):
    """numba's ``Cache.load_overload`` without the refresh: the machine code of
    ``signature`` from the cache, or None, when numba compiles it next (the array maths is
    imported first, without SciPy)."""
    from numba.core.runtime import rtsys

    result = None
    if hasattr(cache, "_load_overload"):  # numba's NullCache (an uncached function) has none
        rtsys.initialize(target_context)
        with array_math_without_scipy(), cache._guard_against_spurious_io_errors():
            result = cache._load_overload(signature, target_context)  # as numba's own load
    if result is None:
        with array_math_without_scipy():
            importlib.import_module(ARRAY_MATH)
    return result


@contextlib.contextmanager
def array_math_without_scipy():
    """Inside, an import of numba's array maths skips SciPy's linear algebra.

    ``numba.np.arraymath`` imports ``scipy.linalg`` only to set one flag: whether BLAS is there
    for 1-D ``np.correlate``/``np.convolve``. The flag is set here from SciPy's files instead
    (a path finder's look, no import); numba's BLAS functions still import SciPy when they
    compile, as they do anyway.
    """
    if ARRAY_MATH in sys.modules or "scipy.linalg" in sys.modules:
        yield
        return
    sys.modules[BLAS] = None  # the flag's import fails at once
    try:
        yield
    finally:
        del sys.modules[BLAS]
        if ARRAY_MATH in sys.modules:
            sys.modules[ARRAY_MATH]._HAVE_BLAS = _scipy_has_blas()


def _scipy_has_blas() -> bool:
    scipy = importlib.util.find_spec("scipy")
    folders = scipy.submodule_search_locations if scipy is not None else None
    return bool(folders) and any(
        importlib.machinery.PathFinder.find_spec("cython_blas", [os.path.join(folder, "linalg")])
        for folder in folders
    )
