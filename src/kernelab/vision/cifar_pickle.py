"""CIFAR's Python batches (``cifar-10-batches-py``, ``cifar-100-python``) read without trusting
them.

The files are pickles, and unpickling an arbitrary pickle runs whatever code it names. These
are read by an unpickler that resolves no name except NumPy's array and dtype builders
(and the latin-1 ``encode`` with which Python 3 writes bytes at protocol 2), so a batch can
hold dicts, lists, strings, bytes, numbers and NumPy arrays, and nothing else; any other name
(``os.system``, ``builtins.eval``, ...) is refused before it is looked up.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path

import numpy as np

# NumPy's array reconstructors, whatever their module: protocols 0-4 and 5 (in-band buffers).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2: latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that names something a CIFAR batch never holds (code, classes, functions)."""


class _DataUnpickler(pickle.Unpickler):
    def __init__(self, stream, source: str):
        super().__init__(stream, encoding="latin1")  # as torchvision: Python 2 strings
        self.source = source

    def find_class(self, module: str, name: str):
        found = ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self.source}: refusing to load {module}.{name}: a CIFAR batch holds only "
                f"dicts, lists, strings, bytes, numbers and NumPy arrays, so this file is not "
                f"one (it may be malicious)"
            )
        return found


def load_data_pickle(path: str | os.PathLike) -> object:
    """The contents of a pickle of plain containers and NumPy arrays; anything else raises
    :class:`UnsafePickleError` without being run."""
    data = Path(path).read_bytes()
    return _DataUnpickler(io.BytesIO(data), str(path)).load()


def read_python_batch(path: str | os.PathLike, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from one Python batch.

    A batch is a dict whose ``"data"`` is a uint8 array (N, 3072) -- 1,024 red, 1,024 green
    and 1,024 blue bytes per image, each plane row-major -- and whose ``label_key``
    (``"labels"``, or ``"fine_labels"`` for CIFAR-100) is a list of N ints.
    """
    batch = load_data_pickle(path)
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        keys = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: expected a dict with 'data' and {label_key!r}, found {keys}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: expected 'data' uint8 (N, 3072), found {data.dtype} {data.shape}"
        )
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: expected {len(data)} int labels in {label_key!r}, found {labels.dtype} "
            f"{labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # (N, C, H, W)


def read_python_meta(path: str | os.PathLike, key: str) -> list[str]:
    """The class names under ``key`` (``"label_names"``, ``"fine_label_names"``) of a meta
    file."""
    meta = load_data_pickle(path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise ValueError(f"{path}: expected a dict with a list of names under {key!r}")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
