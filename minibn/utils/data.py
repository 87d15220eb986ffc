"""Datasets and batches in the shape of ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``Subset``, ``random_split``, the samplers and ``DataLoader`` with PyTorch's arguments.

A batch of a dataset whose samples are tuples is the tuple of the stacked fields. A
TensorDataset (or a Subset of one) is batched by indexing its tensors with the batch's
indices at once, not sample by sample.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .. import random
from ..creation import tensor
from ..ops import stack
from ..tensor import Tensor


class Dataset:
    """A sized, indexable collection of samples: subclasses give ``__len__`` and ``__getitem__``."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples (t_1[i], ..., t_k[i]) of tensors with one first dimension."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        n = tensors[0].shape[0] if tensors[0].ndim else None
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor")
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError(f"TensorDataset: tensor {i} has shape {tuple(t.shape)}; every tensor needs the "
                                 f"same first dimension ({n})")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def batch(self, indices: np.ndarray):
        """The samples at ``indices`` as one tuple of tensors (one indexing per tensor)."""
        return tuple(t[indices] for t in self.tensors)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: index {bad[0]} is out of range for a dataset of {n} samples")

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)

    def batch(self, indices: np.ndarray):
        return _fetch(self.dataset, np.asarray(self.indices)[np.asarray(indices, dtype=np.int64)])


def random_split(dataset, lengths, generator=None) -> list:
    """Disjoint random Subsets of the given ``lengths`` (integers summing to len(dataset), or
    fractions summing to 1: each gets floor(f n), the remainder one by one from the first)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) for v in lengths):
        if not math.isclose(sum(lengths), 1) or min(lengths) < 0:
            raise ValueError(f"random_split: fractions must be >= 0 and sum to 1, got {lengths}")
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(v, numbers.Integral) or v < 0 for v in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths must be integers >= 0 summing to the {n} samples, got {lengths}")
    order = random.resolve(generator).permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[start:start + length]))
        start += length
    return out


class Sampler:
    """An iterable of dataset indices (subclasses give ``__iter__`` and, where known, ``__len__``)."""

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """The indices in a new random order each pass (or ``num_samples`` drawn with ``replacement``),
    from ``generator`` (default: the one ``mb.manual_seed`` seeds)."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral)
                                        or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got {num_samples!r}")
        random.resolve(generator)
        self.data_source, self.replacement, self._num_samples, self.generator = \
            data_source, bool(replacement), num_samples, generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        rng, n = random.resolve(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        draws = [rng.permutation(n) for _ in range(-(-self.num_samples // n))] if n else [np.arange(0)]
        return iter(np.concatenate(draws)[:self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order each pass."""

    def __init__(self, indices, generator=None):
        random.resolve(generator)
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        order = random.resolve(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order)

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        self.weights = np.asarray(weights.tolist() if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if self.weights.ndim != 1 or (self.weights < 0).any() or not self.weights.sum() > 0:
            raise ValueError("WeightedRandomSampler: weights must be a sequence of non-negative numbers, not all 0")
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer, got {num_samples!r}")
        random.resolve(generator)
        self.num_samples, self.replacement, self.generator = int(num_samples), bool(replacement), generator

    def __iter__(self):
        rng = random.resolve(self.generator)
        return iter(rng.choice(len(self.weights), self.num_samples, self.replacement,
                               self.weights / self.weights.sum()).tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler``; ``drop_last`` leaves out a last, smaller one."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), bool(drop_last)

    def __iter__(self):
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def get_worker_info():
    """None: PyTorch's answer in the main process, where minibn's DataLoader makes every batch."""
    return None


def default_collate(samples: list):
    """One batch from a list of samples: tensors and arrays stacked, numbers made a tensor
    (float64 for Python floats, as in PyTorch), tuples, lists and dicts collated field by field."""
    first = samples[0]
    if isinstance(first, Tensor):
        return stack(samples)
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        fields = [default_collate([s[k] for s in samples]) for k in range(len(first))]
        return type(first)(*fields) if hasattr(first, "_fields") else type(first)(fields)
    if isinstance(first, str):
        return list(samples)
    return tensor(np.asarray(samples))


def _fetch(dataset, indices):
    if hasattr(dataset, "batch"):
        return dataset.batch(np.asarray(indices, dtype=np.int64))
    return default_collate([dataset[int(i)] for i in indices])


def _check_nonnegative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"DataLoader: {name} option should be a non-negative integer, got {value!r}")


class DataLoader:
    """Batches of ``dataset``, with PyTorch's arguments: ``batch_size`` samples each (None: the
    samples one by one, uncollated), in order or (``shuffle``) in a new random order every pass
    drawn from ``generator`` (default: the one ``mb.manual_seed`` seeds), or in the order of a
    ``sampler`` or ``batch_sampler``; ``drop_last`` leaves out a last, smaller batch;
    ``collate_fn`` makes a batch from a list of samples.

    Batches are made in this process, in order, whatever ``num_workers`` says: no worker starts,
    so ``worker_init_fn`` is never called, and ``pin_memory``, ``prefetch_factor``,
    ``persistent_workers``, ``timeout`` and ``multiprocessing_context`` are checked as PyTorch checks
    them and change nothing. A dataset with a ``batch`` method (TensorDataset, a Subset of one) is
    batched by one indexing per tensor."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True):
        _check_nonnegative_int("num_workers", num_workers)
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified with num_workers > 0")
        if num_workers == 0 and persistent_workers:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                             "and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if batch_size is not None and batch_sampler is None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
                raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        random.resolve(generator)  # a wrong generator is refused now
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), drop_last)
        self.dataset, self.batch_size, self.drop_last, self.generator = \
            dataset, None if batch_size is None else int(batch_size), bool(drop_last), generator
        self.sampler, self.batch_sampler, self.collate_fn = sampler, batch_sampler, collate_fn
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)

    def __len__(self):
        return len(self.sampler if self.batch_sampler is None else self.batch_sampler)

    def __iter__(self):
        if self.batch_sampler is None:  # batch_size=None: samples one by one
            for i in self.sampler:
                yield self.dataset[int(i)]
            return
        for indices in self.batch_sampler:
            if self.collate_fn is None:
                yield _fetch(self.dataset, indices)
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])
