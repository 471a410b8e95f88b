"""The IDX reader, on files written here from the format's definition."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from mnist_files import idx_bytes

from kernelab.data import read_idx, read_idx_images, read_idx_labels

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_images_and_labels(tmp_path, images, compress):
    labels = np.arange(7, dtype=np.uint8)
    for name, array in (("images", images), ("labels", labels)):
        data = idx_bytes(array)
        (tmp_path / name).write_bytes(gzip.compress(data) if compress else data)
    got_images, got_labels = (
        read_idx_images(tmp_path / "images"),
        read_idx_labels(tmp_path / "labels"),
    )
    assert got_images.dtype == np.uint8 and got_images.shape == (7, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] = 1  # the result is the caller's to modify


def test_compression_is_told_by_content_not_name(tmp_path, images):
    (tmp_path / "raw.gz").write_bytes(idx_bytes(images))
    (tmp_path / "compressed").write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed"), images)


@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)],
)
def test_other_types_are_big_endian_on_disk(tmp_path, type_code, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 12).astype(dtype)
    (tmp_path / "f").write_bytes(idx_bytes(array, type_code))
    got = read_idx(tmp_path / "f")
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "head", [b"\x01\x02\x08\x03", b"\x00\x00\x07\x03", b"\x00\x00\x08\x00", b"PK\x03\x04"]
)
def test_bad_magic_names_file_and_expected_values(tmp_path, head):
    path = tmp_path / "bad"
    path.write_bytes(head + b"\0" * 64)
    with pytest.raises(ValueError, match="2051") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert f"{int.from_bytes(head, 'big')}" in str(info.value)


def test_labels_file_where_images_are_expected(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(
        ValueError,
        match=r"expected a 3-D uint8 \(magic 2051\).*found 1-D uint8 "
        r"\(magic 2049\)",
    ):
        read_idx_images(path)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_payload(tmp_path, images, compress):
    data = idx_bytes(images)[:-100]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(ValueError, match=r"truncated.*7x28x28.*5488 bytes.*found only 5388"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path, images):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(images) + b"\0\0\0")
    with pytest.raises(ValueError, match="3 more bytes"):
        read_idx(path)


def test_truncated_header_and_empty_file(tmp_path):
    (tmp_path / "header").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x07")
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(tmp_path / "header")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="found a file of 0 bytes"):
        read_idx(tmp_path / "empty")


def test_cut_gzip_stream(tmp_path, images):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-30])
    with pytest.raises(ValueError, match=f"{path}.*gzip"):
        read_idx(path)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no shared MNIST files on this machine")
def test_real_mnist_label_counts():
    """The counts published in shared/data/README.md."""
    train = read_idx_labels(SHARED_MNIST / "train-labels-idx1-ubyte.gz")
    test = read_idx_labels(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert np.bincount(train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    images = read_idx_images(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
