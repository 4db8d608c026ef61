"""Losses on logits: BCE, focal, soft-F1 and weighted sums of them (multi-label); softmax cross-entropy for
`task: multiclass` (`kit.train.task`).

Every loss takes soft targets in [0, 1] as well as 0/1 ones (mixup, cutmix and label smoothing make them).

Focal and soft-F1 are written here because torchvision's `sigmoid_focal_loss` takes no per-class positive
weights and no library ships a soft (differentiable) macro F1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def bce_loss(logits, targets, pos_weight=None):
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)


def focal_loss(logits, targets, pos_weight=None, gamma: float = 2.0):
    """BCE scaled by |target - p|^gamma, which shrinks the loss of examples already classified well.

    For 0/1 targets this is the usual (1 - p_t)^gamma; for soft ones it is the quality focal loss (Li et al.,
    2020), still smallest where p equals the target (the p_t form would weigh a 0.5 target the same at any p).
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    prob = torch.sigmoid(logits)
    return ((targets - prob).abs() ** gamma * bce).mean()


def soft_f1_loss(logits, targets, eps: float = 1e-7):
    """1 - macro F1 computed with probabilities in place of 0/1 predictions (and soft targets in place of
    0/1 labels), over the batch."""
    prob = torch.sigmoid(logits)
    tp = (prob * targets).sum(dim=0)
    f1 = 2 * tp / (prob.sum(dim=0) + targets.sum(dim=0) + eps)
    return 1 - f1.mean()


class MultiLabelLoss(nn.Module):
    """sum(weight * term) over {'bce' | 'focal' | 'soft_f1': weight}; computed in float32."""

    def __init__(self, terms: dict[str, float], pos_weight: torch.Tensor | None = None, gamma: float = 2.0):
        super().__init__()
        self.terms = {name: float(w) for name, w in terms.items() if w}
        self.gamma = gamma
        self.register_buffer("pos_weight", pos_weight, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, targets = logits.float(), targets.float()
        total = logits.new_zeros(())
        for name, weight in self.terms.items():
            if name == "bce":
                value = bce_loss(logits, targets, self.pos_weight)
            elif name == "focal":
                value = focal_loss(logits, targets, self.pos_weight, self.gamma)
            else:
                value = soft_f1_loss(logits, targets)
            total = total + weight * value
        return total


def positive_weights(targets: np.ndarray, max_weight: float = 10.0) -> torch.Tensor:
    """negatives / positives per class, clipped to [1, max_weight] (a class without positives gets max)."""
    targets = np.asarray(targets, dtype=np.float64)
    positives = targets.sum(axis=0)
    ratio = np.divide(len(targets) - positives, positives, out=np.full(targets.shape[1], np.inf), where=positives > 0)
    return torch.as_tensor(np.clip(ratio, 1.0, max_weight), dtype=torch.float32)


def make_loss(terms: dict[str, float], targets: np.ndarray | None = None, pos_weight: str = "none",
              gamma: float = 2.0, pos_weight_max: float = 10.0, task: str = "multilabel") -> nn.Module:
    """The training loss: `terms` over sigmoids for a multi-label task; softmax cross-entropy for a multiclass
    one (`kit.train.task`), where only the default `bce` term is accepted."""
    if task == "multiclass":
        from kit.train.task import SoftmaxCrossEntropy, check_loss

        check_loss(task, terms, pos_weight)
        return SoftmaxCrossEntropy()
    weights = positive_weights(targets, pos_weight_max) if pos_weight == "auto" and targets is not None else None
    return MultiLabelLoss(terms, weights, gamma)
