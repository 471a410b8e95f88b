"""Read IDX files: the format of MNIST, Fashion-MNIST, KMNIST and EMNIST.

An IDX file is a big-endian header -- two zero bytes, a type byte, the number of dimensions
``ndim``, then one 4-byte size per dimension -- followed by the values in row-major order.
MNIST's "magic numbers" are the header's first four bytes read as one integer: 2051 = 0x0803
(uint8, 3 dimensions) for images, 2049 = 0x0801 (uint8, 1 dimension) for labels.

Files may be gzipped; that is told from the gzip magic bytes, never from the file name, because
browsers and mirrors often decompress a download and keep the ``.gz``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension (n)

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1032  # the most deflate can expand: 258 bytes from 2 bits
# IDX type byte -> dtype; multi-byte values are big-endian on disk.
_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike, *, ndim: int | None = None, dtype=None) -> np.ndarray:
    """Read an IDX file, gzipped or raw, into an array of the shape and type in its header.

    ``ndim`` and ``dtype``, when given, are checked against the header, so a labels file passed
    where images are expected fails here, with a message naming the file. The result is
    writable and in native byte order (uint8 for MNIST and its relatives).
    """
    path = Path(path)
    with _open(path) as stream:
        try:
            shape, file_dtype = _read_header(stream, path)
            _check_expected(path, shape, file_dtype, ndim, dtype)
            _check_size(path, stream, shape, file_dtype)
            payload = _read_payload(stream, path, shape, file_dtype)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from error
    array = payload.view(file_dtype).reshape(shape)
    return array.astype(file_dtype.newbyteorder("="), copy=False)


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Images from an IDX file with magic 2051: uint8 array of shape (N, rows, cols)."""
    return read_idx(path, ndim=3, dtype=np.uint8)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels from an IDX file with magic 2049: uint8 array of shape (N,)."""
    return read_idx(path, ndim=1, dtype=np.uint8)


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[return-value]


def _read_header(stream: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    head = stream.read(4)
    if len(head) < 4:
        raise ValueError(
            f"{path}: expected an IDX header of at least 4 bytes, found a file of {len(head)} bytes"
        )
    magic = struct.unpack(">I", head)[0]
    zeros, type_code, ndim = head[:2], head[2], head[3]
    if zeros != b"\0\0" or type_code not in _TYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file: expected a magic number 0x0000TTDD with a known type TT "
            f"and DD >= 1 dimensions (2051 for images, 2049 for labels), found {magic} "
            f"(0x{magic:08X})"
        )
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header: magic {magic} announces {ndim} dimension sizes "
            f"({4 * ndim} bytes), found {len(sizes)} bytes"
        )
    return struct.unpack(f">{ndim}I", sizes), _TYPES[type_code]


def _check_expected(path: Path, shape: tuple[int, ...], found: np.dtype, ndim, dtype) -> None:
    ndim_ok = ndim is None or ndim == len(shape)
    dtype_ok = dtype is None or np.dtype(dtype) == found.newbyteorder("=")
    if ndim_ok and dtype_ok:
        return
    wanted = " ".join(
        part
        for part in (f"{ndim}-D" if ndim is not None else "", np.dtype(dtype).name if dtype else "")
        if part
    )
    if ndim is not None and dtype is not None:
        wanted += f" (magic {_magic(np.dtype(dtype), ndim)})"
    raise ValueError(
        f"{path}: expected a {wanted} IDX file, found {len(shape)}-D {found.name} "
        f"(magic {_magic(found, len(shape))}) of shape {shape}"
    )


def _magic(dtype: np.dtype, ndim: int) -> int:
    code = next(c for c, t in _TYPES.items() if t.newbyteorder("=") == dtype.newbyteorder("="))
    return (code << 8) | ndim


def _check_size(path: Path, stream: BinaryIO, shape, dtype: np.dtype) -> None:
    """Refuse a header announcing more bytes than the file can hold, before allocating them.

    Deflate expands at most 1032-fold, so a gzipped file of n bytes holds at most 1032·n.
    """
    expected = math.prod(shape) * dtype.itemsize
    shape_text = "x".join(map(str, shape))
    if math.prod(n for n in shape if n) * dtype.itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{path}: the header announces a shape {shape_text} no array can have")
    if not isinstance(stream, gzip.GzipFile):
        room = path.stat().st_size - stream.tell()
        if expected > room:
            raise ValueError(
                f"{path}: truncated: the header announces {shape_text} {dtype.name} values "
                f"({expected} bytes of data), found only {room}"
            )
    elif expected > path.stat().st_size * _MAX_DEFLATE_RATIO:
        raise ValueError(
            f"{path}: the header announces {shape_text} {dtype.name} values ({expected:,} "
            f"bytes), more than a gzipped file of {path.stat().st_size:,} bytes can hold"
        )


def _read_payload(stream: BinaryIO, path: Path, shape, dtype: np.dtype) -> np.ndarray:
    """The values as bytes, read straight into the result's memory (no intermediate copy)."""
    expected = math.prod(shape) * dtype.itemsize
    buffer = np.empty(expected, dtype=np.uint8)
    view, filled = memoryview(buffer), 0
    while filled < expected:
        count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    shape_text = "x".join(map(str, shape))
    if filled < expected:
        raise ValueError(
            f"{path}: truncated: the header announces {shape_text} {dtype.name} values "
            f"({expected} bytes of data), found only {filled}"
        )
    extra = len(stream.read())
    if extra:
        raise ValueError(
            f"{path}: the header announces {shape_text} {dtype.name} values "
            f"({expected} bytes of data), found {extra} more bytes after them"
        )
    return buffer
