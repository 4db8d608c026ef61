"""Turning blended scores into labels: per-class, global or ratio thresholds, and the no-empty rule.

A sample is positive for class c when its score is >= thresholds[c] (the rule of `kit.score.metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kit.errors import KitError, check_name
from kit.score.metrics import Metric, parse_metric

MODES = ("per-class", "global", "ratio")


def check_mode(mode: str) -> None:
    """An unknown threshold mode is an error listing MODES."""
    check_name(mode, MODES, "threshold mode")


@dataclass
class ThresholdFit:
    """The thresholds of one fit, and which classes fell back to the global threshold."""

    thresholds: np.ndarray
    global_threshold: float | None  # computed only where used (global mode, or a class falling back)
    mode: str
    fallback: list[int] = field(default_factory=list)


def rate_thresholds(scores: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per class, the threshold at which the share of `scores` predicted positive is `rates[c]` (rounded to
    whole samples; ties at the cut may add a few more). Thresholds sit midway between kept and dropped scores."""
    scores = np.sort(np.asarray(scores, dtype=np.float64), axis=0)[::-1]  # descending, per column
    n, num_classes = scores.shape
    keep = np.clip(np.rint(np.asarray(rates, dtype=np.float64) * n).astype(np.int64), 0, n)
    columns = np.arange(num_classes)
    last_kept = scores[np.maximum(keep - 1, 0), columns]
    first_dropped = scores[np.minimum(keep, n - 1), columns]
    thresholds = np.where(keep >= n, scores[-1], (last_kept + first_dropped) / 2.0)
    return np.where(keep <= 0, np.nextafter(scores[0], np.inf), thresholds)


def fit_thresholds(truth: np.ndarray, scores: np.ndarray, mode: str = "per-class", min_positives: int = 5,
                   target_scores: np.ndarray | None = None, metric: Metric | str | None = None) -> ThresholdFit:
    """Fit thresholds on labelled scores (OOF) for `metric` (macro F1 by default). `per-class`: the search of
    `Metric.best_thresholds` (exact per class for macro averaging, coordinate ascent from the best global
    threshold for micro and samples). `ratio` mode needs `target_scores` (the test predictions): each class's
    threshold makes its predicted rate on them match its rate in `truth`. In `per-class` and `ratio` mode,
    classes with fewer than `min_positives` positives in `truth` use the global threshold."""
    check_mode(mode)
    metric = parse_metric(metric)
    truth = np.asarray(truth, dtype=bool)
    few = truth.sum(axis=0) < min_positives
    # micro and samples searches start from the global threshold, so it is needed there whatever `few` says
    needs_global = mode == "global" or few.any() or (mode == "per-class" and metric.average != "macro")
    global_threshold = metric.best_global_threshold(truth, scores)[0] if needs_global else None
    if mode == "global":
        return ThresholdFit(np.full(truth.shape[1], global_threshold), global_threshold, mode)
    if mode == "per-class":
        thresholds, _ = metric.best_thresholds(truth, scores, fixed=few, start=global_threshold)
    else:
        if target_scores is None:
            raise KitError("ratio thresholds need the test predictions to match rates on")
        thresholds = rate_thresholds(target_scores, truth.mean(axis=0))
    if not few.any():
        return ThresholdFit(thresholds, global_threshold if mode == "per-class" else None, mode)
    thresholds = np.where(few, global_threshold, thresholds)
    return ThresholdFit(thresholds, global_threshold, mode, [int(c) for c in np.flatnonzero(few)])


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray | float, no_empty: bool = True) -> np.ndarray:
    """Scores -> a 0/1 matrix; with `no_empty`, a row with no class at or above its threshold gets its
    highest-scoring class."""
    scores = np.asarray(scores)
    predicted = scores >= np.asarray(thresholds)
    if no_empty:
        empty = np.flatnonzero(~predicted.any(axis=1))
        predicted[empty, np.argmax(scores[empty], axis=1)] = True
    return predicted
