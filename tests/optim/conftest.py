"""Fixtures for the optimiser tests: a JSON-plus-arrays checkpoint, torch in float64."""

import json

import numpy as np
import pytest
import torch


def _encode(value, arrays):
    """Plain JSON, arrays set aside; fails on anything a pickle-free checkpoint cannot hold."""
    if isinstance(value, np.ndarray):
        arrays.append(value.copy())
        return {"__array__": len(arrays) - 1}
    if isinstance(value, dict):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a plain state_dict value: {type(value).__name__} {value!r}")


def _roundtrip(state_dict):
    arrays = []
    text = json.dumps(_encode(state_dict, arrays))  # Infinity is allowed (ReduceLROnPlateau)

    def decode(obj):
        return arrays[obj["__array__"]] if set(obj) == {"__array__"} else obj

    return json.loads(text, object_hook=decode)


@pytest.fixture
def checkpoint():
    """Send a state_dict through JSON plus arrays, as a pickle-free checkpoint would."""
    return _roundtrip


@pytest.fixture
def torch_float64():
    """torch keeps Adam's step and NAdam's mu_product in the default dtype: make it float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(autouse=True)
def _on_both_kernel_paths(kernel_path):
    """Every optimiser test runs on both kernel paths, compiled and NumPy."""
    yield
