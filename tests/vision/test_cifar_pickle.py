"""The restricted unpickler of CIFAR's Python batches: plain data in, anything else refused
before it is looked up."""

import pickle
import struct

import numpy as np
import pytest

from kernelab.vision.cifar_pickle import UnsafePickleError, load_data_pickle, read_python_batch


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_containers_and_arrays_load_at_every_protocol(tmp_path, protocol):
    value = {
        "data": np.arange(12, dtype=np.uint8).reshape(2, 6),
        "labels": [1, 2],
        "names": ["a", b"b"],
        "scale": 0.5,
    }
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = load_data_pickle(path)
    np.testing.assert_array_equal(loaded["data"], value["data"])
    assert loaded["data"].dtype == np.uint8
    assert {k: v for k, v in loaded.items() if k != "data"} == {
        k: v for k, v in value.items() if k != "data"
    }


class Calls:
    """Pickles as a call of ``function(*args)``."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (Calls(eval, "1 + 1"), "builtins.eval"),
        (Calls(getattr, "text", "upper"), "builtins.getattr"),
        (Calls(np.load, "x.npy"), "numpy.load"),
        (Calls(pickle.loads, b""), "_pickle.loads"),
    ],
)
def test_any_other_name_is_refused(tmp_path, payload, refused):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": payload}))
    with pytest.raises(UnsafePickleError, match=f"{path}: refusing to load {refused}"):
        load_data_pickle(path)


def test_encode_is_latin1_only(tmp_path):
    import codecs

    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(Calls(codecs.encode, "text", "rot13"), protocol=2))
    with pytest.raises(UnsafePickleError, match="rot13"):
        load_data_pickle(path)


def py2_string(value) -> bytes:
    """A Python 2 ``str`` in a pickle (SHORT_BINSTRING or BINSTRING), as CIFAR's files hold."""
    data = value.encode("latin1") if isinstance(value, str) else value
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def small_int(n: int) -> bytes:
    return b"K" + bytes([n])  # BININT1


def py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """``{"data": data, "labels": labels}`` pickled opcode by opcode as Python 2 and NumPy 1
    wrote CIFAR's batches: protocol 2, ``numpy.core.multiarray._reconstruct``, the pixels as
    a Python 2 string."""
    dtype = b"".join(
        [b"cnumpy\ndtype\n", py2_string("u1"), small_int(0), small_int(1), b"\x87R(",
         small_int(3), py2_string("|"), b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff", small_int(0),
         b"tb"]
    )  # fmt: skip
    rows, cols = data.shape
    array = b"".join(
        [b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n", small_int(0), b"\x85",
         py2_string("b"), b"\x87R(", small_int(1), b"M" + struct.pack("<H", rows),
         b"M" + struct.pack("<H", cols), b"\x86", dtype, b"\x89", py2_string(data.tobytes()),
         b"tb"]
    )  # fmt: skip
    label_list = b"](" + b"".join(small_int(label) for label in labels) + b"e"
    return b"\x80\x02}(" + py2_string("data") + array + py2_string("labels") + label_list + b"u."


def test_a_python2_batch_as_published(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_batch(images, [7, 2]))
    assert pickle.loads(path.read_bytes(), encoding="latin1")["labels"] == [7, 2]  # well formed
    pixels, labels = read_python_batch(path, "labels")
    np.testing.assert_array_equal(pixels, images.reshape(2, 3, 32, 32))
    assert labels.tolist() == [7, 2] and labels.dtype == np.int64


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (Calls(np.ndarray, (1,), np.dtype("O"), b"A" * 8), "refusing to call numpy.ndarray"),
        (np.array([1, "x"], dtype=object), "refusing dtype object"),
        (np.zeros(2, dtype=[("a", "u1")]), "refusing a structured or sub-array dtype"),
        (np.dtype("u1"), "refusing a dtype, array type or array state outside an array"),
    ],
)
@pytest.mark.parametrize("protocol", [2, 5])
def test_numpy_is_never_handed_the_pickles_objects(tmp_path, value, refused, protocol):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": value}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=refused):
        load_data_pickle(path)


def test_an_array_whose_bytes_do_not_fit_its_shape_is_refused(tmp_path):
    path = tmp_path / "batch"
    raw = py2_batch(np.zeros((2, 4), np.uint8), [0, 1])
    path.write_bytes(raw.replace(b"M\x04\x00", b"M\x05\x00", 1))  # claims 2 x 5 from 8 bytes
    with pytest.raises(UnsafePickleError, match=r"shape \(2, 5\) and dtype uint8 from 8 bytes"):
        load_data_pickle(path)


def test_a_damaged_file_is_a_value_error(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": [1, 2, 3]})[:-5])
    with pytest.raises(ValueError, match="not a readable CIFAR batch"):
        load_data_pickle(path)
