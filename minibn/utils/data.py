"""Datasets and batches in the shape of ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``Subset``, ``random_split`` and ``DataLoader(dataset, batch_size, shuffle, drop_last, generator)``.

A batch of a dataset whose samples are tuples is the tuple of the stacked fields. A
TensorDataset (or a Subset of one) is batched by indexing its tensors with the batch's
indices at once, not sample by sample.
"""

from __future__ import annotations

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
        return _fetch(self.dataset, np.asarray(self.indices)[indices])


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


def _fetch(dataset, indices: np.ndarray):
    if hasattr(dataset, "batch"):
        return dataset.batch(indices)
    return _collate([dataset[int(i)] for i in indices])


def _collate(samples: list):
    first = samples[0]
    if isinstance(first, tuple):
        return tuple(_collate([s[k] for s in samples]) for k in range(len(first)))
    if isinstance(first, Tensor):
        return stack(samples)
    return tensor(np.asarray(samples))


class DataLoader:
    """Batches of ``dataset``: ``batch_size`` samples each, in order or (``shuffle``) in a new
    random order every pass, drawn from ``generator`` (default: the one ``mb.manual_seed``
    seeds); ``drop_last`` leaves out a last, smaller batch."""

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 generator=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        random.resolve(generator)  # a wrong generator is refused now
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.generator = bool(shuffle), bool(drop_last), generator

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = random.resolve(self.generator).permutation(n) if self.shuffle else np.arange(n)
        for k in range(len(self)):
            yield _fetch(self.dataset, order[k * self.batch_size:(k + 1) * self.batch_size])
