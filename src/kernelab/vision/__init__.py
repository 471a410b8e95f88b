"""torchvision's API for CNN data: ``import kernelab.vision as torchvision``.

``datasets`` (MNIST and its relatives, CIFAR-10/100, image folders), ``transforms`` (the
conversions, normalisation and augmentations of CNN tutorials) and ``utils`` (``make_grid``,
``save_image``). A torchvision name not here (``models``, ``datasets.ImageNet``,
``transforms.ColorJitter``, ...) raises an AttributeError that says so, at the line using it.
"""

from . import datasets, transforms, utils
from .missing import not_in_vision

__all__ = ["datasets", "transforms", "utils"]


def __getattr__(name: str):
    raise not_in_vision(__name__, name, "torchvision")
