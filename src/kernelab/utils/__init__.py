"""``torch.utils``: only ``data`` (datasets and the DataLoader)."""

from ..core.errors import not_provided
from . import data


def __getattr__(name: str):
    raise not_provided(__name__, name, "torch.utils")
