"""Checkpoints without pickle: exact round trips, atomic writes, damaged files refused."""

import io as stdio
import json
import math
import pickle
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

import kernelab as kl
from kernelab import nn, optim
from kernelab.core import serialization
from kernelab.core.serialization import CheckpointError


def same(a, b) -> bool:
    """Equal values of the same types, arrays bit for bit with the same dtype and shape."""
    if type(a) is not type(b):
        return False
    if isinstance(a, kl.Tensor):
        return same(a.array, b.array)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def round_trip(obj, tmp_path: Path):
    serialization.save(obj, tmp_path / "c.kl")
    return serialization.load(tmp_path / "c.kl")


def small_checkpoint(path: Path) -> dict:
    obj = {
        "model": {"0.weight": kl.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4))},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.full(5, 0.25)}}},
        "epoch": 2,
    }
    serialization.save(obj, path)
    return obj


# ---- round trips
def test_round_trip_keeps_types_values_and_dtypes(tmp_path):
    generator = np.random.default_rng(123)
    generator.random(7)  # a state whose 128-bit integers are far past 2**64
    obj = {
        "tensor": kl.Tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)),
        "array": np.arange(6, dtype=np.int64),
        "arrays": [
            np.array(3.5),  # 0-d
            np.zeros((0, 4), np.float32),  # empty
            np.array([True, False]),
            np.array([1, 255], np.uint8),
            np.array([0.1, -2], np.float16),
            np.array([1 + 2j], np.complex128),
            np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],  # not contiguous
        ],
        "floats": [math.inf, -math.inf, math.nan, 0.1, -0.0, 1e-320, 1.7976931348623157e308],
        "ints": [0, -1, 2**70, -(2**100)],
        "tuple": (1, "two", (3.0, None)),
        "empty": ({}, [], ()),
        "text": 'ünïcode ✓, "quotes" and \n newlines',
        "flags": [True, False, None],
        "rng": generator.bit_generator.state,
        "int_keys": {0: "a", 1: {2: "b"}, -7: None},
        "mixed_keys": {"a": 1, 2: "b", (3, 4): "tuple key", None: 0, 2.5: "float key"},
        "lookalikes": {"__tuple__": [1, 2], "__items__": [], "__array__": "a0", "x": 1},
        "nested": [{"deep": [[{"w": kl.Tensor(np.ones(2, np.float64))}]]}],
    }
    back = round_trip(obj, tmp_path)
    assert same(back, obj)
    assert isinstance(back["tensor"], kl.Tensor) and isinstance(back["array"], np.ndarray)
    assert back["rng"]["state"]["state"] == generator.bit_generator.state["state"]["state"]
    # the restored state continues the generator's stream exactly
    clone = np.random.default_rng()
    clone.bit_generator.state = back["rng"]
    assert np.array_equal(clone.random(5), generator.random(5))


def test_numpy_scalars_become_python_numbers(tmp_path):
    back = round_trip({"a": np.float32(0.1), "b": np.int64(7), "c": np.bool_(True)}, tmp_path)
    assert back == {"a": float(np.float32(0.1)), "b": 7, "c": True}
    assert type(back["b"]) is int and type(back["c"]) is bool


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    def model_and_adam():
        model = nn.Sequential(nn.Linear(3, 4, generator=0), nn.ReLU(), nn.Linear(4, 2, generator=1))
        return model, optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))

    x = kl.Tensor(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))

    def step(model, adam):
        adam.zero_grad()
        (model(x) ** 2).sum().backward()
        adam.step()

    model, adam = model_and_adam()
    step(model, adam)
    step(model, adam)
    saved = round_trip({"model": model.state_dict(), "optimizer": adam.state_dict()}, tmp_path)
    assert list(saved["optimizer"]["state"]) == [0, 1, 2, 3]  # int keys stay ints
    assert saved["optimizer"]["state"][0]["step"] == 2
    other, other_adam = model_and_adam()
    other.load_state_dict(saved["model"])
    other_adam.load_state_dict(saved["optimizer"])
    assert other_adam.param_groups[0]["betas"] == (0.8, 0.9)
    step(model, adam)
    step(other, other_adam)
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert np.array_equal(a.array, b.array)


def test_saved_arrays_are_snapshots(tmp_path):
    array = np.zeros(3)
    serialization.save({"a": array}, tmp_path / "c.kl")
    array += 1
    assert np.array_equal(serialization.load(tmp_path / "c.kl")["a"], np.zeros(3))


