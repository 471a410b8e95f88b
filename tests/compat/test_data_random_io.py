"""What cannot match PyTorch number for number (random draws, shuffling, dropout masks, file
formats) tested on its own terms: the same kinds, shapes, statistics and guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kernelab as kl
from kernelab.core import rng
from kernelab.core.serialization import CheckpointError
from kernelab.utils.data import DataLoader, TensorDataset, default_collate, random_split

# ---- random tensors and generators


@pytest.mark.parametrize(
    ("make", "dtype"),
    [
        (lambda T, g: T.rand(2, 3, generator=g), "float32"),
        (lambda T, g: T.randn((4,), generator=g, dtype=T.float64), "float64"),
        (lambda T, g: T.randint(0, 5, (3, 2), generator=g), "int64"),
        (lambda T, g: T.randint(7, (5,), generator=g), "int64"),
        (lambda T, g: T.randperm(6, generator=g), "int64"),
        (
            lambda T, g: T.rand_like(T.ones(2, 2), generator=g) if T is kl else T.rand(2, 2),
            "float32",
        ),
        (lambda T, g: T.randn_like(T.ones(3)), "float32"),
        (lambda T, g: T.randint_like(T.ones(3), 4), "float32"),
    ],
)
def test_random_tensors_have_pytorch_s_shapes_and_dtypes(make, dtype):
    theirs = make(torch, torch.Generator().manual_seed(0))
    ours = make(kl, kl.Generator().manual_seed(0))
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == theirs.numpy().dtype == dtype


def test_random_ranges_and_statistics():
    g = kl.Generator().manual_seed(1)
    u, n = kl.rand(20000, generator=g), kl.randn(20000, generator=g)
    assert u.min().item() >= 0 and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.01
    assert abs(n.mean().item()) < 0.03 and abs(n.std().item() - 1) < 0.03
    r = kl.randint(3, 7, (5000,), generator=g)
    assert set(np.unique(r.array)) == {3, 4, 5, 6}
    assert sorted(kl.randperm(10, generator=g).tolist()) == list(range(10))


def test_manual_seed_makes_the_default_draws_repeat():
    kl.manual_seed(7)
    first = (kl.rand(3), kl.randn(2), kl.randint(0, 9, (4,)), kl.nn.Linear(3, 2).weight.clone())
    kl.manual_seed(7)
    again = (kl.rand(3), kl.randn(2), kl.randint(0, 9, (4,)), kl.nn.Linear(3, 2).weight.clone())
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_generator_follows_pytorch_s_interface():
    g = kl.Generator()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert rng.as_generator(g) is g
    a = kl.randn(3, generator=kl.Generator().manual_seed(5))
    b = kl.randn(3, generator=kl.Generator().manual_seed(5))
    np.testing.assert_array_equal(a.array, b.array)


# ---- the DataLoader


def test_shuffled_epochs_visit_every_sample_once_and_repeat_with_the_seed():
    dataset = TensorDataset(kl.arange(23.0), kl.arange(23) % 3)

    def epochs(seed):
        loader = DataLoader(
            dataset, batch_size=5, shuffle=True, generator=kl.Generator().manual_seed(seed)
        )
        return [[x.tolist() for x, _ in loader] for _ in range(2)]

    first = epochs(3)
    for epoch in first:
        assert sorted(v for batch in epoch for v in batch) == list(range(23))
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]
    assert first[0] != first[1] and first == epochs(3) and first != epochs(4)


def test_loader_batches_like_pytorch_s():
    x, y = np.arange(20.0, dtype=np.float32).reshape(10, 2), np.arange(10)
    ours = DataLoader(
        TensorDataset(kl.from_numpy(x), kl.from_numpy(y)), batch_size=4, drop_last=True
    )
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=4,
        drop_last=True,
    )
    assert len(ours) == len(theirs) == 2
    for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
        assert xa.dtype == xb.numpy().dtype and ya.dtype == yb.numpy().dtype
        np.testing.assert_array_equal(xa.array, xb.numpy())
        np.testing.assert_array_equal(ya.array, yb.numpy())


def test_default_collate_stacks_tensors_arrays_and_numbers():
    samples = [(kl.ones(2) * i, np.full(3, i, np.float32), i, float(i), True) for i in range(4)]
    images, arrays, ints, floats, flags = default_collate(samples)
    assert images.shape == (4, 2) and arrays.shape == (4, 3) and arrays.dtype == kl.float32
    assert ints.dtype == kl.int64 and ints.tolist() == [0, 1, 2, 3]
    assert floats.dtype == kl.float32 and flags.dtype == kl.bool


def test_a_dataset_subclass_works_as_in_pytorch():
    class Squares(kl.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return kl.tensor([float(i)]), i * i

    batches = list(DataLoader(Squares(), batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 4, 9], [16, 25]]
    assert batches[0][0].shape == (4, 1)


def test_random_split_takes_a_generator():
    parts = random_split(range(10), [0.7, 0.3], generator=kl.Generator().manual_seed(0))
    again = random_split(range(10), [7, 3], generator=kl.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    assert [list(p) for p in parts] == [list(p) for p in again]


# ---- dropout: its own statistics (the masks differ from PyTorch's)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    kl.manual_seed(0)
    layer = kl.nn.Dropout(p)
    x = kl.ones(200, 100, requires_grad=True)
    y = layer(x)
    kept = y.array != 0
    assert abs(1 - kept.mean() - p) < 0.01
    np.testing.assert_allclose(y.array[kept], 1 / (1 - p), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.array)  # the gradient goes through the same mask
    layer.eval()
    assert layer(x) is x


def test_dropout2d_drops_whole_feature_maps():
    kl.manual_seed(0)
    y = kl.nn.Dropout2d(0.5)(kl.ones(50, 40, 3, 3))
    per_map = y.array.reshape(50, 40, 9)
    assert np.all((per_map == 0).all(axis=2) | (per_map == 2).all(axis=2))
    assert abs((per_map[..., 0] == 0).mean() - 0.5) < 0.05


# ---- save and load, without pickle


def test_state_dicts_optimiser_states_and_plain_dicts_round_trip(tmp_path):
    kl.manual_seed(0)
    model = kl.nn.Sequential(kl.nn.Linear(3, 4), kl.nn.BatchNorm1d(4), kl.nn.Linear(4, 2))
    optimizer = kl.optim.Adam(model.parameters(), lr=0.01)
    x = kl.randn(8, 3)

    def step():
        optimizer.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss

    step()
    loss = step()
    checkpoint = {
        "epoch": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loss": loss,
        "history": [0.5, 0.25],
        "name": "run",
    }
    kl.save(checkpoint, tmp_path / "checkpoint.pt")
    expected = [step().item() for _ in range(3)]

    loaded = kl.load(tmp_path / "checkpoint.pt", map_location=kl.device("cpu"), weights_only=True)
    assert loaded["epoch"] == 1 and loaded["history"] == [0.5, 0.25] and loaded["name"] == "run"
    assert isinstance(loaded["loss"], kl.Tensor)
    model.load_state_dict(loaded["model"])
    optimizer.load_state_dict(loaded["optimizer"])
    assert [step().item() for _ in range(3)] == expected  # resumed exactly


def test_load_refuses_pytorch_s_pickles_without_unpickling(tmp_path):
    for legacy in (False, True):
        path = tmp_path / f"torch_{legacy}.pt"
        torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(CheckpointError, match="pickle file.*does not unpickle"):
            kl.load(path)
    (tmp_path / "noise.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a kernelab checkpoint"):
        kl.load(tmp_path / "noise.pt")


def test_save_refuses_what_it_cannot_store_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot save a Linear"):
        kl.save(kl.nn.Linear(2, 2), tmp_path / "model.pt")
