"""Test-time augmentation in large batches on the device: every view of a uint8 batch made there at once
(views x images), normalised once, passed through the model in as few forward passes as `max_batch` allows.

The views are kit.train.tta's (`apply_view`, in `views(mode)` order); a view is a flip/rotation of whole pixels,
which commutes with per-channel normalisation, so making it on the uint8 batch gives the same input as making it
on the normalised one and is a quarter of the memory traffic.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from kit.train.task import probabilities
from kit.train.tta import apply_view, views


def view_batch(images: torch.Tensor, mode: str) -> torch.Tensor:
    """N x C x H x W -> (views * N) x C x H x W: view 0 of every image, then view 1, ... (as kit.train.tta's)."""
    return torch.cat([apply_view(images, turns, flip) for turns, flip in views(mode)])


@torch.inference_mode()
def batch_tta_probabilities(model: torch.nn.Module, images: torch.Tensor, mode: str,
                            to_input: Callable[[torch.Tensor], torch.Tensor],
                            max_batch: int | None = None) -> torch.Tensor:
    """Mean over the views of the model's probabilities (`kit.train.task.probabilities`: softmax for a multiclass
    model, a sigmoid per class otherwise), float32, N x classes. `images`: the uint8 batch (any
    device); `to_input` normalises a uint8 batch into the model's input; `max_batch`: most images per forward
    pass (default: all views of the batch in one)."""
    count = len(views(mode))
    stacked = view_batch(images, mode)
    max_batch = max_batch or len(stacked)
    probs = [probabilities(model, model(to_input(chunk))) for chunk in torch.split(stacked, max_batch)]
    return torch.cat(probs).view(count, len(images), -1).mean(0)
