"""Probability metrics against scikit-learn (and a numpy weighted log loss written here), on random matrices with
ties, a class without positives and one without negatives; names, directions and task checks."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score

from kit.errors import KitError
from kit.score.metrics import check_task, history_metric, parse_metric


def random_case(seed: int, n: int = 200, classes: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.random((n, classes)) < rng.uniform(0.05, 0.6, classes)
    truth[:, 1] = False  # no positive
    truth[:, 2] = True  # no negative
    scores = np.clip(rng.random((n, classes)) * 0.6 + truth * 0.3, 0.0, 1.0)
    scores[:, 3] = np.round(scores[:, 3], 1)  # heavy ties
    scores[: n // 4, 0] = 0.5  # a block of ties in a scored class
    return truth, scores


@pytest.mark.parametrize("seed", range(5))
def test_macro_auc_equals_roc_auc_score_leaving_out_classes_without_both_kinds(seed):
    truth, scores = random_case(seed)
    metric = parse_metric("macro_auc")
    scored = [c for c in range(truth.shape[1]) if 0 < truth[:, c].sum() < len(truth)]
    expected = [roc_auc_score(truth[:, c], scores[:, c]) for c in scored]
    per_class = metric.per_class(truth, scores)
    np.testing.assert_allclose(per_class[scored], expected, rtol=1e-12)
    assert np.isnan(per_class[1]) and np.isnan(per_class[2])
    assert metric.left_out(truth) == [1, 2]
    assert metric.score_probabilities(truth, scores) == pytest.approx(np.mean(expected), rel=1e-12)
    assert metric.higher_is_better and not metric.needs_thresholds and not metric.calibrates


@pytest.mark.parametrize("seed", range(5))
def test_macro_ap_equals_average_precision_score(seed):
    truth, scores = random_case(seed)
    metric = parse_metric("macro_ap")
    scored = [c for c in range(truth.shape[1]) if truth[:, c].any()]
    expected = [average_precision_score(truth[:, c], scores[:, c]) for c in scored]
    np.testing.assert_allclose(metric.per_class(truth, scores)[scored], expected, rtol=1e-12)
    assert metric.left_out(truth) == [1]
    assert metric.score_probabilities(truth, scores) == pytest.approx(np.mean(expected), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_logloss_equals_log_loss_over_every_cell_and_weighted_like_rsna(seed):
    truth, scores = random_case(seed, classes=6)
    scores[0, 0], scores[1, 4] = 0.0, 1.0  # clipped to [1e-15, 1 - 1e-15]
    metric = parse_metric("logloss")
    clipped = np.clip(scores, 1e-15, 1 - 1e-15)
    assert metric.score_probabilities(truth, scores) == pytest.approx(
        log_loss(truth.ravel(), clipped.ravel(), labels=[False, True]), rel=1e-12)
    weights = np.array([1, 1, 1, 1, 1, 2.0])  # RSNA: `any` counts twice
    cells = -(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped))
    expected = (cells * weights).sum() / (weights.sum() * len(truth))
    assert metric.score_probabilities(truth, scores, weights) == pytest.approx(expected, rel=1e-12)
    assert metric.score_probabilities(truth, scores, weights) == pytest.approx(log_loss(
        truth.ravel(), clipped.ravel(), sample_weight=np.tile(weights, len(truth)), labels=[False, True]), rel=1e-12)
    assert not metric.higher_is_better and metric.calibrates
    assert metric.better(0.2, 0.3) and not metric.better(0.3, 0.2)


def multiclass_case(seed: int, n: int = 300, classes: int = 4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes - 1, n)  # the last class has no image
    truth = np.eye(classes, dtype=bool)[labels]
    logits = rng.normal(size=(n, classes)) + truth * 1.5
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, truth, probabilities


@pytest.mark.parametrize("seed", range(3))
def test_accuracy_and_mlogloss_equal_scikit_learn(seed):
    labels, truth, probabilities = multiclass_case(seed)
    accuracy, mlogloss = parse_metric("accuracy"), parse_metric("mlogloss")
    assert accuracy.score_probabilities(truth, probabilities) == accuracy_score(labels, probabilities.argmax(1))
    assert mlogloss.score_probabilities(truth, probabilities) == pytest.approx(
        log_loss(labels, probabilities, labels=range(4)), rel=1e-12)
    per_class = mlogloss.per_class(truth, probabilities)
    assert np.isnan(per_class[3])
    rows = labels == 0
    assert per_class[0] == pytest.approx(-np.log(probabilities[rows, 0]).mean(), rel=1e-12)
    recall = accuracy.per_class(truth, probabilities)
    assert recall[1] == pytest.approx(np.mean(probabilities[labels == 1].argmax(1) == 1))


def test_mlogloss_clips_then_renormalises_each_row_as_kaggle_does():
    truth = np.eye(3, dtype=bool)[[0, 1]]
    probabilities = np.array([[0.0, 2.0, 2.0], [0.2, 0.2, 0.2]])
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)
    clipped /= clipped.sum(axis=1, keepdims=True)
    expected = -(np.log(clipped[0, 0]) + np.log(clipped[1, 1])) / 2
    assert parse_metric("mlogloss").score_probabilities(truth, probabilities) == pytest.approx(expected, rel=1e-12)


def test_names_directions_and_one_line_errors():
    with pytest.raises(KitError) as error:
        parse_metric("macro_roc")
    line = str(error.value)
    assert "\n" not in line and "macro_auc" in line and "mlogloss" in line and "<average>_f<beta>" in line
    assert parse_metric("macro_f1").needs_thresholds and not parse_metric("logloss").needs_thresholds
    assert parse_metric("MACRO_AUC").name == "macro_auc"
    check_task("accuracy", "multiclass")
    check_task("macro_auc", "multiclass")
    with pytest.raises(KitError, match="accuracy scores one class per image.*not task: multilabel"):
        check_task("accuracy", "multilabel")
    with pytest.raises(KitError, match="class weights other than 1 do not apply"):
        parse_metric("accuracy").score_probabilities(*multiclass_case(0)[1:], weights=[1, 2, 1, 1])


def test_history_metric_reads_probability_columns():
    assert history_metric(["epoch", "val_loss", "val_logloss", "seconds"]).name == "logloss"
    assert history_metric(["val_macro_auc"]).name == "macro_auc"
    assert history_metric(["val_samples_f2", "val_samples_f2_tuned"]).name == "samples_f2"
    assert parse_metric("logloss").history_columns == ["val_logloss"]
    with pytest.raises(KitError, match="history.csv: line 1"):
        history_metric(["val_loss", "val_accuracy_tuned"][:1])