@pytest.mark.parametrize(
    "bad",
    [{1, 2}, object(), np.array([1, "x"], dtype=object), {"f": lambda: 0}, b"bytes"],
    ids=["set", "object", "object-array", "function", "bytes"],
)
def test_unsupported_values_are_refused_and_leave_the_old_file(tmp_path, bad):
    path = tmp_path / "c.kl"
    serialization.save({"old": 1}, path)
    with pytest.raises(TypeError, match="cannot save"):
        serialization.save({"new": bad}, path)
    assert serialization.load(path) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.kl"]


# ---- atomic writes
def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "c.kl"
    original = small_checkpoint(path)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError, match="disk full"):
        serialization.save({"model": {"w": np.ones(1000)}}, path)
    monkeypatch.undo()
    assert same(serialization.load(path), original)
    assert [p.name for p in tmp_path.iterdir()] == ["c.kl"]  # no temporary file left


def test_save_creates_folders_and_a_readable_file(tmp_path):
    path = tmp_path / "a" / "b" / "c.kl"
    serialization.save([1], path)
    assert serialization.load(path) == [1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_save_writes_through_a_temporary_file_and_rename(tmp_path, monkeypatch):
    renames = []
    real_replace = serialization.os.replace
    monkeypatch.setattr(
        serialization.os, "replace", lambda a, b: (renames.append((a, b)), real_replace(a, b))
    )
    serialization.save({"x": 1}, tmp_path / "c.kl")
    ((source, target),) = renames
    assert Path(source).parent == tmp_path and Path(source).name.startswith(".c.kl.")
    assert Path(target) == tmp_path / "c.kl"


def test_writes_reach_the_disk_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """fsync sees every byte of the file (flushed from Python's buffer first), the rename
    comes after it, and the folder holding the new name is synced last."""
    events = []
    real_fsync, real_replace = serialization.os.fsync, serialization.os.replace

    def fsync(fd):
        info = serialization.os.fstat(fd)
        events.append(("folder", None) if stat.S_ISDIR(info.st_mode) else ("file", info.st_size))
        real_fsync(fd)

    monkeypatch.setattr(serialization.os, "fsync", fsync)
    monkeypatch.setattr(
        serialization.os,
        "replace",
        lambda a, b: (events.append(("rename", None)), real_replace(a, b)),
    )
    path = tmp_path / "c.kl"
    serialization.save({"w": np.ones(1000)}, path)
    assert events == [("file", path.stat().st_size), ("rename", None), ("folder", None)]
    events.clear()
    with serialization.atomic_writer(path) as file:  # a plain write, no zipfile to flush it
        file.write(b"0123456789")
    assert events == [("file", 10), ("rename", None), ("folder", None)]


# ---- damaged or foreign files
def test_truncated_checkpoints_are_refused(tmp_path):
    path = tmp_path / "c.kl"
    small_checkpoint(path)
    raw = path.read_bytes()
    for cut in [0, 1, 4, 30, len(raw) // 4, len(raw) // 2, len(raw) - 100, len(raw) - 22, -1]:
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=r"c\.kl"):
            serialization.load(path)


def test_a_flipped_byte_inside_an_array_is_refused(tmp_path):
    path = tmp_path / "c.kl"
    obj = small_checkpoint(path)
    raw = bytearray(path.read_bytes())
    data = obj["model"]["0.weight"].array.tobytes()
    start = raw.find(data)
    assert start > 0 and raw.find(data, start + 1) == -1
    for offset in (0, len(data) // 2, len(data) - 1):
        damaged = bytearray(raw)
        damaged[start + offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError, match="array a0|corrupted"):
            serialization.load(path)


def test_any_single_flipped_byte_is_refused_or_harmless(tmp_path):
    """Every third byte of a small checkpoint flipped in turn: refused cleanly, or (a
    timestamp, say) read back unchanged; never another exception, never different content."""
    path, damaged = tmp_path / "c.kl", tmp_path / "d.kl"
    obj = small_checkpoint(path)
    raw = path.read_bytes()
    refused = 0
    for i in range(0, len(raw), 3):
        flipped = bytearray(raw)
        flipped[i] ^= 0x41
        damaged.write_bytes(bytes(flipped))
        try:
            back = serialization.load(damaged)
        except CheckpointError:
            refused += 1
        else:
            assert same(back, obj), f"byte {i} changed the content"
    assert refused > len(raw) // 6


def test_an_array_altered_with_a_valid_zip_fails_its_checksum(tmp_path):
    """A tamperer who rewrites the zip (so its CRCs match) is still caught by the SHA-256."""
    path = tmp_path / "c.kl"
    small_checkpoint(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = stdio.BytesIO()
    np.save(buffer, np.zeros((3, 4), np.float32))
    members["a0.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CheckpointError, match="array a0 fails its checksum"):
        serialization.load(path)


class _Trap:
    """Unpickling this creates a file: proof that a pickle was run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "c.kl"
    path.write_bytes(pickle.dumps({"model": _Trap(marker)}))
    with pytest.raises(CheckpointError, match="not a kernelab checkpoint"):
        serialization.load(path)
    # a pickled object array smuggled into a well-formed checkpoint is refused too
    small_checkpoint(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = stdio.BytesIO()
    np.save(buffer, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    members["a0.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CheckpointError, match="array a0 is unreadable"):
        serialization.load(path)
    assert not marker.exists()


def test_a_raw_pickle_is_named_as_one(tmp_path):
    """A file pickle.dump (or an old torch.save) wrote gets the message on converting it."""
    path = tmp_path / "c.pt"
    path.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    with pytest.raises(CheckpointError, match="but a pickle file .*safetensors"):
        serialization.load(path)


def test_loading_onto_a_device_kernelab_lacks_is_refused(tmp_path):
    small_checkpoint(tmp_path / "c.kl")
    serialization.load(tmp_path / "c.kl", map_location="cpu")
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        serialization.load(tmp_path / "c.kl", map_location="cuda")


def test_brief_keeps_80_characters_and_cuts_longer_lines():
    assert serialization.brief(ValueError("x" * 80)) == "x" * 80
    assert serialization.brief(ValueError("x" * 81)) == "x" * 77 + "..."
    assert serialization.brief(ValueError("first\nsecond")) == "first"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 100,
        np.random.default_rng(0).bytes(4096),
        b"PK\x03\x04" + np.random.default_rng(1).bytes(200),
        b'{"format": "kernelab-checkpoint/1"}',
    ],
    ids=["empty", "zeros", "random", "zip-magic-then-noise", "bare-json"],
)
def test_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "c.kl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a kernelab checkpoint"):
        serialization.load(path)


@pytest.mark.parametrize(
    "tree",
    [
        None,
        [],
        {"format": "other/1", "content": 1},
        {"format": serialization.FORMAT},
        {
            "format": serialization.FORMAT,
            "content": {"__array__": "missing", "tensor": False, "sha256": ""},
        },
        {"format": serialization.FORMAT, "content": {"__array__": 5}},
        {"format": serialization.FORMAT, "content": {"__items__": [[[1], 2]]}},
    ],
    ids=["null", "list", "other-format", "no-content", "missing-array", "bad-ref", "bad-key"],
)
def test_well_formed_zips_with_a_wrong_tree_are_refused(tmp_path, tree):
    path = tmp_path / "c.kl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tree.json", json.dumps(tree))
    with pytest.raises(CheckpointError):
        serialization.load(path)


def test_a_zip_without_tree_is_refused(tmp_path):
    path = tmp_path / "c.kl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a0.npy", b"")
    with pytest.raises(CheckpointError, match="not a kernelab checkpoint"):
        serialization.load(path)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        serialization.load(tmp_path / "nothing.kl")


def test_every_flipped_byte_is_one_short_line_or_a_faithful_load(tmp_path):
    """Flip each byte of a small checkpoint in turn: it loads unchanged (a byte no reader
    looks at) or fails with a CheckpointError of one line under 300 characters."""
    path, damaged = tmp_path / "c.kl", tmp_path / "d.kl"
    original = small_checkpoint(path)
    content = path.read_bytes()
    for i in range(len(content)):
        flipped = bytearray(content)
        flipped[i] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            loaded = serialization.load(damaged)
        except CheckpointError as error:
            message = str(error)
            assert "\n" not in message and len(message) < 300, (i, message[:400])
            continue
        np.testing.assert_array_equal(loaded["model"]["0.weight"], original["model"]["0.weight"])
        assert loaded["epoch"] == original["epoch"]
