"""Metrics scored on the probabilities themselves: macro ROC AUC, macro average precision, (weighted) binary
log loss, and for one class per image accuracy and Kaggle's multi-class log loss.

Each is a `ProbabilityMetric`: `score_probabilities(truth, probabilities, weights=None)` on an N x C 0/1 truth
and N x C probabilities, `per_class(...)` its per-class terms (NaN where a class cannot be scored), and the
attributes callers ask instead of testing names: `needs_thresholds` (False: nothing to tune), `higher_is_better`,
`tasks` (the competition tasks it is valid for), `calibrates` (log losses reward calibrated probabilities, so
`kit blend --calibrate auto` fits temperatures for them). `weights` are the spec's `class_weights` (one per class):
class-averaged metrics take a weighted mean over classes (RSNA's `any` x2 log loss); per-image metrics
(accuracy, mlogloss) refuse weights other than 1.

Values equal scikit-learn's `roc_auc_score`, `average_precision_score`, `log_loss` and `accuracy_score`
(tests/test_probability_metrics.py); written as vectorised numpy over all classes at once because calling
scikit-learn once per class costs a sort and validation per call, and RSNA's 752,803 x 6 OOF matrix is scored
hundreds of times by a hill climb (BENCHMARKS.md, "Probability metrics").
"""
from __future__ import annotations

import math

import numpy as np

from kit.errors import KitError

EPS = 1e-15  # Kaggle's clip for log losses
TASKS = ("multilabel", "multiclass")


