"""``torchvision.datasets``: MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100 and folders of
images, with torchvision's constructor arguments, folder layouts and samples."""

from .cifar import CIFAR10, CIFAR100
from .dataset import VisionDataset
from .folder import DatasetFolder, ImageFolder
from .missing import not_in_vision
from .mnist import KMNIST, MNIST, FashionMNIST

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "KMNIST",
    "MNIST",
    "DatasetFolder",
    "FashionMNIST",
    "ImageFolder",
    "VisionDataset",
]


def __getattr__(name: str):
    raise not_in_vision(__name__, name, "torchvision.datasets")
