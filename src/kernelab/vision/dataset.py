"""``torchvision.datasets.VisionDataset``: what every vision dataset shares (root, transforms,
the image a sample hands to them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.loader import Dataset


def has_pillow() -> bool:
    """True when Pillow can be imported (datasets then hand out PIL images, as torchvision)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def as_image(pixels: np.ndarray):
    """uint8 pixels (H, W) or (H, W, 3) as a PIL image ("L" or "RGB"), or the array itself
    when Pillow is not installed (every transform takes either)."""
    if not has_pillow():
        return pixels
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(pixels))


class VisionDataset(Dataset):
    """A dataset under ``root`` whose samples pass through ``transform`` (the image) and
    ``target_transform`` (the label), or through ``transforms`` (both at once)."""

    _repr_indent = 4

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        transforms: Callable | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ):
        self.root = os.path.expanduser(root) if isinstance(root, str) else root
        if transforms is not None and (transform is not None or target_transform is not None):
            raise ValueError(
                f"{type(self).__name__}: expected transforms, or transform and "
                f"target_transform, received both"
            )
        self.transform, self.target_transform = transform, target_transform
        self.transforms = transforms

    def apply_transforms(self, image: Any, target: Any) -> tuple[Any, Any]:
        """``(image, target)`` through the dataset's transforms."""
        if self.transforms is not None:
            return self.transforms(image, target)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"Root location: {self.root}")
        lines += [line for line in self.extra_repr().splitlines() if line]
        for name in ("transforms", "transform", "target_transform"):
            if getattr(self, name) is not None:
                lines.append(f"{name}: {getattr(self, name)!r}".replace("\n", "\n    "))
        body = "".join(f"\n{' ' * self._repr_indent}{line}" for line in lines)
        return f"Dataset {type(self).__name__}{body}"
