"""``torchvision.transforms``: the image transforms of CNN tutorials, with torchvision's names,
arguments and semantics.

A transform is called on one image -- a PIL image, a NumPy array (H, W[, C]) or a Tensor
(..., C, H, W), see :mod:`.functional` -- and returns the same form, except the conversions
(ToTensor, PILToTensor, ToPILImage). Random transforms draw from kernelab's default generator,
so ``kernelab.manual_seed(s)`` makes a run's augmentations repeat (the draws differ from
torchvision's for the same seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...core.rng import default_generator
from ..missing import not_in_vision
from . import functional
from .functional import (
    PADDING_MODES,
    InterpolationMode,
    get_dimensions,
    padding_ltrb,
    size_pair,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "Grayscale",
    "InterpolationMode",
    "Lambda",
    "Normalize",
    "Pad",
    "PILToTensor",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "Resize",
    "ToPILImage",
    "ToTensor",
    "functional",
]


class Transform:
    """A callable on one image: ``transform(img)`` is ``transform.forward(img)``."""

    def __call__(self, img):
        return self.forward(img)

    def forward(self, img):
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(Transform):
    """The transforms applied one after the other."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: expected callables, received {type(t).__name__}")

    def forward(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        lines = "".join(f"\n    {t}" for t in self.transforms)
        return f"Compose({lines}\n)"


class ToTensor(Transform):
    """A PIL image or an array (H, W[, C]) as a Tensor (C, H, W); uint8 scaled to [0, 1]."""

    def forward(self, pic):
        return functional.to_tensor(pic)


class PILToTensor(Transform):
    """A PIL image as a Tensor (C, H, W) of its own dtype, not scaled."""

    def forward(self, pic):
        return functional.pil_to_tensor(pic)


class ToPILImage(Transform):
    """A Tensor (C, H, W) or an array (H, W[, C]) as a PIL image."""

    def __init__(self, mode: str | None = None):
        self.mode = mode

    def forward(self, pic):
        return functional.to_pil_image(pic, self.mode)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` on each channel c of a float Tensor (..., C, H, W)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def forward(self, tensor):
        return functional.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Pad(Transform):
    """Add ``padding`` pixels on the sides: an int for all four, (left/right, top/bottom), or
    (left, top, right, bottom); ``fill`` for ``padding_mode="constant"``."""

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"Pad: expected padding_mode in {PADDING_MODES}, received {padding_mode!r}"
            )
        padding_ltrb(padding, "Pad")  # checked here, where a wrong one was written
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def forward(self, img):
        return functional.pad(img, self.padding, self.fill, self.padding_mode)

    def __repr__(self) -> str:
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"


class RandomCrop(Transform):
    """A ``size`` window at a random place, after ``padding`` (as :class:`Pad`); with
    ``pad_if_needed`` an image smaller than ``size`` is padded up to it first."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = size_pair(size, "RandomCrop")
        if padding is not None:
            padding_ltrb(padding, "RandomCrop")
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    @staticmethod
    def get_params(img, output_size) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a random crop: top and left uniform over the
        places where the window fits, drawn from kernelab's default generator."""
        _, h, w = get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(
                f"RandomCrop: expected a crop size {(th, tw)} within the image, received an "
                f"image of size {(h, w)}"
            )
        if (h, w) == (th, tw):
            return 0, 0, h, w
        generator = default_generator()
        top = int(generator.integers(0, h - th + 1))
        left = int(generator.integers(0, w - tw + 1))
        return top, left, th, tw

    def forward(self, img):
        if self.padding is not None:
            img = functional.pad(img, self.padding, self.fill, self.padding_mode)
        _, height, width = get_dimensions(img)
        if self.pad_if_needed and width < self.size[1]:
            img = functional.pad(img, [self.size[1] - width, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and height < self.size[0]:
            img = functional.pad(img, [0, self.size[0] - height], self.fill, self.padding_mode)
        return functional.crop(img, *self.get_params(img, self.size))

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class CenterCrop(Transform):
    """The central ``size`` window (zero-padded first if the image is smaller)."""

    def __init__(self, size):
        self.size = size_pair(size, "CenterCrop")

    def forward(self, img):
        return functional.center_crop(img, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class RandomHorizontalFlip(Transform):
    """Mirror the image left to right with probability ``p``."""

    flip = staticmethod(functional.hflip)

    def __init__(self, p: float = 0.5):
        self.p = p

    def forward(self, img):
        return self.flip(img) if default_generator().random() < self.p else img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Turn the image upside down with probability ``p``."""

    flip = staticmethod(functional.vflip)


class Resize(Transform):
    """Resize to ``size``: (h, w), or an int the shorter side becomes (aspect ratio kept)."""

    def __init__(
        self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True
    ):
        if not isinstance(size, int) and not (isinstance(size, Sequence) and len(size) in (1, 2)):
            raise TypeError(f"Resize: expected size an int or (height, width), received {size!r}")
        self.size, self.interpolation = size, interpolation
        self.max_size, self.antialias = max_size, antialias

    def forward(self, img):
        return functional.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self) -> str:
        mode = getattr(self.interpolation, "value", self.interpolation)
        return f"Resize(size={self.size}, interpolation={mode})"


class Grayscale(Transform):
    """The image in grey, with ``num_output_channels`` 1 or 3."""

    def __init__(self, num_output_channels: int = 1):
        self.num_output_channels = num_output_channels

    def forward(self, img):
        return functional.rgb_to_grayscale(img, self.num_output_channels)

    def __repr__(self) -> str:
        return f"Grayscale(num_output_channels={self.num_output_channels})"


class Lambda(Transform):
    """A function of your own as a transform."""

    def __init__(self, lambd: Callable):
        if not callable(lambd):
            raise TypeError(f"Lambda: expected a callable, received {type(lambd).__name__}")
        self.lambd = lambd

    def forward(self, img):
        return self.lambd(img)


def __getattr__(name: str):
    raise not_in_vision(__name__, name, "torchvision.transforms")
