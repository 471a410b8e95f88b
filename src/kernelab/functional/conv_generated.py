"""What the generated convolution kernels (direct, strided, thin) share: whether a kernel
may run in this process, the block of output channels they hold, the vector registers of the
machine they are sized for, their compile flags, and the kernel packed in such blocks.

A generated kernel takes 5-25 s to compile cold, so by default a pass runs it only if its
machine code is already in numba's on-disk cache (:func:`ready`); ``KERNELAB_DIRECT_CONV``
("0": off, "1": on, unset: auto) says otherwise (see ``conv_direct_compiled``).
"""

from __future__ import annotations

import os

import numpy as np

from ..core import jit

BLOCK_BYTES = 64  # CB·itemsize: the output channels of one block (one AVX-512 vector, two AVX2)
VECTOR_BYTES = jit.vector_bits() // 8  # what the blocks of accumulators are sized by
FLAGS = {"contract"}  # fused multiply-adds; each accumulator still sums in a fixed order
_ready: dict[tuple[str, np.dtype], bool] = {}  # (kernel, dtype): usable in this process (auto)
MODES = {"0": "off", "1": "on", "": "auto", "auto": "auto"}


def mode() -> str:
    """The mode, from ``KERNELAB_DIRECT_CONV`` ("0": off, "1": on, unset: auto; see the module)."""
    value = os.environ.get("KERNELAB_DIRECT_CONV", "").strip().lower()
    if value not in MODES:
        raise ValueError(f"KERNELAB_DIRECT_CONV: expected 0, 1 or auto, got {value!r}")
    return MODES[value]


def ready(kernel: jit.Kernel, args) -> bool:
    """Whether a pass may run ``kernel`` (for ``args``' types) in this process.

    With ``KERNELAB_DIRECT_CONV=1`` always (it compiles on its first call if need be), with
    ``0`` never. By default only if its machine code is in this process or numba's on-disk
    cache at the first question; if not, never in this process (the answer is kept), and a
    background process compiles it for the next one.
    """
    if mode() != "auto":
        return mode() == "on"
    key = kernel.__name__, next(a.dtype for a in args if isinstance(a, np.ndarray))
    if key not in _ready:
        _ready[key] = kernel.load_cached(args)
        if not _ready[key]:
            jit.compile_in_background(kernel, args)
    return _ready[key]


def pack(w: np.ndarray, cb: int) -> np.ndarray:
    """The kernel (C_out, C_in, kH, kW) as (⌈C_out/CB⌉, C_in, kH, kW, CB), zeros past C_out."""
    c_out = w.shape[0]
    blocked = np.zeros((-(-c_out // cb) * cb,) + w.shape[1:], w.dtype)
    blocked[:c_out] = w
    blocked = blocked.reshape((-1, cb) + w.shape[1:])  # (C_out/CB, CB, C_in, kH, kW)
    return np.ascontiguousarray(blocked.transpose(0, 2, 3, 4, 1))
