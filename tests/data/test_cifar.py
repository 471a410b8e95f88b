"""CIFAR-10's binary format, on small files in that format written here."""

import hashlib
import io
import tarfile

import numpy as np
import pytest

import kernelab.data.cifar as cifar
from kernelab.data import load_cifar10, load_dataset, read_cifar10

NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def make_batches(seed=0, records=(3, 2, 4, 1, 2, 5)):
    """Bytes of each .bin file: per record a label byte and 3072 random pixel bytes."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name, n in zip(NAMES, records, strict=True):
        batches[name] = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        batches[name][:, 0] = rng.integers(0, 10, n)
    return batches


def decode(records):
    """The format's definition, one pixel at a time: plane c, row y, column x."""
    images = np.zeros((len(records), 3, 32, 32), np.uint8)
    for i, record in enumerate(records):
        for c in range(3):
            for y in range(32):
                for x in range(32):
                    images[i, c, y, x] = record[1 + 1024 * c + 32 * y + x]
    return images, records[:, 0].astype(np.int64)


def check(splits, batches):
    train = np.concatenate([batches[n] for n in NAMES[:5]])
    for (images, labels), records in (
        ((splits.train_images, splits.train_labels), train),
        ((splits.test_images, splits.test_labels), batches["test_batch.bin"]),
    ):
        want_images, want_labels = decode(records)
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)
        assert images.dtype == np.uint8 and labels.dtype == np.int64


def write_archive(path, batches, prefix="cifar-10-batches-bin/"):
    with tarfile.open(path, "w:gz") as tar:
        for name, records in batches.items():
            data = records.tobytes()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def batches():
    return make_batches()


def test_reads_archive(tmp_path, batches):
    write_archive(tmp_path / "cifar-10-binary.tar.gz", batches)
    splits = read_cifar10(tmp_path / "cifar-10-binary.tar.gz")
    check(splits, batches)
    assert splits.classes[0] == "airplane" and len(splits.train_labels) == 12


@pytest.mark.parametrize("subfolder", ["", "cifar-10-batches-bin"])
def test_reads_extracted_folder(tmp_path, batches, subfolder):
    folder = tmp_path / subfolder
    folder.mkdir(exist_ok=True)
    for name, records in batches.items():
        (folder / name).write_bytes(records.tobytes())
    check(load_cifar10(tmp_path, download=False), batches)


def test_partial_record_is_refused(tmp_path, batches):
    for name, records in batches.items():
        (tmp_path / name).write_bytes(records.tobytes())
    (tmp_path / "test_batch.bin").write_bytes(batches["test_batch.bin"].tobytes()[:-5])
    with pytest.raises(ValueError, match="test_batch.bin: expected whole 3073-byte records"):
        read_cifar10(tmp_path)


def test_missing_member_is_named(tmp_path, batches):
    del batches["data_batch_3.bin"]
    write_archive(tmp_path / "a.tar.gz", batches)
    with pytest.raises(ValueError, match="missing data_batch_3.bin"):
        read_cifar10(tmp_path / "a.tar.gz")


def test_bad_label_is_refused(tmp_path, batches):
    batches["data_batch_1.bin"][0, 0] = 10
    write_archive(tmp_path / "a.tar.gz", batches)
    with pytest.raises(ValueError, match="expected labels 0..9, found 10"):
        read_cifar10(tmp_path / "a.tar.gz")


def test_download_and_cache(tmp_path, batches, http_server, cache_dir, monkeypatch):
    write_archive(tmp_path / "served.tar.gz", batches)
    body = (tmp_path / "served.tar.gz").read_bytes()
    monkeypatch.setattr(cifar, "CIFAR10_MD5", hashlib.md5(body).hexdigest())
    http_server.routes["/kriz/cifar-10-binary.tar.gz"] = ("ok", body)
    splits = load_dataset("cifar10", mirrors=[http_server.url("/kriz/")], progress=False)
    check(splits, batches)
    check(load_cifar10(download=False), batches)
    assert http_server.hits["/kriz/cifar-10-binary.tar.gz"] == 1


def test_not_found_without_download(cache_dir):
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_cifar10(download=False)
