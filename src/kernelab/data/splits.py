"""A labelled image dataset as arrays: training and test sets, class names and provenance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .loader import TensorDataset


@dataclass(frozen=True)
class DataSplits:
    """Training and test images with their labels, as every dataset loader returns them.

    Shape:
        - train_images: (N, H, W) for grey datasets (MNIST's layout), (N, C, H, W) for colour;
          uint8, 0 = black
        - train_labels: (N,), int64 class indices into ``classes``
        - test_images, test_labels: likewise, for the test set

    ``source`` says in one line where the data came from (a folder, the cache, a download, or
    a fallback subset), for the training log.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if len(images) != len(labels) or labels.ndim != 1:
                raise ValueError(
                    f"DataSplits: expected one label per {split} image, received images of "
                    f"shape {images.shape} and labels of shape {labels.shape}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def train_dataset(self) -> TensorDataset:
        """The training set as ``(image, label)`` samples (no copy)."""
        return TensorDataset(self.train_images, self.train_labels)

    def test_dataset(self) -> TensorDataset:
        """The test set as ``(image, label)`` samples (no copy)."""
        return TensorDataset(self.test_images, self.test_labels)
