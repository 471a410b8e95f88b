"""IDX and CIFAR-10 binary files: damaged, crafted and lying files end in a ValueError naming
the file, without allocating what a header claims."""

import gzip
import io
import struct
import tarfile

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from mnist_files import idx_bytes

from kernelab.data import cifar, idx

from .outcome import assert_clear, cut, flip

flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8)
IMAGES = idx_bytes(np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def read_or_refuse(folder, data: bytes, compress: bool, **expected) -> None:
    path = folder / "fuzz-idx"
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    try:
        idx.read_idx(path, **expected)
    except ValueError as error:
        assert_clear(error, str(path))


expect = st.sampled_from([{}, {"ndim": 3, "dtype": np.uint8}, {"ndim": 1, "dtype": np.uint8}])


@given(flips=flips, compress=st.booleans(), expected=expect)
def test_idx_byte_flips(folder, flips, compress, expected):
    read_or_refuse(folder, flip(IMAGES, flips), compress, **expected)


@given(where=st.integers(-len(IMAGES), len(IMAGES)), compress=st.booleans())
def test_idx_truncated(folder, where, compress):
    read_or_refuse(folder, cut(IMAGES, where), compress)


@given(where=st.integers(0, 60))
def test_idx_gzip_stream_truncated(folder, where):
    path = folder / "fuzz-idx.gz"
    path.write_bytes(cut(gzip.compress(IMAGES, mtime=0), where))
    try:
        idx.read_idx(path)
    except ValueError as error:
        assert_clear(error, str(path))


@given(
    type_code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    sizes=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6),
    payload=st.binary(max_size=64),
    compress=st.booleans(),
)
@example(type_code=0x0E, sizes=[2**32 - 1] * 3, payload=b"", compress=False)
@example(type_code=0x08, sizes=[60000, 28, 28], payload=b"\0" * 64, compress=True)
@example(type_code=0x08, sizes=[0, 2325, 2325, 39227, 43496942], payload=b"", compress=False)
def test_idx_headers_declaring_any_size(folder, type_code, sizes, payload, compress):
    header = bytes([0, 0, type_code, len(sizes)]) + struct.pack(f">{len(sizes)}I", *sizes)
    read_or_refuse(folder, header + payload, compress)


def record(label: int, seed: int) -> bytes:
    return bytes([label]) + np.random.default_rng(seed).integers(0, 256, 3072, np.uint8).tobytes()


def archive(entries: list[tuple[str, bytes, int | None]], mode: str = "w:gz") -> bytes:
    """A tar archive of (name, data, declared size or None) entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data, size in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data) if size is None else size
            tar.addfile(info, io.BytesIO(data + b"\0" * max(0, info.size - len(data))))
    return buffer.getvalue()


NAMES = list(cifar.TRAIN_FILES + cifar.TEST_FILES)
GOOD = [(f"{cifar.CIFAR10_FOLDER}/{name}", record(i % 10, i), None) for i, name in enumerate(NAMES)]
GOOD_TAR = archive(GOOD)


def cifar_or_refuse(folder, data: bytes) -> None:
    path = folder / "fuzz-cifar.tar.gz"
    path.write_bytes(data)
    try:
        cifar.read_cifar10(path)
    except ValueError as error:
        assert_clear(error, str(path))


@given(flips=flips)
def test_cifar_archive_byte_flips(folder, flips):
    cifar_or_refuse(folder, flip(GOOD_TAR, flips))


@given(where=st.integers(-len(GOOD_TAR), len(GOOD_TAR)))
def test_cifar_archive_truncated(folder, where):
    cifar_or_refuse(folder, cut(GOOD_TAR, where))


@given(
    order=st.permutations(range(len(GOOD))),
    drop=st.sets(st.integers(0, len(GOOD) - 1), max_size=2),
    labels=st.lists(st.integers(0, 255), min_size=len(GOOD), max_size=len(GOOD)),
    extra=st.binary(max_size=40),
    mode=st.sampled_from(["w:gz", "w", "w:bz2", "w:xz"]),
)
def test_cifar_members_dropped_reordered_mislabelled(folder, order, drop, labels, extra, mode):
    entries = [
        (GOOD[i][0], bytes([labels[i]]) + GOOD[i][1][1:] + (extra if i == 0 else b""), None)
        for i in order
        if i not in drop
    ]
    cifar_or_refuse(folder, archive(entries, mode))


def with_declared_size(tar: bytes, size: int) -> bytes:
    """An uncompressed tar whose first member's header declares ``size`` bytes (octal)."""
    header = bytearray(tar[:512])
    header[124:136] = f"{size:011o}".encode()[-11:] + b"\0"
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[148:156] = f"{sum(header):06o}".encode() + b"\0 "
    return bytes(header) + tar[512:]


@given(size=st.sampled_from([10**9, 8**11 - 1]) | st.integers(0, 8**11 - 1))
def test_cifar_member_declaring_a_huge_size(folder, size):
    cifar_or_refuse(folder, gzip.compress(with_declared_size(archive(GOOD, "w"), size)))


@given(data=st.binary(max_size=3 * 3073 + 5))
def test_cifar_records_of_any_bytes(data):
    try:
        images, labels = cifar.parse_cifar10_records(data, "batch.bin")
    except ValueError as error:
        assert_clear(error, "batch.bin")
    else:
        assert images.shape == (len(labels), 3, 32, 32)
