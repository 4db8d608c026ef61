"""What the competition's task and metric change in training.

`task: multilabel` (a sigmoid per class, the default) or `task: multiclass` (one class per image: softmax over
the classes, cross-entropy, a prior bias of log class frequencies). The model carries its task (`model.task`,
set by `kit.train.models.build_model` from the spec), so every prediction path (validation, TTA, `kit predict`,
`kit infer`) turns logits into probabilities the same way through `probabilities(model, logits)`; TTA averages
those probabilities.

The epoch's scores come from the metric: an F-score is scored at 0.5 and at thresholds tuned on the validation
predictions (`val_<metric>` and `val_<metric>_tuned`); a probability metric (AUC, log loss, accuracy) has
nothing to tune, so history.csv holds `val_<metric>` alone, and `--monitor val_metric_tuned` (the default)
reads it. The monitored column is compared in its own direction: lower is better for `val_loss` and for log
losses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kit.errors import KitError

TASKS = ("multilabel", "multiclass")
MONITORS = {"val_metric_tuned": "_tuned", "val_metric": "", "val_loss": None}  # --monitor -> history column


def task_of(spec) -> str:
    return spec.task


def class_weights(spec) -> np.ndarray:
    """The spec's `class_weights`, one weight per class (1 where it names none)."""
    return spec.class_weight_array()


# ---------------------------------------------------------------- logits -> probabilities


def probabilities(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes for a multiclass model, a sigmoid per class otherwise; in float32."""
    logits = logits.float()
    return torch.softmax(logits, dim=1) if getattr(model, "task", "multilabel") == "multiclass" else torch.sigmoid(logits)


def prior_bias(targets: np.ndarray, task: str) -> np.ndarray:
    """The head's starting bias: each class's log-odds (sigmoid) or log frequency (softmax, whose output at that
    bias is the class frequencies), so the first predictions are the train prior."""
    p = np.clip(np.asarray(targets, dtype=np.float64).mean(axis=0), 1e-4, 1 - 1e-4)
    if task == "multiclass":
        return np.log(p / p.sum())
    return np.log(p / (1 - p))


# ---------------------------------------------------------------- the loss of one class per image


class SoftmaxCrossEntropy(nn.Module):
    """Cross-entropy of softmax(logits) against target distributions. Soft targets (mixup, cutmix, label
    smoothing of each cell towards eps / 1 - eps) are renormalised to sum to 1 per row first."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.float()
        targets = targets / targets.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return F.cross_entropy(logits.float(), targets)


def check_loss(task: str, terms: dict[str, float], pos_weight: str) -> None:
    """Multi-label loss settings refused for a multiclass competition, each with one line."""
    if task != "multiclass":
        return
    other = sorted(name for name in terms if name != "bce")
    if other:
        raise KitError(f"train.loss: {'+'.join(other)} is a multi-label loss; task: multiclass trains with softmax "
                       "cross-entropy (loss: bce)")
    if pos_weight != "none":
        raise KitError("train.pos_weight: per-class positive weights are for sigmoid losses; task: multiclass "
                       "trains with softmax cross-entropy (pos_weight: none)")


# ---------------------------------------------------------------- the epoch's scores and the monitor


def history_columns(metric) -> list[str]:
    """history.csv's columns; the metric's are named after it: val_samples_f2 (at 0.5) and val_samples_f2_tuned,
    or val_logloss alone for a metric without thresholds."""
    return ["epoch", "lr", "train_loss", "val_loss", *metric.history_columns, "seconds"]


def metric_scores(metric, truth: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """The metric's history columns for one epoch's validation predictions."""
    if metric.needs_thresholds:
        return {metric.column: metric.at(truth, probs), f"{metric.column}_tuned": metric.tuned(truth, probs)}
    return {metric.column: metric.score_probabilities(truth, probs, weights)}


def metric_text(metric, row: dict) -> str:
    """The epoch line's part for the metric: 'macro_f1 0.6120  tuned 0.6544' or 'logloss 0.2113'."""
    text = f"{metric.name} {row[metric.column]:.4f}"
    return text + f"  tuned {row[metric.column + '_tuned']:.4f}" if metric.needs_thresholds else text


@dataclass(frozen=True)
class Monitor:
    """The history column that picks best.pt, and its direction."""

    column: str
    higher_is_better: bool

    def better(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


def monitor_for(monitor: str, metric) -> Monitor:
    """--monitor val_metric_tuned | val_metric | val_loss -> the column it reads and which way is better."""
    if monitor not in MONITORS:
        raise KitError(f"--monitor {monitor!r}: expected one of {', '.join(MONITORS)}")
    suffix = MONITORS[monitor]
    if suffix is None:
        return Monitor("val_loss", False)
    return Monitor(metric.column + (suffix if metric.needs_thresholds else ""), metric.higher_is_better)
