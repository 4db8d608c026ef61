"""Which images a process sees: oversampling of rare classes (`--sampler balanced`) and shards for DDP."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler


def balanced_weights(targets: np.ndarray, power: float = 0.5) -> torch.Tensor:
    """Sampling weight per image: (1 / frequency of its rarest class) ** power; 1 for an image without labels.

    power 0 is uniform sampling, 1 draws every class about equally often (by its rarest member).
    """
    targets = np.asarray(targets, dtype=bool)
    frequency = targets.mean(axis=0)
    inverse = np.divide(1.0, frequency, out=np.zeros_like(frequency), where=frequency > 0)
    rarest = np.where(targets, inverse[None, :], 0.0).max(axis=1)
    return torch.as_tensor(np.where(rarest > 0, rarest, 1.0) ** power, dtype=torch.double)


class DistributedWeightedSampler(Sampler[int]):
    """`--sampler balanced` under DDP: one weighted draw with replacement, split over the processes.

    Every rank draws the same indices (same seed and epoch) and keeps every world_size-th one, so the ranks
    together sample exactly what one process would. Hand-written because torch has no distributed
    counterpart of WeightedRandomSampler.
    """

    def __init__(self, weights: torch.Tensor, num_samples: int, rank: int, world_size: int, seed: int = 0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.per_rank = max(1, num_samples // world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        draws = torch.multinomial(self.weights, self.per_rank * self.world_size, True, generator=generator)
        return iter(draws[self.rank::self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank


class ShardSampler(Sampler[int]):
    """Indices rank, rank + world_size, ...: every sample exactly once over the ranks, in a known order.

    torch's DistributedSampler pads the shards to equal length by repeating samples, which would count
    them twice in validation metrics and predictions.
    """

    def __init__(self, num_samples: int, rank: int, world_size: int):
        self.indices = range(rank, num_samples, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
