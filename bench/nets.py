"""The larger networks of the benchmark, written once for both engines.

kernelab's ``nn`` has PyTorch's API, so each network is a function of the engine's ``nn``
module (``kernelab.nn`` or ``torch.nn``). Layer names match, hence ``state_dict`` keys match and
``models.copy_weights`` makes the two start identical.
"""

from __future__ import annotations

import functools

from .models import CLASSES

TUTORIAL_LR = 1e-3  # the tutorial's Adam learning rate


def tutorial(nn, size: int = 28):
    """The CNN of the common PyTorch MNIST tutorial (yunjey/pytorch-tutorial, "convolutional
    neural network"): two blocks of Conv2d 5x5 padding 2 → BatchNorm2d → ReLU → MaxPool2d(2),
    1→16→32 channels, then Linear(32·7·7 → 10) at 28x28; trained with Adam at batch 100."""
    side = size // 4
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * side * side, CLASSES),
    )


@functools.cache
def residual_block(nn):
    """The basic residual block class of the engine ``nn`` (one class per engine)."""

    class BasicBlock(nn.Module):
        """conv3x3 (stride s) → BN → ReLU → conv3x3 → BN, plus the shortcut, then ReLU.

        The shortcut is the identity, or a 1x1 stride-s convolution and BN when the shape
        changes (ResNet's option B)."""

        def __init__(self, c_in: int, c_out: int, stride: int = 1):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.shortcut = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    return BasicBlock


def resnet8(nn, width: int = 16):
    """A CIFAR ResNet with one basic block per stage (ResNet-20's layout, 8 weight layers):
    stem conv3x3 3→w, blocks w→w, w→2w (stride 2), 2w→4w (stride 2), global average pooling,
    Linear(4w → 10). Input 3x32x32."""
    block = residual_block(nn)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        block(width, width),
        block(width, 2 * width, stride=2),
        block(2 * width, 4 * width, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, CLASSES),
    )


def separable(nn, c_in: int, c_out: int, stride: int = 1):
    """MobileNet's depthwise-separable block: depthwise 3x3 (groups = C) → BN → ReLU →
    pointwise 1x1 → BN → ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def mobile(nn, width: int = 32):
    """A small MobileNet for 3x32x32 inputs: stem conv3x3 3→w, separable blocks w→2w,
    2w→4w (stride 2), 4w→8w (stride 2), global average pooling, Linear(8w → 10)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        separable(nn, width, 2 * width),
        separable(nn, 2 * width, 4 * width, stride=2),
        separable(nn, 4 * width, 8 * width, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * width, CLASSES),
    )


def dense_head(nn, size: int = 32, width: int = 32):
    """A small VGG-style CNN for 3x32x32 inputs with a wide dense layer (Keras's CIFAR-10
    example, with one convolution per block): two blocks of conv3x3 (padding 1) → ReLU →
    MaxPool2d(2), 3→w→2w channels, then Linear(2w·8·8 → 512) → ReLU → Linear(512 → 10) at
    32x32. Its dense layer's products are big enough to share between threads."""
    side = size // 4
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * side * side, 512),
        nn.ReLU(),
        nn.Linear(512, CLASSES),
    )


def product_flops(torch_model, image_shape: tuple[int, ...], training: bool) -> float:
    """Floating-point operations per image of the network's convolutions and dense layers
    (multiply-add = 2), counted from the output shapes PyTorch produces.

    Training adds a weight gradient (the forward's cost) for each layer and an input gradient
    for every layer but the first.
    """
    import torch

    costs: list[float] = []

    def count(module, inputs, output) -> None:
        if isinstance(module, torch.nn.Conv2d):
            k_h, k_w = module.kernel_size
            fan_in = module.in_channels // module.groups * k_h * k_w
            costs.append(2.0 * output.numel() * fan_in)
        elif isinstance(module, torch.nn.Linear):
            costs.append(2.0 * output.numel() * module.in_features)

    layers = [m for m in torch_model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    was_training = torch_model.training
    torch_model.eval()
    try:
        with torch.no_grad():
            torch_model(torch.zeros((1, *image_shape)))
    finally:
        for hook in hooks:
            hook.remove()
        torch_model.train(was_training)
    if not training:
        return sum(costs)
    return 3 * sum(costs) - (costs[0] if costs else 0.0)
