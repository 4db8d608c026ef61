"""Batch-level regularisers of the training step: mixup / cutmix (timm's `Mixup` with multi-hot targets) and
label smoothing. Validation and prediction never go through here.

Targets come out soft: mixing blends two images' multi-hot rows with the image weights (for cutmix, the
pasted area's share), and label smoothing moves every 0/1 towards the middle, to eps / 1 - eps.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch


def smooth_targets(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """0 -> eps, 1 -> 1 - eps (and soft values linearly in between)."""
    return targets * (1 - 2 * eps) + eps if eps else targets


@contextlib.contextmanager
def _numpy_state(state: dict):
    """Run with numpy's global generator set to `state` (timm's Mixup draws from it); the caller's global
    state is put back afterwards and `state` is updated in place, so mixing has its own reproducible stream."""
    outer = np.random.get_state(legacy=False)
    np.random.set_state(state["numpy"])
    try:
        yield
    finally:
        state["numpy"] = np.random.get_state(legacy=False)
        np.random.set_state(outer)


class BatchMixer:
    """mixup(alpha) / cutmix(alpha) with probability `prob` per batch (cutmix instead of mixup with
    `switch_prob` when both are on), then label smoothing by `smoothing`. `reseed(seed)` each epoch makes
    the draws depend only on (seed, epoch), so a resumed run mixes exactly as an uninterrupted one."""

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0,
                 switch_prob: float = 0.5, smoothing: float = 0.0):
        self.smoothing = smoothing
        self.mixup = None
        if mixup > 0 or cutmix > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=prob, switch_prob=switch_prob,
                               mode="batch", label_smoothing=0.0, num_classes=num_classes, multi_label=True)
        self._state = {"numpy": np.random.RandomState(0).get_state(legacy=False)}

    @property
    def active(self) -> bool:
        return self.mixup is not None or self.smoothing > 0

    def reseed(self, seed: int) -> None:
        self._state["numpy"] = np.random.RandomState(seed % 2**32).get_state(legacy=False)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix `images` (normalised float, changed in place) and return them with their soft targets."""
        targets = targets.float()
        even = len(images) - len(images) % 2  # timm pairs image i with image n-1-i: an odd last one stays as is
        if self.mixup is not None and even:
            with _numpy_state(self._state):
                _, mixed = self.mixup(images[:even], targets[:even])
            targets = torch.cat([mixed.to(targets.dtype), targets[even:]])
        return images, smooth_targets(targets, self.smoothing)


def make_mixer(settings, num_classes: int) -> BatchMixer | None:
    """The run's mixer, or None when mixup, cutmix and label smoothing are all off."""
    mixer = BatchMixer(num_classes, settings.mixup, settings.cutmix, settings.mix_prob, settings.mix_switch_prob,
                       settings.label_smoothing)
    return mixer if mixer.active else None
