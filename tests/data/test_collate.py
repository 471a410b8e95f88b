"""default_collate against torch.utils.data.default_collate."""

from collections import namedtuple

import numpy as np
import pytest

from kernelab import Tensor, tensor
from kernelab.data import default_collate

Pair = namedtuple("Pair", "image label")


def as_numpy(batch):
    """Either library's batch as nested NumPy arrays and plain containers."""
    if hasattr(batch, "numpy"):
        return batch.numpy() if not isinstance(batch, Tensor) else batch.array
    if isinstance(batch, dict):
        return {k: as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return [as_numpy(v) for v in batch]
    return batch


def assert_same(ours, theirs):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys()
        for key in theirs:
            assert_same(ours[key], theirs[key])
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b)
    else:
        assert isinstance(ours, np.ndarray) == isinstance(theirs, np.ndarray)
        if isinstance(theirs, np.ndarray):
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


SAMPLES = {
    "arrays": [np.arange(6, dtype=np.uint8).reshape(2, 3) + i for i in range(4)],
    "ints": [3, 1, 4, 1],
    "bools": [True, False, True, True],
    "numpy scalars": [np.float32(0.5), np.float32(1.5)],
    "tuples": [(np.full((2, 2), i, np.float32), i) for i in range(3)],
    "dicts": [{"x": np.array([i, i], np.int16), "y": i} for i in range(3)],
    "nested": [{"pair": (np.ones(2) * i, [i, i + 1])} for i in range(3)],
    "strings": ["a", "bc"],
}


@pytest.mark.parametrize("name", SAMPLES)
def test_matches_torch(name):
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    batch = SAMPLES[name]
    assert_same(as_numpy(default_collate(batch)), as_numpy(torch_collate(batch)))


def test_floats_are_float32_not_float64():
    out = default_collate([0.5, 1.0, 2])
    assert out.dtype == np.float32 and out.array.tolist() == [0.5, 1.0, 2.0]


def test_containers_keep_their_type():
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    batches = [
        [Pair(np.zeros(2), 1), Pair(np.ones(2), 2)],
        [(1, 2), (3, 4)],
        [[1, 2], [3, 4]],
    ]
    pair, pairs, lists = (default_collate(batch) for batch in batches)
    assert isinstance(pair, Pair) and pair.label.dtype == np.int64
    assert isinstance(pairs, tuple) and isinstance(lists, list)
    for ours, batch in zip((pair, pairs, lists), batches, strict=True):  # torch's values
        assert_same(as_numpy(ours), as_numpy(torch_collate(batch)))


def test_kernelab_tensors_are_stacked():
    out = default_collate([tensor([1.0, 2.0]), tensor([3.0, 4.0])])
    assert isinstance(out, Tensor) and out.dtype == np.float32
    np.testing.assert_array_equal(out.array, [[1.0, 2.0], [3.0, 4.0]])


def test_errors_say_what_differed():
    with pytest.raises(ValueError, match=r"one shape, received shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match=r"same number of fields, received lengths \[1, 2\]"):
        default_collate([(1,), (1, 2)])
    with pytest.raises(TypeError, match="received NoneType"):
        default_collate([None, None])
    with pytest.raises(ValueError, match="empty batch"):
        default_collate([])
