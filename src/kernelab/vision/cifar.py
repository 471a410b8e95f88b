"""``torchvision.datasets.CIFAR10`` and ``CIFAR100``, from any of CIFAR's published forms.

Looked for under ``root`` in this order: torchvision's extracted Python version
(``cifar-10-batches-py``, ``cifar-100-python``; read by the restricted unpickler of
:mod:`.cifar_pickle`), the extracted binary version (``cifar-10-batches-bin``,
``cifar-100-binary``; no pickle at all), then CIFAR-10's binary archive. ``download=True``
fetches a missing dataset into ``root`` with kernelab's downloader and checks its MD5:
CIFAR-10's binary archive (read as it is), CIFAR-100's Python archive (extracted).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data.cifar import CIFAR10_CLASSES, parse_cifar10_records, read_cifar10
from ..data.download import download as download_file
from .cifar_pickle import read_python_batch, read_python_meta
from .dataset import VisionDataset, as_image

_PIXELS = 3 * 32 * 32


class CIFAR10(VisionDataset):
    """CIFAR-10's 32x32 colour images in 10 classes: ``dataset[i]`` is ``(image, label)``, the
    image a PIL RGB image (a uint8 array (32, 32, 3) without Pillow) through ``transform``.

    ``data`` is the uint8 array (N, 32, 32, 3), ``targets`` a list of ints, ``classes`` the
    names, as torchvision has them.
    """

    base_folder = "cifar-10-batches-py"
    binary_folder = "cifar-10-batches-bin"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    filename = "cifar-10-binary.tar.gz"
    tgz_md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    train_list = [f"data_batch_{i}" for i in range(1, 6)]
    test_list = ["test_batch"]
    meta = {"filename": "batches.meta", "key": "label_names"}
    label_key = "labels"

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
        images, labels, classes = self._load(Path(self.root), download)
        self.data = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (N, H, W, C)
        self.targets = labels.tolist()
        self.classes = classes
        self.class_to_idx = {name: i for i, name in enumerate(classes)}

    def __getitem__(self, index: int):
        return self.apply_transforms(as_image(self.data[index]), self.targets[index])

    def __len__(self) -> int:
        return len(self.data)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"

    def _load(self, root: Path, download: bool):
        names = self.train_list if self.train else self.test_list
        python = root / self.base_folder
        if all((python / name).is_file() for name in names):
            parts = [read_python_batch(python / name, self.label_key) for name in names]
            meta = python / self.meta["filename"]
            classes = read_python_meta(meta, self.meta["key"]) if meta.is_file() else None
            return *(np.concatenate(field) for field in zip(*parts, strict=True)), classes
        binary = root / self.binary_folder
        if all((binary / f"{name}.bin").is_file() for name in names):
            parts = [self._read_binary(binary / f"{name}.bin") for name in names]
            images, labels = (np.concatenate(field) for field in zip(*parts, strict=True))
            return images, labels, self._binary_classes(binary)
        if (root / self.filename).is_file() or download:
            return self._from_archive(root)
        raise RuntimeError(
            f"Dataset not found or corrupted. You can use download=True to download it "
            f"(looked for {python}, {binary} and {root / self.filename})"
        )

    def _read_binary(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        return parse_cifar10_records(path.read_bytes(), str(path))

    def _binary_classes(self, folder: Path) -> list[str]:
        return list(CIFAR10_CLASSES)

    def _from_archive(self, root: Path):
        archive = root / self.filename
        if not archive.is_file():
            root.mkdir(parents=True, exist_ok=True)
            download_file(self.url, self.filename, md5=self.tgz_md5, cache_dir=root)
        splits = read_cifar10(archive)
        if self.train:
            return splits.train_images, splits.train_labels, list(splits.classes)
        return splits.test_images, splits.test_labels, list(splits.classes)


class CIFAR100(CIFAR10):
    """CIFAR-100's 32x32 colour images in 100 classes (the fine labels), as :class:`CIFAR10`."""

    base_folder = "cifar-100-python"
    binary_folder = "cifar-100-binary"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = ["train"]
    test_list = ["test"]
    meta = {"filename": "meta", "key": "fine_label_names"}
    label_key = "fine_labels"

    def _read_binary(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Records of 3,074 bytes: the coarse label, the fine label, then the pixels."""
        data = path.read_bytes()
        if len(data) % (2 + _PIXELS):
            raise ValueError(f"{path}: expected whole {2 + _PIXELS}-byte records")
        records = np.frombuffer(data, np.uint8).reshape(-1, 2 + _PIXELS)
        images = np.ascontiguousarray(records[:, 2:]).reshape(-1, 3, 32, 32)  # (N, C, H, W)
        return images, records[:, 1].astype(np.int64)

    def _binary_classes(self, folder: Path) -> list[str]:
        names = folder / "fine_label_names.txt"
        if not names.is_file():
            raise RuntimeError(f"CIFAR100: expected the class names in {names}")
        return [line.strip() for line in names.read_text().splitlines() if line.strip()]

    def _from_archive(self, root: Path):
        """Download the Python archive and extract its three files (nothing else, nowhere
        else) into ``root/cifar-100-python``; then read them as any extracted copy."""
        archive = root / self.filename
        if not archive.is_file():
            root.mkdir(parents=True, exist_ok=True)
            download_file(self.url, self.filename, md5=self.tgz_md5, cache_dir=root)
        wanted = {f"{self.base_folder}/{name}" for name in ("train", "test", "meta")}
        target = root / self.base_folder
        target.mkdir(exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    name = member.name.rsplit("/", 1)[1]
                    (target / name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
        if not all((target / name).is_file() for name in self.train_list + self.test_list):
            raise RuntimeError(f"CIFAR100: {archive} does not hold {sorted(wanted)}")
        return self._load(root, download=False)
