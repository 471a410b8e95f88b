"""``kernelab.nn.functional``: the stateless operations, as PyTorch names the module."""

from ..functional import *  # noqa: F403
from ..functional import __all__  # noqa: F401
