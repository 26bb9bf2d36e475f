"""Randomness of the data pipeline as a function of (seed, epoch, sample), never of global state or workers.

The training order of an epoch comes from a generator seeded by (seed, epoch); the augmentation of a sample from
one seeded by (seed, epoch, index). The sampler yields `(index, epoch)` keys, so the epoch travels with each index
into the loader workers (an attribute set on the dataset in the main process never reaches persistent workers),
and the dataset seeds the augmentation from the key before applying it. The same seed therefore gives the same
batches with any number of workers, and a resumed run redraws exactly the epochs it redoes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sized

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

SampleKey = tuple[int, int]  # (index into the dataset, epoch)


def sample_generators(seed: int, epoch: int, index: int) -> tuple[np.random.Generator, random.Random]:
    """Independent NumPy and Python generators for one sample of one epoch (what albumentations draws from)."""
    numpy_part, python_part = np.random.SeedSequence([seed, epoch, index]).spawn(2)
    python_seed = int.from_bytes(python_part.generate_state(4).tobytes(), "little")
    return np.random.default_rng(numpy_part), random.Random(python_seed)


def seed_transform(transform: Callable | None, seed: int, epoch: int, index: int) -> None:
    """Point an albumentations transform (Compose or single) at the generators of (seed, epoch, index).

    Transforms without `set_random_state` are left as they are: they must be deterministic or draw from
    generators of their own.
    """
    set_state = getattr(transform, "set_random_state", None)
    if callable(set_state):
        set_state(*sample_generators(seed, epoch, index))


def split_key(key: int | SampleKey) -> SampleKey:
    """(index, epoch) from a sampler key; plain indices (evaluation loaders) are epoch 0."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), 0


def distributed_world() -> tuple[int, int]:
    """(number of processes, this process's rank): (1, 0) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class EpochSeededSampler(DistributedSampler):
    """Shuffles by a permutation drawn from (seed, epoch) and yields `(index, epoch)` keys.

    It is a DistributedSampler, so Lightning calls `set_epoch` every epoch and keeps it under DDP instead of
    wrapping it: each of `num_replicas` processes takes every `num_replicas`-th index of the same permutation
    (padded by repetition to equal length, as DistributedSampler does).
    """

    def __init__(self, data_source: Sized, seed: int, num_replicas: int | None = None, rank: int | None = None) -> None:
        world, own_rank = distributed_world()
        replicas = world if num_replicas is None else num_replicas
        rank = own_rank if rank is None else rank
        super().__init__(data_source, num_replicas=replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of every index in `epoch`, before the split between processes."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))

    def __iter__(self) -> Iterator[SampleKey]:
        order = self.permutation(self.epoch).tolist()
        padding = self.total_size - len(order)
        if padding > 0:
            order += (order * (padding // len(order) + 1))[:padding]
        epoch = int(self.epoch)
        return iter([(index, epoch) for index in order[self.rank:self.total_size:self.num_replicas]])
