"""Datasets, splits and the DataLoader, with PyTorch's names and semantics.

Data order is reproducible and resumable: a shuffling loader draws one ``seed`` when it is
built, and epoch ``e`` visits the samples in the order
``np.random.default_rng([seed, e]).permutation(len(dataset))``. The order of any epoch is thus
a pure function of ``(seed, e)``, so a run restored from a checkpoint (see
:meth:`DataLoader.state_dict`) sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..core.rng import as_generator
from ..core.tensor import Tensor
from .collate import default_collate


class Dataset:
    """A map-style dataset: ``len(dataset)`` samples, ``dataset[i]`` the i-th.

    Subclasses implement ``__getitem__`` and ``__len__``. ``get_batch(indices)`` returns the
    collated batch of those samples; a subclass that can fetch a whole batch at once (as
    :class:`TensorDataset` does, by fancy indexing) overrides it for speed.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def get_batch(self, indices: np.ndarray) -> Any:
        return default_collate([self[int(i)] for i in indices])


class TensorDataset(Dataset):
    """Samples are the i-th rows of each tensor: ``dataset[i] == (t[i] for t in tensors)``.

    Accepts kernelab Tensors or NumPy arrays (wrapped without a copy). Batches are fetched by
    indexing every tensor with the whole index array at once, not sample by sample.
    """

    def __init__(self, *tensors: Tensor | np.ndarray):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor, received none")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        shapes = [tuple(t.shape) for t in self.tensors]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(
                f"TensorDataset: expected tensors with the same first dimension, "
                f"received shapes {shapes}"
            )

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor(t.array[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        return tuple(Tensor(t.array[indices]) for t in self.tensors)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices: np.ndarray) -> Any:
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(self.indices[indices])
        return super().get_batch(indices)


def random_split(
    dataset: Any,
    lengths: Sequence[int | float],
    generator: np.random.Generator | int | None = None,
) -> list[Subset]:
    """Split a dataset into non-overlapping random subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1:
    each gets ``floor(fraction * len(dataset))`` samples and the remainder is dealt out one by
    one from the first subset on (PyTorch's rule, so splits have the same sizes as torch's).
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(
                    f"random_split: expected fractions in [0, 1], received {fraction} at index {i}"
                )
        counts = [math.floor(n * fraction) for fraction in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: split {i} is empty", stacklevel=2)
        lengths = counts
    if any(int(length) != length or length < 0 for length in lengths) or sum(lengths) != n:
        raise ValueError(
            f"random_split: expected lengths summing to len(dataset) = {n} or fractions "
            f"summing to 1, received {lengths}"
        )
    order = as_generator(generator).permutation(n)
    ends = np.cumsum(lengths).astype(int)
    return [
        Subset(dataset, order[end - length : end])
        for end, length in zip(ends, lengths, strict=True)
    ]


class DataLoader:
    """Batches of a dataset, in order or shuffled, one epoch per pass.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``; if it has ``get_batch`` (as
            :class:`TensorDataset` does) and ``collate_fn`` is None, a batch is fetched in one
            call instead of sample by sample.
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: visit the samples in a new random order each epoch.
        generator: where the shuffling seed comes from: an int is the seed itself; a
            Generator, or None for kernelab's default generator, gives one draw at construction.
        num_workers: accepted for PyTorch compatibility and ignored (loading is in-process).
        collate_fn: turns a list of samples into a batch; :func:`default_collate` by default.
        sampler: an iterable of sample indices (with ``set_epoch`` if its order changes per
            epoch, as :class:`~kernelab.distributed.DistributedSampler`), instead of shuffle.
        pin_memory, worker_init_fn, persistent_workers, prefetch_factor, timeout: accepted
            for PyTorch compatibility; they concern GPUs and worker processes, and change
            nothing here (as with PyTorch's ``num_workers=0`` on a CPU).
        batch_sampler: not supported (NotImplementedError).

    Data order: epoch ``e`` uses ``np.random.default_rng([seed, e]).permutation(n)``. A
    complete pass advances :attr:`epoch` by one, and so does starting a new pass after one
    abandoned part-way; :meth:`set_epoch` chooses the epoch explicitly; :meth:`state_dict` and
    :meth:`load_state_dict` save and restore ``(seed, epoch, batches already yielded)``, so the
    next pass after a restore resumes mid-epoch with exactly the batches that were left.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        drop_last: bool = False,
        generator: np.random.Generator | int | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        sampler: Any = None,
        batch_sampler: Any = None,
        pin_memory: bool = False,
        worker_init_fn: Callable[[int], None] | None = None,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        timeout: float = 0,
    ):
        if batch_sampler is not None:
            raise NotImplementedError("DataLoader: batch_sampler is not supported")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: expected an int batch_size, received {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: expected batch_size >= 1, received {batch_size}")
        if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: expected num_workers >= 0, received {num_workers!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive")
        self.dataset, self.sampler = dataset, sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.seed = _draw_seed(generator) if self.shuffle else None
        self._epoch = 0
        self._position = 0  # batches of the current epoch already yielded
        self._in_pass = False  # a pass has started and not finished

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def epoch(self) -> int:
        """The epoch the current or next pass draws its order from."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch``, from its first batch."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: expected an int >= 0, received {epoch!r}")
        self._epoch, self._position, self._in_pass = int(epoch), 0, False

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices in the order epoch ``epoch`` visits them."""
        if self.sampler is not None:  # e.g. a DistributedSampler: this rank's share
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self) -> Iterator[Any]:
        if self._in_pass:  # the previous pass was abandoned: start a fresh epoch
            self._epoch, self._position = self._epoch + 1, 0
        self._in_pass = True
        return self._batches(self.order(self._epoch), self._position)

    def _batches(self, order: np.ndarray, start: int) -> Iterator[Any]:
        for b in range(start, len(self)):
            indices = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = self._fetch(indices)
            self._position = b + 1  # before yielding: a checkpoint taken now counts this batch
            yield batch
        self._epoch, self._position, self._in_pass = self._epoch + 1, 0, False

    def _fetch(self, indices: np.ndarray) -> Any:
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        samples = [self.dataset[int(i)] for i in indices]
        return (self.collate_fn or default_collate)(samples)

    def state_dict(self) -> dict[str, Any]:
        """Where the data order stands: enough to resume exactly, mid-epoch included."""
        epoch, position = self._epoch, self._position
        if position >= len(self) > 0:  # the last batch was yielded: the epoch is complete
            epoch, position = epoch + 1, 0
        return {
            "seed": self.seed,
            "epoch": epoch,
            "batches_yielded": position,
            "dataset_length": len(self.dataset),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next pass continues where that one stopped."""
        saved = (state["dataset_length"], state["batch_size"], state["seed"] is not None)
        if saved != (len(self.dataset), self.batch_size, self.shuffle):
            raise ValueError(
                f"DataLoader.load_state_dict: state saved for {saved[0]} samples, batch_size="
                f"{saved[1]}, shuffle={saved[2]}; this loader has {len(self.dataset)} samples, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}"
            )
        self.seed = state["seed"]
        self.set_epoch(state["epoch"])
        self._position = int(state["batches_yielded"])


def _draw_seed(generator: np.random.Generator | int | None) -> int:
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        if generator < 0:
            raise ValueError(f"DataLoader: expected a seed >= 0, received {generator}")
        return int(generator)
    return int(as_generator(generator).integers(0, 2**63 - 1))
