"""What both engines run: the classic network, its training step, identical weights and batches.

Only the engine a function needs is imported inside it, so the memory child for kernelab never
loads PyTorch (see ``memory.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import numpy as np

LR, MOMENTUM = 0.01, 0.9
CLASSES = 10

Batch = tuple[np.ndarray, np.ndarray]  # images (N, 1, H, W) float32, labels (N,) int64


def make_batches(
    count: int, batch: int, size: int = 28, seed: int = 0, channels: int = 1
) -> list[Batch]:
    """MNIST-shaped random batches (CIFAR-shaped with 3 channels): pixels in [0, 1), labels
    0..9."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.random((batch, channels, size, size), dtype=np.float32),
            rng.integers(0, CLASSES, batch).astype(np.int64),
        )
        for _ in range(count)
    ]


def classic_kernelab(size: int = 28, seed: int = 0):
    """Conv(1→32, 5, same) → ReLU → MaxPool 2 → Conv(32→64, 5, same) → ReLU → MaxPool 2 →
    Flatten → Linear(64·(size/4)², 10); 3136 inputs to the dense layer at 28x28."""
    from kernelab import nn

    rng = np.random.default_rng(seed)
    side = size // 4
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding="same", generator=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding="same", generator=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side * side, CLASSES, generator=rng),
    )


def classic_torch(size: int = 28):
    """The same network in PyTorch (layer indices match, so state_dict keys match)."""
    from torch import nn

    side = size // 4
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side * side, CLASSES),
    )


def copy_weights(kernelab_module, torch_module) -> None:
    """Load kernelab's parameters into the PyTorch module, so both start identical."""
    import torch

    state = {
        key: torch.from_numpy(np.array(value.array, copy=True))
        for key, value in kernelab_module.state_dict().items()
    }
    torch_module.load_state_dict(state)


def kernelab_sgd(params: Iterable, lr: float = LR, momentum: float = MOMENTUM):
    from kernelab.optim import SGD

    return SGD(params, lr=lr, momentum=momentum)


def kernelab_train_step(model, batches: list[Batch], adam_lr: float = 0.0) -> Callable[[], None]:
    """One optimiser step per call (zero_grad, forward, cross-entropy, backward, step),
    cycling through ``batches``: SGD with momentum, or Adam when ``adam_lr`` is given."""
    import kernelab as kl
    from kernelab.nn import functional as F

    if adam_lr:
        optimizer = kl.optim.Adam(model.parameters(), lr=adam_lr)
    else:
        optimizer = kernelab_sgd(model.parameters())
    data = itertools.cycle([(kl.from_numpy(x), kl.from_numpy(y)) for x, y in batches])
    model.train()

    def step() -> None:
        x, y = next(data)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def torch_train_step(model, batches: list[Batch], adam_lr: float = 0.0) -> Callable[[], None]:
    import torch
    from torch.nn import functional as F

    if adam_lr:
        optimizer = torch.optim.Adam(model.parameters(), lr=adam_lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    data = itertools.cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches])
    model.train()

    def step() -> None:
        x, y = next(data)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def kernelab_infer_step(model, batches: list[Batch]) -> Callable[[], None]:
    import kernelab as kl

    data = itertools.cycle([kl.from_numpy(x) for x, _ in batches])
    model.eval()

    def step() -> None:
        with kl.inference_mode():
            model(next(data))

    return step


def torch_infer_step(model, batches: list[Batch]) -> Callable[[], None]:
    import torch

    data = itertools.cycle([torch.from_numpy(x) for x, _ in batches])
    model.eval()

    def step() -> None:
        with torch.inference_mode():
            model(next(data))

    return step


def classic_flops(size: int = 28, training: bool = True) -> float:
    """Multiply-adds ×2 per image of the convolutions and the dense layer.

    Forward: conv1 2·32·s²·25, conv2 2·64·(s/2)²·32·25, dense 2·64·(s/4)²·10. Training adds a
    kernel gradient (same cost) for each, and an input gradient for all but the first conv.
    """
    conv1 = 2 * 32 * size * size * 25
    conv2 = 2 * 64 * (size // 2) ** 2 * 32 * 25
    dense = 2 * 64 * (size // 4) ** 2 * CLASSES
    if not training:
        return float(conv1 + conv2 + dense)
    return float(2 * conv1 + 3 * conv2 + 3 * dense)
