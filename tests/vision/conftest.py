"""Fixtures for the vision tests: an empty kernelab cache, and CIFAR files written in each of
the dataset's published layouts from their definitions (not with kernelab's readers)."""

import pickle

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """An empty cache, also the default one, so no test reads or writes ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KERNELAB_DATA", str(cache))
    return cache


def cifar_arrays(n, classes, seed):
    """``(images (N, 3, 32, 32) uint8, labels (N,) int)`` of random pixels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return images, rng.integers(0, classes, n)


@pytest.fixture
def cifar10_python(tmp_path):
    """torchvision's ``root/cifar-10-batches-py``: five training batches of 3 images and a
    test batch of 4, pickled dicts as the dataset's page describes; returns root and arrays."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    arrays = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels = cifar_arrays(4 if name == "test_batch" else 3, 10, seed=i)
        batch = {
            "batch_label": name,
            "data": images.reshape(len(images), -1),
            "labels": list(map(int, labels)),
            "filenames": [f"{name}_{j}.png" for j in range(len(images))],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2 if i % 2 else 4))
        arrays[name] = images, labels
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    meta = {"num_cases_per_batch": 3, "label_names": names, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tmp_path, arrays


@pytest.fixture
def cifar10_binary(tmp_path):
    """``root/cifar-10-batches-bin``: records of a label byte and 3,072 pixel bytes."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    arrays = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels = cifar_arrays(2, 10, seed=10 + i)
        records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(2, -1)], 1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
        arrays[name] = images, labels
    return tmp_path, arrays
