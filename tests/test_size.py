"""``kernelab.Size`` behaves as ``torch.Size``, checked against PyTorch run here."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import kernelab as kl

SHAPES = st.lists(st.integers(0, 7), max_size=5).map(tuple)


def as_text(value) -> str:
    return repr(value).replace("torch.", "kernelab.")


@given(SHAPES)
def test_shape_and_size_are_a_size_as_in_pytorch(shape):
    ours, theirs = kl.zeros(shape), torch.zeros(shape)
    for a, b in ((ours.shape, theirs.shape), (ours.size(), theirs.size())):
        assert type(a) is kl.Size and a == b == shape and hash(a) == hash(shape)
        assert repr(a) == str(a) == f"{a}" == as_text(b)
        assert a.numel() == b.numel() == ours.numel()
    for dim in range(-len(shape), len(shape)):
        assert type(ours.size(dim)) is int and ours.size(dim) == theirs.size(dim)


@given(SHAPES, SHAPES, st.integers(0, 3), st.integers(-6, 6), st.integers(-6, 6))
def test_what_a_size_gives_back(shape, other, times, start, stop):
    ours, theirs = kl.Size(shape), torch.Size(shape)
    results = [
        (ours[start:stop], theirs[start:stop]),
        (ours + other, theirs + other),
        (other + ours, other + theirs),
        (ours + kl.Size(other), theirs + torch.Size(other)),
        (ours * times, theirs * times),
        (times * ours, times * theirs),
    ]
    for a, b in results:
        assert as_text(a) == as_text(b) and a == b
    if shape:
        assert type(ours[0]) is int and ours[0] == theirs[0] and ours[-1] == theirs[-1]


def test_a_size_is_made_of_ints():
    assert kl.Size([np.int64(3), 2]) == torch.Size([np.int64(3), 2]) == (3, 2)
    assert repr(kl.Size()) == "kernelab.Size([])" and kl.Size().numel() == 1
    assert kl.Size(range(3)) == (0, 1, 2)
    for bad in ([1.5], ["a"]):
        with pytest.raises(TypeError, match=r"takes an iterable of 'int' \(item 0 is"):
            torch.Size(bad)
        with pytest.raises(TypeError, match=r"takes an iterable of 'int' \(item 0 is"):
            kl.Size(bad)


def test_a_size_pickles_and_reads_as_a_tuple():
    size = kl.zeros(6, 1, 5, 5).shape
    copy = pickle.loads(pickle.dumps(size))
    assert type(copy) is kl.Size and copy == size
    assert isinstance(size, tuple) and np.zeros(size).shape == (6, 1, 5, 5)
    assert repr(size) == "kernelab.Size([6, 1, 5, 5])"
