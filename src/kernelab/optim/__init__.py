"""Optimisers that move parameters along their gradients, and learning-rate schedules.

Each follows ``torch.optim``: the same names, defaults, options and update formulas.
"""

from ..core.errors import not_provided as _not_provided
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .nadam import NAdam
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "NAdam",
    "Optimizer",
    "RMSprop",
    "SGD",
    "lr_scheduler",
]


def __getattr__(name: str):
    raise _not_provided(__name__, name, "torch.optim")