class ProbabilityMetric:
    """A metric of the probabilities, with nothing to tune (see the module docstring)."""

    name = ""
    label = ""
    higher_is_better = True
    needs_thresholds = False
    tasks: tuple[str, ...] = TASKS
    calibration: str | None = None  # a log loss: "per-class" (binary) or "softmax" temperatures (kit.blend.calibration)
    takes_weights = True  # class weights give a weighted mean over classes

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"parse_metric({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ProbabilityMetric) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def calibrates(self) -> bool:
        """Whether a temperature fit can lower it (log losses reward calibrated probabilities)."""
        return self.calibration is not None

    @property
    def column(self) -> str:
        """history.csv's column of the metric (`val_logloss`); there is no `_tuned` twin (nothing to tune)."""
        return f"val_{self.name}"

    @property
    def history_columns(self) -> list[str]:
        return [self.column]

    @property
    def worst(self) -> float:
        return -math.inf if self.higher_is_better else math.inf

    def better(self, value: float, than: float) -> bool:
        """Whether `value` is strictly better than `than` in the metric's direction (NaN is never better)."""
        return bool(value > than) if self.higher_is_better else bool(value < than)

    def objective(self, value: float) -> float:
        """A value to maximise: the metric, or minus it where lower is better."""
        return value if self.higher_is_better else -value

    # -- scoring

    def per_class(self, truth: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The metric's term of each class (NaN where the class cannot be scored on these rows)."""
        raise NotImplementedError

    def score_probabilities(self, truth: np.ndarray, probabilities: np.ndarray, weights=None) -> float:
        """The metric of N x C probabilities against the N x C 0/1 truth: the (weighted) mean of the per-class
        terms over the classes that can be scored."""
        terms = self.per_class(truth, probabilities)
        weights = self._weights(weights, terms.shape[0])
        kept = ~np.isnan(terms)
        if not kept.any():
            return math.nan
        return float(np.average(terms[kept], weights=weights[kept]))

    def left_out(self, truth: np.ndarray) -> list[int]:
        """The classes this metric cannot score on these rows (left out of its mean)."""
        return []

    def _weights(self, weights, num_classes: int) -> np.ndarray:
        if weights is None:
            return np.ones(num_classes)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(weights) != num_classes:
            raise KitError(f"{self.name}: {len(weights)} class weights for {num_classes} classes")
        if not self.takes_weights and not np.all(weights == 1.0):
            raise KitError(f"competition.class_weights: {self.name} scores whole images, so class weights other "
                           "than 1 do not apply to it")
        return weights


def _matrices(truth, probabilities) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if truth.shape != probabilities.shape or truth.ndim != 2:
        raise KitError(f"truth of shape {truth.shape} scored against probabilities of shape {probabilities.shape}")
    return truth.astype(bool), probabilities


def _undefined(truth: np.ndarray) -> np.ndarray:
    """Classes with no positive or no negative row: ranking metrics cannot score them."""
    positives = truth.sum(axis=0)
    return (positives == 0) | (positives == len(truth))


class MacroAUC(ProbabilityMetric):
    """Mean column-wise ROC AUC; a class with no positive or no negative row is left out of the mean."""

    name, label = "macro_auc", "macro AUC"

    def per_class(self, truth, probabilities):
        truth, probabilities = _matrices(truth, probabilities)
        # AUC = P(score of a positive > score of a negative) + 1/2 P(tie): the Mann-Whitney U from the positives'
        # mid-ranks. Per class one sort; each run of tied scores counts its positives at the run's mean rank.
        n, num_classes = truth.shape
        positives = truth.sum(axis=0).astype(np.float64)
        negatives = n - positives
        rank_sum = np.zeros(num_classes)
        for c in range(num_classes):
            order = np.argsort(probabilities[:, c])
            ordered = probabilities[order, c]
            starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
            ends = np.append(starts[1:], n)
            hits = np.add.reduceat(truth[order, c].astype(np.float64), starts)
            rank_sum[c] = np.dot(hits, (starts + ends + 1) / 2.0)  # ranks start..end-1, 1-based: their mean
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
        return np.where(_undefined(truth), np.nan, auc)

    def left_out(self, truth):
        return [int(c) for c in np.flatnonzero(_undefined(np.asarray(truth, dtype=bool)))]


class MacroAP(ProbabilityMetric):
    """Mean average precision per class (scikit-learn's step-wise AP: sum over distinct thresholds of
    (R_n - R_n-1) P_n, tied scores one threshold); a class with no positive is left out of the mean."""

    name, label = "macro_ap", "macro AP"

    def per_class(self, truth, probabilities):
        truth, probabilities = _matrices(truth, probabilities)
        n, num_classes = truth.shape
        out = np.full(num_classes, np.nan)
        for c in range(num_classes):
            hits = truth[:, c]
            positives = int(hits.sum())
            if positives == 0:
                continue
            order = np.argsort(-probabilities[:, c], kind="stable")
            scores, ordered = probabilities[order, c], hits[order]
            # the last row of each run of tied scores: one threshold per distinct score
            ends = np.append(np.flatnonzero(scores[1:] != scores[:-1]), n - 1)
            true_positives = np.cumsum(ordered)[ends]
            precision = true_positives / (ends + 1.0)
            recall_steps = np.diff(np.concatenate([[0], true_positives])) / positives
            out[c] = float(np.sum(recall_steps * precision))
        return out

    def left_out(self, truth):
        return [int(c) for c in np.flatnonzero(np.asarray(truth, dtype=bool).sum(axis=0) == 0)]


class LogLoss(ProbabilityMetric):
    """Binary log loss over every image-class cell, probabilities clipped to [1e-15, 1 - 1e-15]; with class
    weights the weighted mean over cells (RSNA 2019: `any` weighted 2)."""

    name, label = "logloss", "log loss"
    higher_is_better = False
    calibration = "per-class"

    def per_class(self, truth, probabilities):
        truth, probabilities = _matrices(truth, probabilities)
        clipped = np.clip(probabilities, EPS, 1.0 - EPS)
        return -np.log(np.where(truth, clipped, 1.0 - clipped)).mean(axis=0)  # one log per cell


class Accuracy(ProbabilityMetric):
    """The share of images whose highest-probability class is their class (one class per image). Per class:
    the share of that class's images predicted as it (its recall)."""

    name, label = "accuracy", "accuracy"
    tasks = ("multiclass",)
    takes_weights = False

    def per_class(self, truth, probabilities):
        truth, probabilities = _matrices(truth, probabilities)
        actual, predicted = truth.argmax(axis=1), probabilities.argmax(axis=1)
        num_classes = truth.shape[1]
        counts = np.bincount(actual, minlength=num_classes).astype(np.float64)
        right = np.bincount(actual[actual == predicted], minlength=num_classes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(counts > 0, right / counts, np.nan)

    def score_probabilities(self, truth, probabilities, weights=None):
        truth, probabilities = _matrices(truth, probabilities)
        self._weights(weights, truth.shape[1])
        return float(np.mean(truth.argmax(axis=1) == probabilities.argmax(axis=1)))


class MultiClassLogLoss(ProbabilityMetric):
    """Kaggle's multi-class log loss: clip to [1e-15, 1 - 1e-15], renormalise each row, then the mean of
    -log p(true class). Per class: the mean over that class's images."""

    name, label = "mlogloss", "multi-class log loss"
    higher_is_better = False
    tasks = ("multiclass",)
    calibration = "softmax"
    takes_weights = False

    @staticmethod
    def true_class_losses(truth, probabilities) -> tuple[np.ndarray, np.ndarray]:
        truth, probabilities = _matrices(truth, probabilities)
        clipped = np.clip(probabilities, EPS, 1.0 - EPS)
        clipped /= clipped.sum(axis=1, keepdims=True)
        actual = truth.argmax(axis=1)
        return actual, -np.log(clipped[np.arange(len(actual)), actual])

    def per_class(self, truth, probabilities):
        actual, losses = self.true_class_losses(truth, probabilities)
        num_classes = np.asarray(truth).shape[1]
        counts = np.bincount(actual, minlength=num_classes).astype(np.float64)
        totals = np.bincount(actual, weights=losses, minlength=num_classes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(counts > 0, totals / counts, np.nan)

    def score_probabilities(self, truth, probabilities, weights=None):
        self._weights(weights, np.asarray(truth).shape[1])
        return float(self.true_class_losses(truth, probabilities)[1].mean())


PROBABILITY_METRICS: dict[str, ProbabilityMetric] = {
    metric.name: metric for metric in (MacroAUC(), MacroAP(), LogLoss(), Accuracy(), MultiClassLogLoss())
}
