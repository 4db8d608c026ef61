"""Blending for a metric scored on the probabilities (AUC, AP, log loss, accuracy): no thresholds to fit.

The blend's scores are the metric on the OOF probabilities: `oof` (weights, and a calibration where there is
one, fit on every OOF row: in-sample), `calibrated` (the same after temperature scaling; present only when
calibrating) and `cv` (weights and calibration fit on k-1 folds, the held-out fold scored with them). Per
class, the metric's own terms (AUC of each class, log loss of each class, ...), NaN where a class cannot be
scored on these rows.
"""
from __future__ import annotations

import numpy as np

from kit.blend.calibration import apply_calibration, fit_calibration
from kit.blend.result import Evaluation, Scores
from kit.score.thresholds import ThresholdFit


def no_thresholds(num_classes: int) -> ThresholdFit:
    return ThresholdFit(np.full(num_classes, np.nan), None, "none")


def evaluate_probabilities(blender, truth: np.ndarray, fold_of_row: np.ndarray, metric,
                           weights: np.ndarray | None = None, calibrate: bool = False) -> Evaluation:
    """Fit the blend (and the calibration) on all OOF rows, and again on each k-1 folds to score the held-out
    fold; every score is `metric` with class `weights`. A stacker's in-sample OOF scores are cross-fitted (as
    for thresholds): its calibration is fit on those."""
    fit_all = blender.fit(truth)
    member_weights = blender.member_weights(fit_all)
    state = blender.state(fit_all)
    test = blender.test(fit_all)
    cv_scores = np.zeros(truth.shape)
    fold_weights = {}
    for fold in np.unique(fold_of_row):
        held, train = fold_of_row == fold, fold_of_row != fold
        if blender.fitted:
            fold_fit = blender.fit(truth[train], rows=train)  # from scratch: no held-out labels carried in
            fold_weights[int(fold)] = blender.member_weights(fold_fit)
        else:
            fold_fit = fit_all
        held_scores = blender.oof(fold_fit, held)
        if calibrate:
            inner = blender.cross_fits and len(np.unique(fold_of_row[train])) > 1
            train_scores = blender.cross_fitted(truth, fold_of_row, train) if inner else blender.oof(fold_fit, train)
            held_scores = apply_calibration(fit_calibration(metric, truth[train], train_scores), held_scores)
        cv_scores[held] = held_scores
    raw = cv_scores if blender.cross_fits and not calibrate else (
        blender.cross_fitted(truth, fold_of_row) if blender.cross_fits else blender.oof(fit_all))
    calibration = fit_calibration(metric, truth, raw) if calibrate else None
    per_class = {"oof": metric.per_class(truth, raw)}
    overall = {"oof": metric.score_probabilities(truth, raw, weights)}
    oof = raw
    if calibration is not None:
        oof = apply_calibration(calibration, raw)
        test = apply_calibration(calibration, test)
        per_class["calibrated"] = metric.per_class(truth, oof)
        overall["calibrated"] = metric.score_probabilities(truth, oof, weights)
    per_class["cv"] = metric.per_class(truth, cv_scores)
    overall["cv"] = metric.score_probabilities(truth, cv_scores, weights)
    scores = Scores(per_class["oof"], per_class.get("calibrated", per_class["oof"]), per_class["cv"],
                    no_thresholds(truth.shape[1]), overall)
    return Evaluation(scores, member_weights, oof, test, fold_weights, state, None, calibration)


def predicted_labels(metric, scores: np.ndarray, task: str, no_empty: bool = True) -> np.ndarray:
    """The 0/1 matrix a `labels` submission of a probability metric holds: the argmax class of each image for a
    multiclass task; for a multi-label one, the classes at or above 0.5 (the highest where none is)."""
    from kit.score.thresholds import apply_thresholds

    scores = np.asarray(scores)
    if task == "multiclass":
        return np.eye(scores.shape[1], dtype=bool)[scores.argmax(axis=1)]
    return apply_thresholds(scores, 0.5, no_empty)
