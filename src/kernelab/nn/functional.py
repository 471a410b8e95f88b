"""``kernelab.nn.functional``: the stateless operations, as PyTorch names the module."""

from ..core.errors import not_provided as _not_provided
from ..functional import *  # noqa: F403
from ..functional import __all__  # noqa: F401


def __getattr__(name: str):
    raise _not_provided(__name__, name, "torch.nn.functional")
