"""Helpers for tests that compare kernelab with a peer (PyTorch, ONNX Runtime): reproducible
inputs, the error relative to the output's scale, and the classic network written in PyTorch."""

import numpy as np


def data(shape, seed=0) -> np.ndarray:
    """float32 standard-normal values of ``shape``, the same for the same seed."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def rel_err(actual, expected) -> float:
    """max |a − e| / max |e|: the error relative to the output's scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def torch_classic():
    """The classic MNIST network (``arch.CLASSIC``) written with torch.nn."""
    import torch  # the callers skip without it

    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 7 * 7, 10),
    )
