"""What a training script uses of torchvision (``datasets.MNIST``, ``transforms.Compose``,
``ToTensor``, ``Normalize``), written here on NumPy and torch for the PyTorch side of the
two-engine tests: torchvision is not a test dependency. Each follows torchvision's code: the
IDX files read from ``root/MNIST/raw``, a sample as a PIL image of mode "L" and an int label,
ToTensor as float32 (C, H, W) divided by 255, Normalize as ``(x - mean) / std`` in float32.
"""

import os
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image


def read_idx(path: str) -> np.ndarray:
    """An uncompressed IDX file of unsigned bytes: magic (0, 0, 8, ndim), big-endian sizes."""
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:3] == b"\x00\x00\x08", f"{path}: not an IDX file of unsigned bytes"
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, offset=4))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


class MNIST:
    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        assert not download, "the stand-in reads files that are there"
        raw = os.path.join(root, "MNIST", "raw")
        prefix = "train" if train else "t10k"
        self.data = torch.from_numpy(read_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte")))
        labels = read_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"))
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        image = Image.fromarray(self.data[index].numpy(), mode="L")
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class ToTensor:
    def __call__(self, pic):
        array = np.array(pic, np.uint8, copy=True)
        array = array.reshape(array.shape[0], array.shape[1], -1)  # (H, W, C)
        return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, tensor):
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.sub(mean).div(std)


datasets = SimpleNamespace(MNIST=MNIST)
transforms = SimpleNamespace(Compose=Compose, ToTensor=ToTensor, Normalize=Normalize)
