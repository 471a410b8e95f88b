"""CIFAR's Python batches (``cifar-10-batches-py``, ``cifar-100-python``) read without trusting
them.

The files are pickles, and unpickling an arbitrary pickle runs whatever code it names. Here
the pickle module only parses: its unpickler resolves no name except the five a CIFAR batch
uses -- NumPy's array and dtype builders, and the latin-1 ``encode`` with which Python 3 writes
bytes at protocol 2 -- and even those resolve to stand-ins of this module, not to NumPy. The
stand-ins collect what the pickle says (type code, byte order, shape, raw bytes), check it is a
plain numeric array of the right size, and only then build it with ``np.frombuffer``. So a
batch can hold dicts, lists, tuples, strings, bytes, numbers and numeric arrays, and nothing
else: any other name (``os.system``, ``builtins.eval``, ...) is refused before it is looked
up, and NumPy's own unpickling code (which trusts its input) never sees the file.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
from pathlib import Path

import numpy as np

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floating point


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that names or holds something a CIFAR batch never holds (code, classes,
    functions, arrays of objects)."""


class _ArrayType:
    """What the pickle's ``numpy.ndarray`` resolves to: a mark, usable only as the array type
    given to ``_reconstruct`` (it cannot be called, nor given attributes)."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("refusing to call numpy.ndarray (it can build arrays of objects)")


_NDARRAY = _ArrayType()


class _Dtype:
    """``numpy.dtype(type_code, align, copy)`` and its state, as the pickle gives them."""

    __slots__ = ("code", "order")

    def __init__(self, code, align=False, copy=True):
        self.code = code.decode("latin1") if isinstance(code, bytes) else code
        self.order = "|"

    def __setstate__(self, state) -> None:
        # (version, byte order, sub-array, names, fields, item size, alignment, flags, ...)
        if not isinstance(state, tuple) or len(state) < 5 or state[2:5] != (None, None, None):
            raise UnsafePickleError("refusing a structured or sub-array dtype")
        self.order = state[1]

    def resolve(self) -> np.dtype:
        """The dtype, if it is a plain number type."""
        try:
            dtype = np.dtype(self.code)
        except TypeError as error:
            raise UnsafePickleError(f"refusing dtype {self.code!r}") from error
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise UnsafePickleError(f"refusing dtype {dtype}: CIFAR's arrays hold numbers")
        if self.order in ("<", ">"):
            return dtype.newbyteorder(self.order)
        if self.order not in ("|", "="):
            raise UnsafePickleError(f"refusing byte order {self.order!r}")
        return dtype


def _array(raw, dtype, shape, order: str = "C") -> np.ndarray:
    """A writable numeric array from the pickle's raw bytes, after checking their size."""
    if not isinstance(dtype, _Dtype):
        raise UnsafePickleError("refusing an array whose dtype is not a numpy.dtype")
    dtype = dtype.resolve()
    if isinstance(raw, str):  # a Python 2 string, read as latin-1
        raw = raw.encode("latin1")
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw)
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError("refusing an array built from anything but bytes")
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise UnsafePickleError(f"refusing array shape {shape!r}")
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise UnsafePickleError(
            f"refusing an array of shape {shape} and dtype {dtype} from {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype).reshape(shape, order="F" if order == "F" else "C")
    return np.array(array, order="C")


class _ArrayState:
    """What the pickle's ``_reconstruct`` makes: an array waiting for its state."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state) -> None:
        # (version, shape, dtype, Fortran order, raw bytes); very old NumPy left out version
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refusing an array state that is not NumPy's")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array(raw, dtype, shape, "F" if fortran else "C")


def _reconstruct(array_type, shape, type_code) -> _ArrayState:
    if array_type is not _NDARRAY:
        raise UnsafePickleError("refusing _reconstruct of anything but numpy.ndarray")
    return _ArrayState()


def _frombuffer(raw, dtype, shape, order) -> np.ndarray:
    """NumPy's protocol-5 array builder, on in-band bytes."""
    return _array(raw, dtype, shape, order)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2: latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype,
    ("_codecs", "encode"): _latin1_encode,
}


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


def _resolved(value):
    """The loaded value with every stand-in replaced by what it stands for."""
    if isinstance(value, _ArrayState) and value.array is not None:
        return value.array
    if isinstance(value, (_ArrayState, _Dtype, _ArrayType)):
        raise UnsafePickleError("refusing a dtype, array type or array state outside an array")
    if isinstance(value, dict):
        return {_resolved(key): _resolved(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_resolved(item) for item in value)
    return value


def load_data_pickle(path: str | os.PathLike) -> object:
    """The contents of a pickle of plain containers and numeric NumPy arrays; anything else
    raises :class:`UnsafePickleError` without being run."""
    data = Path(path).read_bytes()
    try:
        return _resolved(_DataUnpickler(io.BytesIO(data), str(path)).load())
    except UnsafePickleError as error:
        if str(error).startswith(str(path)):
            raise
        raise UnsafePickleError(f"{path}: {error}") from error
    except RecursionError as error:
        raise UnsafePickleError(f"{path}: refusing containers nested too deeply") from error
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable CIFAR batch ({error})") from error


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
