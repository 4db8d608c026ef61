"""Macro F1 and the exact per-class threshold search (shared by `kit train` and `kit blend`).

A sample is predicted positive for class c when its probability is >= thresholds[c].
"""
from __future__ import annotations

import numpy as np


def f1_per_class(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 of each column of two N x C 0/1 matrices; a class with no true and no predicted positives scores 0
    (scikit-learn's `zero_division=0`)."""
    truth = np.asarray(truth, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    tp = (truth & predicted).sum(axis=0)
    denominator = truth.sum(axis=0) + predicted.sum(axis=0)
    return np.divide(2.0 * tp, denominator, out=np.zeros(truth.shape[1]), where=denominator > 0)


def binarize(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    return np.asarray(probabilities) >= np.asarray(thresholds)


def macro_f1(truth: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | float = 0.5) -> float:
    return float(f1_per_class(truth, binarize(probabilities, thresholds)).mean())


def best_thresholds(truth: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every class, the threshold that maximises that class's F1 (hence macro F1), exactly.

    Written by hand because no library does this. Cutting the sorted scores of a class with K predicted
    positives, TP of them true, gives F1 = 2 TP / (K + P). A best cut always keeps a positive as its lowest
    score (dropping trailing negatives only helps), so F1 is evaluated at each positive's score, with K and
    TP read off the class's sorted scores by binary search: one sort per class, no N x C temporaries. Tied
    scores are never split. Returns (thresholds, f1); the threshold is the midpoint between the last score
    kept and the next one, the highest among equally good cuts.
    """
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(probabilities, dtype=np.float64)
    n, num_classes = scores.shape
    scores_t, truth_t = np.ascontiguousarray(scores.T), np.ascontiguousarray(truth.T)
    thresholds, best_f1 = np.empty(num_classes), np.zeros(num_classes)
    for c in range(num_classes):
        ascending = np.sort(scores_t[c])
        positives = np.sort(scores_t[c][truth_t[c]])
        if len(positives) == 0:  # no cut scores above 0: predict nothing
            thresholds[c] = np.nextafter(ascending[-1], np.inf)
            continue
        candidates = positives[::-1]  # from the highest score down, so argmax keeps the highest threshold
        predicted = n - np.searchsorted(ascending, candidates, side="left")
        true_positives = len(positives) - np.searchsorted(positives, candidates, side="left")
        f1 = 2.0 * true_positives / (predicted + len(positives))
        best = int(np.argmax(f1))
        kept, count = candidates[best], predicted[best]
        thresholds[c] = (kept + ascending[n - count - 1]) / 2.0 if count < n else kept
        best_f1[c] = f1[best]
    return thresholds, best_f1


def best_global_threshold(truth: np.ndarray, probabilities: np.ndarray, grid: np.ndarray | None = None) -> tuple[float, float]:
    """The single threshold shared by all classes that maximises macro F1, searched over a fine grid.

    Each class is sorted once and its counts at every grid point read off by binary search, instead of
    binarising the whole matrix once per grid point.
    """
    grid = np.linspace(0.01, 0.99, 99) if grid is None else np.asarray(grid, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(probabilities, dtype=np.float64)
    n, num_classes = scores.shape
    scores_t, truth_t = np.ascontiguousarray(scores.T), np.ascontiguousarray(truth.T)
    predicted = np.empty((num_classes, len(grid)), dtype=np.int64)  # scores >= threshold
    true_positives = np.empty_like(predicted)
    for c in range(num_classes):
        positives = np.sort(scores_t[c][truth_t[c]])
        predicted[c] = n - np.searchsorted(np.sort(scores_t[c]), grid, side="left")
        true_positives[c] = len(positives) - np.searchsorted(positives, grid, side="left")
    denominator = truth_t.sum(axis=1)[:, None] + predicted
    f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    macro = f1.mean(axis=0)
    best = int(np.argmax(macro))
    return float(grid[best]), float(macro[best])
