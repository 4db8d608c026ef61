"""The competition metric against scikit-learn: scores, the global threshold and the per-class searches."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, fbeta_score

from kit.errors import KitError
from kit.score.metrics import Metric, parse_metric
from kit.score.thresholds import fit_thresholds

NAMES = ["macro_f1", "micro_f1", "samples_f1", "macro_f2", "micro_f2", "samples_f2", "macro_f0.5", "samples_f0.25",
         "micro_f3.5"]
SEARCHED = ["macro_f1", "micro_f2", "samples_f2", "samples_f0.5"]  # the slower brute-force checks


def sklearn_score(metric: Metric, truth, predicted) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if metric.beta == 1:
            return f1_score(truth, predicted, average=metric.average, zero_division=0)
        return fbeta_score(truth, predicted, beta=metric.beta, average=metric.average, zero_division=0)


def random_case(rng):
    """A random truth / score pair: any shape, rounded scores (ties), empty rows and empty classes. (At least two
    classes: scikit-learn reads an N x 1 indicator matrix as a binary target, not a multi-label one.)"""
    n, classes = int(rng.integers(1, 30)), int(rng.integers(2, 7))
    truth = rng.random((n, classes)) < rng.random(classes) * rng.random()
    truth[rng.random(n) < 0.2] = False  # rows with no label
    scores = np.round(np.clip(rng.random((n, classes)) * 0.7 + truth * rng.random() * 0.5, 0, 1),
                      int(rng.integers(0, 3)))
    return truth, scores


@pytest.mark.parametrize("name", NAMES)
def test_every_metric_equals_scikit_learn_on_random_matrices(name):
    metric = parse_metric(name)
    rng = np.random.default_rng(NAMES.index(name))
    for _ in range(80):
        truth, scores = random_case(rng)
        predicted = scores >= rng.choice([0.0, 0.3, 0.5, 1.1])
        assert metric.score(truth, predicted) == pytest.approx(sklearn_score(metric, truth, predicted), abs=1e-12)
        per_class = fbeta_score(truth, predicted, beta=metric.beta, average=None, zero_division=0)
        assert np.allclose(metric.per_class(truth, predicted), per_class)


@pytest.mark.parametrize("name", SEARCHED)
def test_global_threshold_is_the_best_grid_point_by_scikit_learn(name):
    metric = parse_metric(name)
    rng = np.random.default_rng(len(name))
    grid = np.linspace(0.05, 0.95, 19)
    for _ in range(10):
        truth, scores = random_case(rng)
        expected = [sklearn_score(metric, truth, scores >= t) for t in grid]
        threshold, value = metric.best_global_threshold(truth, scores, grid)
        assert threshold == grid[int(np.argmax(expected))]
        assert value == pytest.approx(max(expected), abs=1e-12)


def all_cuts(column: np.ndarray) -> list[float]:
    values = np.unique(column)[::-1]
    return [np.nextafter(values[0], np.inf)] + [(values[i] + values[i + 1]) / 2 for i in range(len(values) - 1)] \
        + [values[-1]]


@pytest.mark.parametrize("name", SEARCHED)
def test_threshold_search_beats_the_global_threshold_and_no_single_class_move_improves_it(name):
    """The reported score is scikit-learn's at the returned thresholds; it is at least the global threshold's
    (on the same grid the search starts from); and (for micro and samples, a coordinate-wise optimum; for
    macro, the optimum) no change of one class's threshold to any cut scores higher, by brute force."""
    metric = parse_metric(name)
    rng = np.random.default_rng(len(name) + 100)
    for _ in range(12):
        truth, scores = random_case(rng)
        thresholds, value = metric.best_thresholds(truth, scores)
        assert value == pytest.approx(sklearn_score(metric, truth, scores >= thresholds), abs=1e-12)
        assert value >= metric.best_global_threshold(truth, scores)[1] - 1e-12
        for c in range(truth.shape[1]):
            for cut in all_cuts(scores[:, c]):
                moved = thresholds.copy()
                moved[c] = cut
                assert sklearn_score(metric, truth, scores >= moved) <= value + 1e-12


def test_fixed_classes_stay_at_the_global_threshold_and_samples_f2_gains_over_it():
    rng = np.random.default_rng(11)
    truth = rng.random((400, 8)) < [0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.005]
    scores = np.clip(rng.normal(0.3 + 0.35 * truth * np.linspace(0.3, 1.2, 8), 0.2), 0, 1)
    metric = parse_metric("samples_f2")
    fit = fit_thresholds(truth, scores, "per-class", min_positives=5, metric=metric)
    global_threshold, global_score = metric.best_global_threshold(truth, scores)
    assert fit.global_threshold == global_threshold
    assert fit.fallback == [c for c in range(8) if truth[:, c].sum() < 5]
    assert all(fit.thresholds[c] == global_threshold for c in fit.fallback)
    tuned = metric.at(truth, scores, fit.thresholds)
    assert tuned > global_score
    assert tuned == pytest.approx(fbeta_score(truth, scores >= fit.thresholds, beta=2, average="samples",
                                              zero_division=0))


@pytest.mark.parametrize("text, expected", [
    ("macro_f1", Metric("macro", 1.0)), ("samples_f2", Metric("samples", 2.0)), ("micro_f1", Metric("micro", 1.0)),
    ("macro_f0.5", Metric("macro", 0.5)), ("Samples_F2", Metric("samples", 2.0)), (None, Metric("macro", 1.0)),
])
def test_metric_names_parse(text, expected):
    assert parse_metric(text) == expected
    assert parse_metric(expected.name) == expected


@pytest.mark.parametrize("text", ["f1", "weighted_f1", "macro_f0", "samples_f-2", "macro_roc", "samples_f2x", ""])
def test_unknown_metric_is_one_line_naming_the_key_and_the_grammar(text):
    with pytest.raises(KitError) as err:
        parse_metric(text)
    message = str(err.value)
    assert "competition.metric" in message and "<average>_f<beta>" in message and "\n" not in message
