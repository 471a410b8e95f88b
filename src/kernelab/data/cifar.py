"""CIFAR-10 from its binary version (``cifar-10-binary.tar.gz``), read without pickle.

Each of ``data_batch_1.bin`` .. ``data_batch_5.bin`` (training) and ``test_batch.bin`` is a run
of 3,073-byte records: one label byte (0..9), then a 32x32 image as 1,024 red, 1,024 green and
1,024 blue bytes, each plane row-major -- already the (C, H, W) layout. The files are read
straight out of the archive (nothing is extracted) or from an extracted folder.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.serialization import brief
from .download import check_integrity, default_cache_dir
from .download import download as download_file
from .splits import DataSplits

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as published on the dataset's page
CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_FOLDER = "cifar-10-batches-bin"  # the archive's top folder
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
_RECORD = 1 + 3 * 32 * 32
MAX_BATCH_RECORDS = 100_000  # CIFAR-10's batch files hold 10,000 records each


def parse_cifar10_records(
    data: bytes, name: str = "CIFAR-10 batch"
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from the bytes of one ``.bin`` file."""
    if len(data) % _RECORD:
        raise ValueError(
            f"{name}: expected whole {_RECORD}-byte records (1 label byte + 3072 pixel bytes), "
            f"found {len(data)} bytes, {len(data) % _RECORD} past the last whole record"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max(initial=0) >= len(CIFAR10_CLASSES):
        raise ValueError(f"{name}: expected labels 0..9, found {labels.max()}")
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return images, labels


def read_cifar10(path: str | os.PathLike) -> DataSplits:
    """CIFAR-10 from ``cifar-10-binary.tar.gz`` or a folder holding its ``.bin`` files.

    The folder may hold the files directly or in ``cifar-10-batches-bin/`` (as extracted).
    """
    path = Path(path)
    names = TRAIN_FILES + TEST_FILES
    if path.is_file():
        contents = _read_archive(path, names)
    else:
        folder = _bin_folder(path)
        if folder is None:
            raise FileNotFoundError(
                f"{path}: expected {', '.join(names)} here or in {CIFAR10_FOLDER}/, found "
                f"{sorted(p.name for p in path.iterdir()) if path.is_dir() else 'no folder'}"
            )
        contents = {name: (folder / name).read_bytes() for name in names}
    parts = [parse_cifar10_records(contents[name], f"{path}: {name}") for name in names]
    train = [np.concatenate(field) for field in zip(*parts[: len(TRAIN_FILES)], strict=True)]
    test = parts[len(TRAIN_FILES)]
    return DataSplits(
        train[0],
        train[1],
        test[0],
        test[1],
        classes=CIFAR10_CLASSES,
        source=f"CIFAR-10: {len(train[0]):,} train, {len(test[0]):,} test images from {path}",
    )


def load_cifar10(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> DataSplits:
    """CIFAR-10's 50,000 training and 10,000 test images, (N, 3, 32, 32) uint8.

    Looked for in ``root`` (the archive, or its extracted ``.bin`` files), then in the cache,
    then downloaded into the cache from ``mirrors`` (base URLs tried in order) and verified.
    """
    if root is not None:
        root = Path(root)
        if root.is_file() or _bin_folder(root) is not None:
            return read_cifar10(root)
        if (root / CIFAR10_ARCHIVE).is_file():
            return read_cifar10(root / CIFAR10_ARCHIVE)
        if not root.is_dir():
            raise NotADirectoryError(f"load_cifar10: root {str(root)!r} is not a folder")
    cache = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "cifar10"
    archive = cache / CIFAR10_ARCHIVE
    if check_integrity(archive, md5=CIFAR10_MD5):
        return read_cifar10(archive)
    if not download:
        places = f"{root} or {cache}" if root is not None else str(cache)
        raise FileNotFoundError(
            f"CIFAR-10: {CIFAR10_ARCHIVE} not found in {places}, and download=False"
        )
    urls = [mirror + CIFAR10_ARCHIVE for mirror in (mirrors or CIFAR10_MIRRORS)]
    return read_cifar10(
        download_file(urls, CIFAR10_ARCHIVE, md5=CIFAR10_MD5, cache_dir=cache, progress=progress)
    )


def _bin_folder(path: Path) -> Path | None:
    for folder in (path, path / CIFAR10_FOLDER):
        if all((folder / name).is_file() for name in TRAIN_FILES + TEST_FILES):
            return folder
    return None


def _check_member_size(archive: Path, member: tarfile.TarInfo) -> None:
    """Refuse a member larger than any CIFAR-10 batch before reading it into memory."""
    if member.size > MAX_BATCH_RECORDS * _RECORD:
        raise ValueError(
            f"{archive}: member {member.name[-60:]!r} declares {member.size:,} bytes; a batch "
            f"file holds at most {MAX_BATCH_RECORDS:,} records ({MAX_BATCH_RECORDS * _RECORD:,} "
            "bytes)"
        )


def _read_archive(archive: Path, names: Sequence[str]) -> dict[str, bytes]:
    """The named regular files of a tar archive, by base name, read without extracting."""
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names and base not in contents:
                    _check_member_size(archive, member)
                    contents[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"{archive}: not a readable tar archive ({brief(error)})") from error
    missing = [name for name in names if name not in contents]
    if missing:
        raise ValueError(
            f"{archive}: expected members {', '.join(names)}, missing {', '.join(missing)}"
        )
    return contents
