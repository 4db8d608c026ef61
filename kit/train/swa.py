"""Stochastic weight averaging over the last N epochs (torch.optim.swa_utils), for validation and prediction.

At the end of each epoch in the window the model's weights join an equal-weight running mean; the averaged
model's batch-norm statistics are then recomputed on the training images (`update_bn`), because averaged
weights do not match any epoch's running statistics.
"""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, update_bn


class WeightAverage:
    """The SWA copy of `model`, averaging the epochs numbered first_epoch..epochs (1-based)."""

    def __init__(self, model: torch.nn.Module, epochs: int, last: int):
        self.first_epoch = epochs - last + 1
        self.averaged = AveragedModel(model)  # averages parameters; buffers (BN statistics) come from update_bn

    @property
    def module(self) -> torch.nn.Module:
        return self.averaged.module

    @property
    def count(self) -> int:
        return int(self.averaged.n_averaged)

    def in_window(self, epoch: int) -> bool:
        """Whether 1-based `epoch` is one of the averaged epochs."""
        return epoch >= self.first_epoch

    def capture(self, model: torch.nn.Module, batches) -> None:
        """Add `model`'s weights to the mean, then recompute BN statistics over `batches` (model inputs)."""
        self.averaged.update_parameters(model)
        update_bn(batches, self.averaged)

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
