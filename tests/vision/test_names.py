"""What kernelab.vision has under torchvision's names, and the error for what it has not."""

import pytest

import kernelab as kl
import kernelab.vision as torchvision
from kernelab.vision import datasets, transforms, utils


def test_the_tutorial_imports_work():
    from kernelab.vision.utils import make_grid, save_image  # noqa: F401

    assert kl.vision is torchvision and torchvision.datasets is datasets
    for name in ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "CIFAR100", "ImageFolder"):
        assert hasattr(datasets, name)
    for name in (
        "Compose",
        "ToTensor",
        "Normalize",
        "Pad",
        "RandomCrop",
        "RandomHorizontalFlip",
        "Resize",
        "CenterCrop",
        "Grayscale",
        "Lambda",
    ):
        assert hasattr(transforms, name)


@pytest.mark.parametrize(
    ("module", "name", "torchvision_name"),
    [
        (torchvision, "models", "torchvision.models"),
        (torchvision, "io", "torchvision.io"),
        (datasets, "ImageNet", "torchvision.datasets.ImageNet"),
        (transforms, "ColorJitter", "torchvision.transforms.ColorJitter"),
        (transforms.functional, "rotate", "torchvision.transforms.functional.rotate"),
        (utils, "draw_bounding_boxes", "torchvision.utils.draw_bounding_boxes"),
    ],
)
def test_missing_names_say_so(module, name, torchvision_name):
    with pytest.raises(AttributeError, match=f"{torchvision_name} is not part of kernelab.vision"):
        getattr(module, name)
    assert not hasattr(module, f"_{name}")


def test_from_import_of_a_missing_name_is_an_import_error():
    with pytest.raises(ImportError, match="ColorJitter"):
        from kernelab.vision.transforms import ColorJitter  # noqa: F401
