"""dtypes (NumPy's), and the default floating dtype that Python floats and new layers take.

It sits below everything else in the engine (it imports nothing from kernelab), so the ops in
``kernelab.functional`` can ask for the default dtype without importing the Tensor.
"""

from __future__ import annotations

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype() -> np.dtype:
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """The floating dtype of tensors made from Python numbers and of new layers' parameters."""
    global _default_dtype
    _default_dtype = np.dtype(dtype)
