"""kernelab: a convolutional neural network engine on NumPy, built around the kernel."""

from .autograd import (
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .errors import ShapeError
from .random import manual_seed
from .tensor import (
    Tensor,
    as_tensor,
    bool_,
    float16,
    float32,
    float64,
    from_numpy,
    get_default_dtype,
    int32,
    int64,
    set_default_dtype,
    tensor,
    uint8,
)

half, float, double, long, int = float16, float32, float64, int64, int32  # noqa: A001

__version__ = "0.1.0"

from . import functional, init, kernels, nn, optim
from .summary import Summary, summary
from .threads import get_num_threads, set_num_threads
from .interop import from_torch, load_safetensors, save_safetensors
