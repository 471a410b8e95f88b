"""The restricted unpickler of CIFAR's Python batches: plain data in, anything else refused
before it is looked up."""

import pickle

import numpy as np
import pytest

from kernelab.vision.cifar_pickle import UnsafePickleError, load_data_pickle


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
