"""PyTorch's names for kernelab's graph nodes (``grad_fn.name()``), so that a printed graph
reads as PyTorch's: ``AddmmBackward0`` for a linear layer, ``NllLossBackward0`` for
cross-entropy, ``SelectBackward0`` for ``x[0]``.

A name is the operation's own followed by ``Backward0`` unless the table below says otherwise;
where PyTorch's name depends on how the operation was called, the table holds a function of
the node's input arrays and settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pytorch_node_name(op: str, inputs: tuple[Any, ...], params: dict) -> str:
    """The name PyTorch gives the node of operation ``op`` on ``inputs`` (arrays or numbers)."""
    name = _NAMES.get(op, f"{op}Backward0")
    return name if isinstance(name, str) else name(inputs, params)


def _reduction_name(op: str):
    """PyTorch numbers a reduction's node by its overload: 0 for all elements (``x.sum()``),
    1 with ``dim``. kernelab's node has the axes, so a reduction over every axis is read as
    the first (``x.sum((0, 1))`` of a matrix is ``SumBackward1`` in PyTorch, 0 here)."""

    def name(inputs: tuple, params: dict) -> str:
        every_axis = len(params["axes"]) == np.ndim(inputs[0])
        return f"{op}Backward{0 if every_axis and not params['keepdim'] else 1}"

    return name


def _extreme_name(inputs: tuple, params: dict) -> str:
    """``x.max()`` (all elements) or ``x.amax(dim)``."""
    op = "Min" if params["smallest"] else "Max"
    every_axis = len(params["axes"]) == np.ndim(inputs[0])
    return f"{op}Backward1" if every_axis and not params["keepdim"] else f"A{op.lower()}Backward0"


def _getitem_name(inputs: tuple, params: dict) -> str:
    """Basic indexing is named by its last step, as PyTorch applies them in order: an integer
    selects (``x[:, 0]``), a slice slices (``x[1:3]``), None unsqueezes; arrays, lists and
    masks index (``x[[0, 2]]``)."""
    index = params["index"]
    steps = [i for i in (index if isinstance(index, tuple) else (index,)) if i is not Ellipsis]
    if any(np.ndim(i) > 0 or isinstance(i, (bool, np.bool_)) for i in steps):
        return "IndexBackward0"
    while len(steps) > 1 and steps[-1] == slice(None):
        steps.pop()
    if steps and steps[-1] is None:
        return "UnsqueezeBackward0"
    return "SliceBackward0" if not steps or isinstance(steps[-1], slice) else "SelectBackward0"


def _linear_name(inputs: tuple, params: dict) -> str:
    """``addmm`` with a bias; without one, a matrix product (a view of one beyond 2-D)."""
    if inputs[2] is not None:
        return "AddmmBackward0"
    return "MmBackward0" if np.ndim(inputs[0]) == 2 else "UnsafeViewBackward0"


# PyTorch's node names where they are not the operation's name followed by "Backward0": a
# string, or a function of the node's inputs and settings where PyTorch's name depends on them
_NAMES = {
    "AdaptiveAvgPool2d": lambda inputs, params: (
        "MeanBackward1" if params["output_size"] == (1, 1) else "AdaptiveAvgPool2DBackward0"
    ),
    "AvgPool2d": "AvgPool2DBackward0",
    "BatchNorm": "NativeBatchNormBackward0",
    "BatchNormReLU": "ReluBackward0",  # fused (nn.Sequential): named by its last operation
    "Cast": "ToCopyBackward0",
    "Clamp": "ClampBackward1",
    "Conv2d": "ConvolutionBackward0",
    "CrossEntropy": "NllLossBackward0",
    "CrossEntropyIndices": "NllLossBackward0",
    "Dropout": "MulBackward0",
    "Extreme": _extreme_name,
    "GetItem": _getitem_name,
    "LeakyReLU": "LeakyReluBackward0",
    "Linear": _linear_name,
    "MatMul": "MmBackward0",
    "MaxPool2d": "MaxPool2DWithIndicesBackward0",
    "Mean": _reduction_name("Mean"),
    "MSE": "MseLossBackward0",
    "NLLCoefficients": "NllLossBackward0",
    "Norm": "LinalgVectorNormBackward0",
    "ReLU": "ReluBackward0",
    "ReluMaxPool2d": "MaxPool2DWithIndicesBackward0",  # fused, as BatchNormReLU
    "Reshape": "ViewBackward0",
    "Sum": _reduction_name("Sum"),
    "TakeAlongDim": "GatherBackward0",
}
