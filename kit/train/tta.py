"""Test-time augmentation: average probabilities (sigmoid, or softmax for a multiclass model) over flips and 90-degree rotations of a batch.

The views are the dihedral group of the square: 'd4' all 8 (4 rotations, each with and without a flip),
'flip' the 4 flips (identity, horizontal, vertical, both), 'none' the identity. Hand-written because a view
is two tensor ops and the predictions of a classifier need no inverse transform.
"""
from __future__ import annotations

import torch

from kit.errors import check_name
from kit.train.task import probabilities

# (quarter turns, horizontal flip first)
VIEWS = {
    "none": [(0, False)],
    "flip": [(0, False), (0, True), (2, True), (2, False)],  # identity, h-flip, v-flip (= rot180 of h-flip), both
    "d4": [(k, flip) for flip in (False, True) for k in range(4)],
}


def apply_view(images: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """One view of an N x C x H x W batch."""
    if flip:
        images = torch.flip(images, dims=(-1,))
    return torch.rot90(images, turns, dims=(-2, -1)) if turns else images


def views(mode: str) -> list[tuple[int, bool]]:
    check_name(mode, VIEWS, "TTA")
    return VIEWS[mode]


@torch.inference_mode()
def tta_probabilities(model: torch.nn.Module, images: torch.Tensor, mode: str = "d4") -> torch.Tensor:
    """Mean over the views of the model's probabilities (`kit.train.task.probabilities`), in float32."""
    total = None
    for turns, flip in views(mode):
        probs = probabilities(model, model(apply_view(images, turns, flip)))
        total = probs if total is None else total + probs
    return total / len(views(mode))
