"""``torchvision.datasets.ImageFolder`` and ``DatasetFolder``: files sorted into one folder per
class (``root/<class>/**/<file>``), read one at a time when a sample is asked for."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..data.images import open_image
from .dataset import VisionDataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def find_classes(directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """The sub-folder names of ``directory``, sorted, and each one's index."""
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(
    directory: str | os.PathLike,
    class_to_idx: dict[str, int],
    extensions: Sequence[str] | None = None,
    is_valid_file: Callable[[str], bool] | None = None,
    allow_empty: bool = False,
) -> list[tuple[str, int]]:
    """``(path, class index)`` of every valid file under each class folder, walked in sorted
    order (sub-folders too, following links), classes in sorted order."""
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("make_dataset: expected exactly one of extensions and is_valid_file")
    if extensions is not None:
        suffixes = tuple(e.lower() for e in extensions)

        def is_valid_file(path: str) -> bool:
            return path.lower().endswith(suffixes)

    samples, empty = [], []
    for name in sorted(class_to_idx):
        before = len(samples)
        for folder, _, files in sorted(os.walk(os.path.join(directory, name), followlinks=True)):
            for file in sorted(files):
                path = os.path.join(folder, file)
                if is_valid_file(path):  # type: ignore[misc]
                    samples.append((path, class_to_idx[name]))
        if len(samples) == before:
            empty.append(name)
    if empty and not allow_empty:
        supported = f" Supported extensions are: {', '.join(extensions)}" if extensions else ""
        raise FileNotFoundError(
            f"Found no valid file for the classes {', '.join(empty)}.{supported}"
        )
    return samples


def pil_loader(path: str):
    """The image file as a PIL RGB image."""
    with open_image(path, "ImageFolder") as image:
        return image.convert("RGB")


default_loader = pil_loader


class DatasetFolder(VisionDataset):
    """Samples ``(loader(path), class index)`` for the files of ``root/<class>/``.

    ``classes`` are the sorted folder names, ``class_to_idx`` their indices, ``samples`` the
    ``(path, index)`` pairs, ``targets`` the indices alone.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        loader: Callable[[str], Any],
        extensions: Sequence[str] | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ):
        super().__init__(root, transform=transform, target_transform=target_transform)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"{type(self).__name__}: root {str(root)!r} is not a folder")
        self.classes, self.class_to_idx = self.find_classes(self.root)
        self.samples = self.make_dataset(
            self.root, self.class_to_idx, extensions, is_valid_file, allow_empty
        )
        self.loader, self.extensions = loader, extensions
        self.targets = [index for _, index in self.samples]

    @staticmethod
    def make_dataset(
        directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False
    ):
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory) -> tuple[list[str], dict[str, int]]:
        return find_classes(directory)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        return self.apply_transforms(self.loader(path), target)

    def __len__(self) -> int:
        return len(self.samples)


class ImageFolder(DatasetFolder):
    """Images sorted into ``root/<class>/``, loaded as PIL RGB images; ``imgs`` is
    ``samples``."""

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] = default_loader,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ):
        super().__init__(
            root,
            loader,
            IMG_EXTENSIONS if is_valid_file is None else None,
            transform=transform,
            target_transform=target_transform,
            is_valid_file=is_valid_file,
            allow_empty=allow_empty,
        )
        self.imgs = self.samples
