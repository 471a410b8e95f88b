"""The walk-through every CNN student asks about: what shape comes out of each layer, what a
kernel is, and that plain gradient descent makes the loss fall."""

import numpy as np

import kernelab as kl
import kernelab.functional as F
from kernelab import nn


def test_shapes_through_the_classic_mnist_net():
    batch = kl.Tensor(np.random.default_rng(0).random((8, 1, 28, 28), np.float32))

    conv1 = nn.Conv2d(1, 32, 5, padding="same")
    h = conv1(batch)
    assert h.shape == (8, 32, 28, 28)  # "same": 28x28 stays 28x28, one map per kernel
    assert conv1.weight.shape == (32, 1, 5, 5)  # 32 kernels, each 1 channel deep

    h = nn.MaxPool2d(2)(nn.ReLU()(h))
    assert h.shape == (8, 32, 14, 14)  # 2x2 windows, stride 2: half the size

    conv2 = nn.Conv2d(32, 64, 5)
    assert conv2.weight.shape == (64, 32, 5, 5)  # 64 kernels, each as deep as its input (32)
    assert conv2.bias.shape == (64,)
    assert conv2(h).shape == (8, 64, 10, 10)  # no padding: 14 − 5 + 1

    h = nn.MaxPool2d(2)(nn.ReLU()(nn.Conv2d(32, 64, 5, padding="same")(h)))
    assert h.shape == (8, 64, 7, 7)
    h = nn.Flatten()(h)
    assert h.shape == (8, 64 * 7 * 7) == (8, 3136)
    assert nn.Linear(3136, 10)(h).shape == (8, 10)


def test_loss_falls_with_hand_written_sgd():
    rng = np.random.default_rng(0)
    # A fixed synthetic batch: the class says in which quadrant a bright blob sits.
    n, size = 32, 10
    labels = rng.integers(0, 4, n)
    x = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    for i, label in enumerate(labels):
        top, left = (label // 2) * 5, (label % 2) * 5
        x[i, 0, top + 1 : top + 4, left + 1 : left + 4] += 1.0
    images, target = kl.Tensor(x), kl.Tensor(labels)

    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, generator=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, generator=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 5 * 5, 4, generator=3),
    )
    lr = 0.1
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(images), target)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with kl.no_grad():
            for p in model.parameters():
                p.data -= lr * p.grad
    assert losses[-1] < 0.2 * losses[0], losses
    assert all(np.isfinite(losses))
