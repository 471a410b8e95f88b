"""kernelab: a convolutional neural network engine on NumPy, built around the kernel.

Its names follow PyTorch's, so a PyTorch CNN script runs with ``import kernelab as torch``
(see docs/coming-from-pytorch.md). A PyTorch name kernelab does not provide raises an
AttributeError that says so, at the line that uses it.
"""

from importlib import import_module as _import_module
from importlib.util import find_spec as _find_spec

import numpy as _np

from .autograd import (
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .core.dtypes import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .core.errors import DTypeError, ShapeError
from .core.errors import not_provided as _not_provided
from .core.printing import set_printoptions
from .core.rng import Generator, manual_seed
from .core.size import Size
from .core.tensor import Tensor, as_tensor, from_numpy, tensor

half, float, double, long, int = float16, float32, float64, int64, int32  # noqa: A001
bool = bool_  # noqa: A001
dtype = _np.dtype  # dtypes are NumPy's: isinstance(kernelab.float32, kernelab.dtype)

__version__ = "0.1.0"

from . import accelerator, backends, cuda, functional, kernels, nn, optim, utils
from .core.creation import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from .core.devices import device
from .core.functions import *  # noqa: F403  (torch.cat, torch.max, torch.where, ...)
from .core.serialization import load, save
from .core.threads import get_num_threads, set_num_threads
from .interop import from_torch, load_safetensors, save_safetensors
from .kernels import init, viz  # viz imports matplotlib only when it draws
from .kernels.summary import Summary, summary


def explain(model_or_run=None, train: bool = False, port: int = 0, **options):
    """Open the explain page for a model (or a run folder, checkpoint, ONNX file) in a
    notebook, with the Train view when ``train``: see
    :func:`kernelab.apps.explain.notebook.explain`. Imported on first call, so
    ``import kernelab`` needs neither the web server nor the ``explain`` extra."""
    from .apps.explain.notebook import explain as serve_in_notebook

    return serve_in_notebook(model_or_run, train, port, **options)


def __getattr__(name: str):
    """kernelab's own submodules on first use (``kernelab.data``); for any other name, the
    error that says PyTorch's ``torch.<name>`` is not part of kernelab."""
    if not name.startswith("_") and _find_spec(f"{__name__}.{name}") is not None:
        return _import_module(f"{__name__}.{name}")
    raise _not_provided(__name__, name, "torch")
