"""Saving and loading without pickle: arrays in a ``.npz``, everything else as JSON.

``save(obj, path)`` accepts nested dicts, lists and tuples of tensors, NumPy arrays, numbers,
strings, booleans and None — state dicts, optimiser states, training state. The file is a
zip holding one ``.npy`` per array and a JSON tree that refers to them, plus a SHA-256 of
every array, so a truncated or tampered file is refused.

Files are written by :func:`atomic_writer`: a temporary file beside the target, flushed to the
disk, renamed over the target, and the folder flushed. A crash never leaves a half-written
file under the real name, and renames reach the disk in the order they were made, so a
sequence of writes survives a power failure as a prefix of itself.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .devices import check_device
from .tensor import Tensor

FORMAT = "kernelab-checkpoint/1"
_TREE = "tree.json"
# A str-keyed dict that holds one of these keys is stored as items, so it cannot be misread
_MARKERS = {"__array__", "__tuple__", "__items__"}
_ARRAY_KEY = re.compile(r"a\d{1,9}")  # the names save gives arrays: a0, a1, ...
# What a damaged or crafted zip can raise from zipfile, json or np.load: each means "refused"
_DAMAGE = (
    zipfile.BadZipFile,
    KeyError,
    TypeError,
    ValueError,
    EOFError,
    OSError,
    NotImplementedError,  # e.g. an unknown compression method after a flipped byte
    RuntimeError,  # e.g. a member flagged as encrypted; also RecursionError
)


class CheckpointError(ValueError):
    """A file that is not a kernelab checkpoint, or one that was truncated or altered."""


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON form of ``obj``; arrays are replaced by references into ``arrays``."""
    if isinstance(obj, (Tensor, np.ndarray)):
        array = obj.array if isinstance(obj, Tensor) else obj
        if array.dtype.hasobject:
            raise TypeError("cannot save an array of Python objects")
        key = f"a{len(arrays)}"
        arrays[key] = array
        return {"__array__": key, "tensor": isinstance(obj, Tensor), "sha256": _digest(array)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not _MARKERS.intersection(obj):
            return {k: _encode(v, arrays) for k, v in obj.items()}
        return {"__items__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays) for v in obj]
        return items if isinstance(obj, list) else {"__tuple__": items}
    raise TypeError(
        f"cannot save a {type(obj).__name__}: only tensors, arrays, numbers, strings, "
        f"None and dicts/lists/tuples of them are stored (no pickle)"
    )


def _read_array(data: bytes, key: str) -> np.ndarray:
    """An ``.npy`` member, its header checked against its size before anything is allocated."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
        version, np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(stream)
    declared, held = math.prod(shape) * dtype.itemsize, len(data) - stream.tell()
    if declared != held:
        raise ValueError(f"array {key} declares {declared:,} bytes of values, holds {held:,}")
    stream.seek(0)
    return np.load(stream, allow_pickle=False)


def _decode(node: Any, archive: zipfile.ZipFile, path: Path, seen: set) -> Any:
    """The object a JSON node stands for; ``seen`` holds the arrays already read, since
    :func:`save` refers to each once and a tree repeating one could load as gigabytes."""
    if isinstance(node, list):
        return [_decode(v, archive, path, seen) for v in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        key = node["__array__"]
        if not isinstance(key, str) or not _ARRAY_KEY.fullmatch(key):
            raise CheckpointError(f"{path}: {brief(ValueError(ascii(key)))} is not an array name")
        if key in seen:
            raise CheckpointError(f"{path}: array {key} is referred to twice")
        seen.add(key)
        try:
            with archive.open(key + ".npy") as member:
                array = _read_array(member.read(), key)
        except (KeyError, ValueError, zipfile.BadZipFile, OSError) as error:
            raise CheckpointError(f"{path}: array {key} is unreadable ({brief(error)})") from None
        if _digest(array) != node["sha256"]:
            raise CheckpointError(f"{path}: array {key} fails its checksum")
        return Tensor(array) if node["tensor"] else array
    if "__tuple__" in node:
        return tuple(_decode(v, archive, path, seen) for v in node["__tuple__"])
    if "__items__" in node:
        return {
            _decode(k, archive, path, seen): _decode(v, archive, path, seen)
            for k, v in node["__items__"]
        }
    return {k: _decode(v, archive, path, seen) for k, v in node.items()}


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` atomically (temporary file, fsync, rename)."""
    arrays: dict[str, np.ndarray] = {}
    tree = {"format": FORMAT, "content": _encode(obj, arrays)}
    with atomic_writer(path) as file, zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(key + ".npy", buffer.getvalue())
        archive.writestr(_TREE, json.dumps(tree))


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` in one rename when the block ends without error.

    What is written goes to ``.NAME.XXXX.tmp`` beside ``path``, is flushed to the disk, then
    renamed over ``path``; the folder is flushed last, so the rename is on the disk before
    the next write starts. Readers and crashes see the old file or the new one, never a part;
    on an error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to the disk, where the system allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows, which cannot open a folder
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def discard_temporaries(path: str | os.PathLike) -> None:
    """Remove the temporary files :func:`atomic_writer` left beside ``path`` when killed."""
    path = Path(path)
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        leftover.unlink(missing_ok=True)


_PICKLED = (
    "{path}: not a kernelab checkpoint but a pickle file (torch.save writes these): kernelab "
    "does not unpickle, since a pickle can run any code. Save the state_dict with "
    "safetensors.torch.save_file and read it with kernelab.load_safetensors"
)


def _is_pickle(path: Path, archive: zipfile.ZipFile | None) -> bool:
    """A raw pickle (protocol 2+ starts with 0x80), or PyTorch's zip holding ``data.pkl``."""
    if archive is not None:
        return any(name.endswith("data.pkl") for name in archive.namelist())
    with open(path, "rb") as file:
        return file.read(1) == b"\x80"


def load(path: str | os.PathLike, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read what :func:`save` wrote, verifying every array; anything else is refused.

    ``map_location`` may name the CPU (or be None); ``weights_only`` is accepted and always
    true in effect: only tensors, arrays, numbers, strings and containers of them are stored.
    """
    path = Path(path)
    if isinstance(map_location, str) or hasattr(map_location, "type"):
        check_device(map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path) and _is_pickle(path, None):
        raise CheckpointError(_PICKLED.format(path=path))
    try:
        with zipfile.ZipFile(path) as archive:
            if _TREE not in archive.namelist() and _is_pickle(path, archive):
                raise CheckpointError(_PICKLED.format(path=path))
            _check_sizes(archive, path)
            tree = json.loads(archive.read(_TREE))
            if not isinstance(tree, dict) or tree.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a {FORMAT} file")
            return _decode(tree["content"], archive, path, set())
    except CheckpointError:
        raise
    except _DAMAGE as error:
        raise CheckpointError(
            f"{path}: not a kernelab checkpoint, or truncated or corrupted ({brief(error)})"
        ) from None


def _check_sizes(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse a member declaring more bytes than the file holds: :func:`save` stores members
    uncompressed, so only a crafted file (a zip bomb) declares more."""
    size = path.stat().st_size
    for info in archive.infolist():
        if info.file_size > size:
            raise CheckpointError(
                f"{path}: member {brief(ValueError(info.filename))} declares "
                f"{info.file_size:,} bytes, more than the file's {size:,}"
            )


def brief(error: Exception) -> str:
    """An error's first line cut to 80 characters: zipfile's may quote kilobytes of bytes."""
    text = (str(error).splitlines() or [type(error).__name__])[0]
    return text if len(text) <= 80 else text[:77] + "..."
