"""Oversampling of images that hold rare classes (`--sampler balanced`)."""
from __future__ import annotations

import numpy as np
import torch


def balanced_weights(targets: np.ndarray, power: float = 0.5) -> torch.Tensor:
    """Sampling weight per image: (1 / frequency of its rarest class) ** power; 1 for an image without labels.

    power 0 is uniform sampling, 1 draws every class about equally often (by its rarest member).
    """
    targets = np.asarray(targets, dtype=bool)
    frequency = targets.mean(axis=0)
    inverse = np.divide(1.0, frequency, out=np.zeros_like(frequency), where=frequency > 0)
    rarest = np.where(targets, inverse[None, :], 0.0).max(axis=1)
    return torch.as_tensor(np.where(rarest > 0, rarest, 1.0) ** power, dtype=torch.double)
