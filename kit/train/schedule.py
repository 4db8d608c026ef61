"""The learning-rate schedule: one-cycle, cosine or constant, per parameter group, stepped every optimizer step."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from kit.settings import Settings


def lr_factor(step: int, total: int, schedule: str, warmup: float) -> float:
    """Share of the peak learning rate at optimizer step `step` of `total`.

    onecycle: cosine rise from 1/25 of the peak over the warm-up share, then cosine fall to 1/25e4 (as
    torch's OneCycleLR); cosine: linear warm-up then cosine to 1%; constant: 1.
    Hand-written because the backbone's schedule starts only when it is unfrozen, which torch's one-cycle
    scheduler cannot express per parameter group.
    """
    if schedule == "constant" or total <= 0:
        return 1.0
    t = min(step / total, 1.0)
    if schedule == "onecycle":
        start, end = 1 / 25, 1 / 25e4
        if warmup > 0 and t < warmup:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * t / warmup))
        fall = (t - warmup) / max(1e-12, 1 - warmup)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * fall))
    warm_steps = warmup * total
    if step < warm_steps:
        return (step + 1) / (warm_steps + 1)
    fall = (step - warm_steps) / max(1e-12, total - warm_steps)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(fall, 1.0)))


def make_scheduler(optimizer: torch.optim.Optimizer, settings: Settings, steps_per_epoch: int):
    total = settings.epochs * steps_per_epoch
    frozen = settings.freeze_epochs * steps_per_epoch

    def head(step):
        return lr_factor(step, total, settings.schedule, settings.warmup)

    def backbone(step):
        return 0.0 if step < frozen else lr_factor(step - frozen, total - frozen, settings.schedule, settings.warmup)

    lambdas = [backbone if group["role"] == "backbone" else head for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
