"""Checkpoints: damaged, crafted and strange files end in CheckpointError naming the file."""

import io
import json
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import kernelab as kl
from kernelab.core import serialization
from kernelab.core.serialization import CheckpointError

from .outcome import assert_clear, cut, flip

flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8)


def valid_bytes() -> bytes:
    obj = {
        "model": {"0.weight": kl.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4))},
        "state": {0: {"step": 3, "avg": np.full(5, 0.25)}, "t": (1, "a", None)},
    }
    with tempfile.TemporaryDirectory() as folder:
        serialization.save(obj, Path(folder) / "c.kl")
        return (Path(folder) / "c.kl").read_bytes()


VALID = valid_bytes()


def members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def rezip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def load_or_refuse(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.kl"
    path.write_bytes(data)
    try:
        serialization.load(path)
    except CheckpointError as error:
        assert_clear(error, str(path))


@pytest.fixture(scope="module")
def where(tmp_path_factory):
    return tmp_path_factory


@given(flips=flips)
def test_byte_flips_anywhere(where, flips):
    load_or_refuse(where, flip(VALID, flips))


@given(where_to=st.one_of(st.integers(0, 64), st.integers(-64, -1), st.integers(0, len(VALID))))
def test_truncation_at_every_length_class(where, where_to):
    load_or_refuse(where, cut(VALID, where_to))


names = st.sampled_from(["tree.json", "a0.npy", "a1.npy", "a2.npy", "data.pkl", "x/../a0.npy"])


@given(
    order=st.permutations(range(3)),
    renames=st.dictionaries(st.integers(0, 2), names, max_size=2),
    duplicate=st.lists(st.integers(0, 2), max_size=2),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
def test_members_renamed_reordered_duplicated(where, order, renames, duplicate, method):
    entries = members(VALID)
    entries = [(renames.get(i, entries[i][0]), entries[i][1]) for i in order]
    entries += [entries[i] for i in duplicate]
    load_or_refuse(where, rezip(entries, method))


def with_declared_size(data: bytes, member: int, size: int, field: str) -> bytes:
    """The zip with one member's declared (un)compressed size replaced in both headers."""
    out = bytearray(data)
    offset = {"compressed": 18, "uncompressed": 22}[field]
    headers = [(b"PK\x03\x04", offset), (b"PK\x01\x02", offset + 2)]
    for signature, field_offset in headers:
        start = -1
        for _ in range(member + 1):
            start = out.find(signature, start + 1)
        if start >= 0:
            out[start + field_offset : start + field_offset + 4] = struct.pack("<I", size)
    return bytes(out)


@given(
    member=st.integers(0, 2),
    size=st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 10**9]) | st.integers(0, 2**32 - 1),
    field=st.sampled_from(["compressed", "uncompressed"]),
)
def test_huge_declared_sizes(where, member, size, field):
    load_or_refuse(where, with_declared_size(VALID, member, size, field))


@given(
    shape=st.lists(st.integers(0, 2**40), min_size=1, max_size=3),
    descr=st.sampled_from(["<f4", "<f8", "|u1", "|O", "<c16", "|V8", ">i8", "<U4"]),
)
@example(shape=[2**40, 2**20], descr="<f8")
def test_npy_headers_that_lie_about_the_array(where, shape, descr):
    header = {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    entries = members(VALID)
    entries[0] = (entries[0][0], buffer.getvalue() + b"\0" * 48)
    load_or_refuse(where, rezip(entries))


@given(
    values=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308]), max_size=6),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
)
def test_nan_and_inf_arrays_round_trip(where, values, dtype):
    path = where.getbasetemp() / "nan.kl"
    with np.errstate(over="ignore"):  # 1e308 is inf in float16 and float32: still a value
        array = np.asarray(values, dtype=dtype)
    serialization.save({"w": kl.Tensor(array), "a": array}, path)
    loaded = serialization.load(path)
    assert loaded["a"].tobytes() == array.tobytes()
    assert loaded["w"].array.tobytes() == array.tobytes()


trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["__array__", "__tuple__", "__items__", "sha256", "tensor", "k"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(content=trees, fmt=st.sampled_from([serialization.FORMAT, "other", None]))
@example(content={"__array__": "\ud7fc"}, fmt=serialization.FORMAT)  # unprintable name
@example(content={"__array__": "../a0"}, fmt=serialization.FORMAT)
def test_crafted_trees(where, content, fmt):
    entries = [e for e in members(VALID) if e[0] != "tree.json"]
    entries.append(("tree.json", json.dumps({"format": fmt, "content": content}).encode()))
    load_or_refuse(where, rezip(entries))


def test_an_array_referenced_many_times_is_refused(where):
    """A tree naming one array again and again would make one file load as gigabytes."""
    entries = members(VALID)
    tree = json.loads(dict(entries)["tree.json"])
    reference = tree["content"]["model"]["0.weight"]
    tree["content"] = [reference] * 1000
    entries = [e for e in entries if e[0] != "tree.json"] + [("tree.json", json.dumps(tree))]
    path = where.getbasetemp() / "repeat.kl"
    path.write_bytes(rezip([(n, d if isinstance(d, bytes) else d.encode()) for n, d in entries]))
    with pytest.raises(CheckpointError) as caught:
        serialization.load(path)
    assert_clear(caught.value, str(path))
