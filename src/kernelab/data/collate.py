"""Turn a list of samples into one batch, as ``torch.utils.data.default_collate`` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.dtypes import get_default_dtype
from ..core.tensor import Tensor


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, recursing into tuples, lists and dicts.

    Tensors, NumPy arrays and NumPy scalars are stacked along a new first axis into a
    :class:`Tensor` of their dtype; Python ints become int64, bools bool and floats the default
    dtype (float32; PyTorch uses float64 here). Strings stay a list. A tuple, list, namedtuple
    or dict of fields gives the same container of batched fields (PyTorch turns a tuple into
    a list; keeping the tuple unpacks the same way).
    """
    if len(batch) == 0:
        raise ValueError("default_collate: expected at least one sample, received an empty batch")
    elem = batch[0]
    if isinstance(elem, (Tensor, np.ndarray, np.generic)):
        return Tensor(_stack([x.array if isinstance(x, Tensor) else np.asarray(x) for x in batch]))
    if isinstance(elem, (bool, int, float)):
        return Tensor(_numbers(batch))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, Sequence):
        lengths = {len(sample) for sample in batch}
        if len(lengths) != 1:
            raise ValueError(
                f"default_collate: expected samples with the same number of fields, "
                f"received lengths {sorted(lengths)}"
            )
        fields = [default_collate(list(field)) for field in zip(*batch, strict=True)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(
        f"default_collate: expected Tensors, NumPy arrays, numbers, strings, or tuples, lists "
        f"or dicts of them; received {type(elem).__name__}"
    )


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"default_collate: expected samples of one shape, received shapes {sorted(shapes)}"
        )
    return np.stack(arrays)


def _numbers(batch: Sequence[Any]) -> np.ndarray:
    array = np.array(batch)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        return array.astype(get_default_dtype(), copy=False)
    raise TypeError(
        f"default_collate: expected a batch of numbers, received types "
        f"{sorted({type(x).__name__ for x in batch})}"
    )
