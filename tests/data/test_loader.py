"""Datasets, random_split and the DataLoader, with torch.utils.data as the reference."""

import json
import math

import numpy as np
import pytest

import kernelab as kl
from kernelab import Tensor
from kernelab.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split


def make_dataset(n=10):
    images = np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2)
    return TensorDataset(images, np.arange(n, dtype=np.int64))


def epoch_labels(loader):
    return [int(i) for _, labels in loader for i in labels.array]


class CountingDataset(Dataset):
    """Samples as dicts; counts __getitem__ calls."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __getitem__(self, index):
        self.calls += 1
        return {"x": np.full(3, index, np.float32), "y": index}

    def __len__(self):
        return self.n


def test_tensor_dataset():
    images, labels = np.zeros((5, 3)), np.arange(5)
    dataset = TensorDataset(Tensor(images), labels)
    x, y = dataset[2]
    assert isinstance(x, Tensor) and x.shape == (3,) and int(y) == 2 and len(dataset) == 5
    assert dataset.tensors[1].array is labels  # no copy
    with pytest.raises(
        ValueError, match=r"same first dimension, received shapes \[\(5, 3\), \(4,\)\]"
    ):
        TensorDataset(images, np.arange(4))


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last"),
    [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True), (7, 1, False)],
)
def test_batching_matches_torch(n, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    ours = DataLoader(make_dataset(n), batch_size=batch_size, drop_last=drop_last)
    data = make_dataset(n).tensors
    reference = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*(torch.from_numpy(t.array) for t in data)),
        batch_size=batch_size,
        drop_last=drop_last,
    )
    assert len(ours) == len(reference)
    for (x, y), (tx, ty) in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(x.array, tx.numpy())
        np.testing.assert_array_equal(y.array, ty.numpy())
        assert x.dtype == tx.numpy().dtype and y.dtype == np.int64


def test_shuffle_visits_every_sample_once_per_epoch():
    loader = DataLoader(make_dataset(50), batch_size=8, shuffle=True, generator=3)
    epochs = [epoch_labels(loader) for _ in range(3)]
    for labels in epochs:
        assert sorted(labels) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2] and loader.epoch == 3


def test_order_is_the_documented_function_of_seed_and_epoch():
    loader = DataLoader(make_dataset(20), batch_size=6, shuffle=True, generator=11)
    assert loader.seed == 11
    for epoch in range(2):
        expected = np.random.default_rng([11, epoch]).permutation(20)
        assert epoch_labels(loader) == expected.tolist()


def test_seeded_shuffle_is_reproducible():
    def orders(generator):
        loader = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=generator)
        return [epoch_labels(loader) for _ in range(2)]

    assert orders(5) == orders(5) != orders(6)
    assert orders(np.random.default_rng(1)) == orders(np.random.default_rng(1))
    kl.manual_seed(0)
    first = orders(None)
    kl.manual_seed(0)
    assert orders(None) == first


def test_set_epoch_replays_an_epoch():
    loader = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=2)
    seen = [epoch_labels(loader) for _ in range(3)]
    loader.set_epoch(1)
    assert epoch_labels(loader) == seen[1] and loader.epoch == 2


def test_resume_mid_epoch_from_state_dict():
    run = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=9)
    epoch_labels(run)  # epoch 0
    iterator = iter(run)
    first_part = [next(iterator)[1].array.tolist() for _ in range(3)]
    state = json.loads(json.dumps(run.state_dict()))  # a checkpoint is plain JSON
    assert state["epoch"] == 1 and state["batches_yielded"] == 3
    rest = [labels.array.tolist() for _, labels in iterator]
    next_epoch = epoch_labels(run)

    resumed = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=12345)
    resumed.load_state_dict(state)
    assert [labels.array.tolist() for _, labels in resumed] == rest
    assert epoch_labels(resumed) == next_epoch
    assert sorted(sum(first_part + rest, [])) == list(range(30))


def test_state_after_last_batch_is_the_next_epoch():
    loader = DataLoader(make_dataset(8), batch_size=4, shuffle=True, generator=0)
    iterator = iter(loader)
    next(iterator), next(iterator)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batches_yielded"] == 0


def test_state_for_another_loader_is_refused():
    state = DataLoader(make_dataset(8), batch_size=4, shuffle=True, generator=0).state_dict()
    with pytest.raises(
        ValueError, match="saved for 8 samples, batch_size=4.*has 8 samples, batch_size=2"
    ):
        DataLoader(make_dataset(8), batch_size=2, shuffle=True).load_state_dict(state)


def test_abandoned_pass_starts_a_fresh_epoch():
    loader = DataLoader(make_dataset(12), batch_size=4, shuffle=True, generator=4)
    for _ in loader:
        break
    assert sorted(epoch_labels(loader)) == list(range(12)) and loader.epoch == 2


def test_fast_path_equals_sample_by_sample():
    dataset = make_dataset(23)
    fast = DataLoader(dataset, batch_size=5, shuffle=True, generator=1)
    slow = DataLoader(dataset, batch_size=5, shuffle=True, generator=1, collate_fn=default_collate)
    for (x, y), (sx, sy) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(x.array, sx.array)
        np.testing.assert_array_equal(y.array, sy.array)


def test_fast_path_does_not_touch_samples():
    class NoItems(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("fetched one sample at a time")

    loader = DataLoader(NoItems(np.zeros((100, 3)), np.arange(100)), batch_size=32)
    assert [len(y) for _, y in loader] == [32, 32, 32, 4]
    subset_loader = DataLoader(
        Subset(NoItems(np.zeros((10, 3)), np.arange(10)), [9, 2]), batch_size=2
    )
    assert [y.array.tolist() for _, y in subset_loader] == [[9, 2]]


def test_generic_dataset_and_custom_collate():
    dataset = CountingDataset(7)
    batches = list(DataLoader(dataset, batch_size=3, num_workers=2))
    assert dataset.calls == 7 and batches[2]["x"].shape == (1, 3)
    assert batches[0]["y"].array.tolist() == [0, 1, 2] and batches[0]["y"].dtype == np.int64
    custom = DataLoader(dataset, batch_size=3, collate_fn=lambda samples: len(samples))
    assert list(custom) == [3, 3, 1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size >= 1, received 0"):
        DataLoader(make_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="int batch_size, received 2.5"):
        DataLoader(make_dataset(), batch_size=2.5)
    with pytest.raises(ValueError, match="num_workers >= 0"):
        DataLoader(make_dataset(), num_workers=-1)


@pytest.mark.parametrize(
    ("n", "lengths"),
    [
        (10, [0.3, 0.7]),
        (11, [0.5, 0.5]),
        (30, [0.1, 0.3, 0.6]),
        (7, [1 / 3, 1 / 3, 1 / 3]),
        (10, [3, 7]),
        (5, [1.0]),
    ],
)
def test_random_split_lengths_match_torch(n, lengths):
    torch = pytest.importorskip("torch")
    ours = random_split(make_dataset(n), lengths, generator=0)
    theirs = torch.utils.data.random_split(range(n), lengths, torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    indices = np.concatenate([s.indices for s in ours])
    assert sorted(indices.tolist()) == list(range(n))  # disjoint, and covering
    for subset in ours:
        assert all(int(subset[i][1]) == subset.indices[i] for i in range(len(subset)))


def test_random_split_is_seeded_and_checked():
    first = random_split(make_dataset(20), [0.5, 0.5], generator=3)
    again = random_split(make_dataset(20), [0.5, 0.5], generator=3)
    assert first[0].indices.tolist() == again[0].indices.tolist()
    with pytest.raises(ValueError, match=r"summing to len\(dataset\) = 20.*received \[5, 5\]"):
        random_split(make_dataset(20), [5, 5])
    with pytest.warns(UserWarning, match="split 1 is empty"):
        random_split(make_dataset(2), [1.0, 0.0])


def test_mnist_sized_epoch_is_fast():
    """60,000 MNIST-shaped images per epoch: one fancy-indexing gather per batch."""
    images = np.zeros((60000, 28, 28), np.uint8)
    loader = DataLoader(
        TensorDataset(images, np.zeros(60000, np.int64)), 64, shuffle=True, generator=0
    )
    count = sum(len(y) for _, y in loader)
    assert count == 60000 and len(loader) == math.ceil(60000 / 64)
