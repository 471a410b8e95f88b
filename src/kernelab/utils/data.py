"""``torch.utils.data``: the datasets, splits and DataLoader of :mod:`kernelab.data`."""

from ..core.errors import not_provided
from ..data.collate import default_collate
from ..data.loader import DataLoader, Dataset, Subset, TensorDataset, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]


def __getattr__(name: str):
    raise not_provided(__name__, name, "torch.utils.data")
