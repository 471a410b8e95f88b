"""``kl.backends.kernels``: which kernels run, the compiled ones (numba) or the NumPy reference.

``use("numpy")`` (or ``KERNELAB_KERNELS=numpy`` in the environment) selects the reference
kernels; ``using("numpy")`` does so inside a ``with`` block; ``current()`` says which path runs.
"""

from ..core.jit import PATHS, chosen, current, use, using

__all__ = ["PATHS", "chosen", "current", "use", "using"]
