"""The blend methods against references that share no code with kit: scipy and a brute-force simplex grid
for `weighted`, a plain-loop Caruana for `hill`, scipy's rankdata for `rank`, and every member's test
predictions averaged here from the files the runs wrote."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from test_blend import make_project

from kit.blend.blending import blend_runs

MODELS = {"weak": 0.4, "good": 0.6, "fair": 0.5}  # close enough that the best blends mix them


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path, MODELS, n_train=60, n_test=15, seed=4)


def member_test(project, name):
    """A member's test predictions: its folds' test.csv files, read back and averaged."""
    frames = [pd.read_csv(project.file(name, fold, "test"), dtype={"Id": str}).set_index("Id")
              for fold in range(3)]
    return np.mean([f.loc[project.test_ids, list(project.spec.classes)].to_numpy() for f in frames], axis=0)


def bce(truth, scores, eps=1e-7):
    scores = np.clip(scores, eps, 1 - eps)
    return float(-np.mean(np.where(truth, np.log(scores), np.log(1 - scores))))


def tuned_macro_f1(truth, scores):
    """Mean over classes of the best F1 over every cut at a distinct score (a brute-force search)."""
    best = []
    for c in range(truth.shape[1]):
        positives = truth[:, c].sum()
        values = [0.0] + [2 * (truth[:, c] & (scores[:, c] >= cut)).sum() / ((scores[:, c] >= cut).sum() + positives)
                          for cut in np.unique(scores[:, c])]
        best.append(max(values))
    return float(np.mean(best))


def caruana(members, truth, steps=25):
    """Forward selection with replacement (Caruana et al. 2004), as a plain loop over the members' scores."""
    scores = [tuned_macro_f1(truth, m) for m in members]
    counts = [0] * len(members)
    first = scores.index(max(scores))
    counts[first], current = 1, scores[first]
    for _ in range(steps if len(members) > 1 else 0):
        trials = []
        for m in range(len(members)):
            trial = counts.copy()
            trial[m] += 1
            blend = sum(k * member for k, member in zip(trial, members)) / sum(trial)
            trials.append(tuned_macro_f1(truth, blend))
        best = trials.index(max(trials))
        if trials[best] <= current:
            break
        counts[best] += 1
        current = trials[best]
    return np.array(counts) / sum(counts)


def test_mean_blend_averages_every_members_test_predictions_read_back_from_the_files(project):
    result = blend_runs([project.runs], name="m", min_positives=0, **project.kwargs())
    assert result.members == ["fair", "good", "weak"]  # sorted by name
    tests = [member_test(project, name) for name in result.members]
    np.testing.assert_allclose(result.test, np.mean(tests, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.oof, np.mean([project.oof[m] for m in result.members], axis=0), atol=1e-12)


def test_weighted_blend_finds_the_best_weights_on_the_simplex(project):
    from scipy.optimize import minimize

    result = blend_runs([project.runs], name="w", method="weighted", **project.kwargs())
    oof = [project.oof[m] for m in result.members]
    weights = result.weights
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(result.oof, sum(w * m for w, m in zip(weights, oof)), atol=1e-12)
    tests = [member_test(project, m) for m in result.members]
    np.testing.assert_allclose(result.test, sum(w * t for w, t in zip(weights, tests)), atol=1e-12)

    found = bce(project.truth, result.oof)
    grid = np.linspace(0, 1, 51)  # every point of the simplex at steps of 0.02
    on_grid = min(bce(project.truth, a * oof[0] + b * oof[1] + (1 - a - b) * oof[2])
                  for a, b in itertools.product(grid, grid) if a + b <= 1 + 1e-12)
    assert found <= on_grid + 1e-9

    # scipy's optimizer over a softmax parametrisation (no constraints at all) agrees within tolerance
    def loss(z):
        w = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        return bce(project.truth, sum(wi * m for wi, m in zip(w, oof)))

    reference = minimize(loss, np.zeros(3), method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12,
                                                                            "maxiter": 4000})
    assert found == pytest.approx(reference.fun, abs=1e-6)
    assert weights[result.members.index("good")] > weights[result.members.index("weak")]


def test_hill_climb_equals_a_plain_loop_caruana_on_all_rows_and_inside_every_fold(project):
    result = blend_runs([project.runs], name="h", method="hill", **project.kwargs())
    oof = [project.oof[m] for m in result.members]
    np.testing.assert_allclose(result.weights, caruana(oof, project.truth), rtol=0, atol=1e-12)
    for fold in range(3):
        train = project.folds != fold
        expected = caruana([m[train] for m in oof], project.truth[train])
        np.testing.assert_allclose(result.fold_weights[fold], expected, rtol=0, atol=1e-12)
    tests = [member_test(project, m) for m in result.members]
    np.testing.assert_allclose(result.test, sum(w * t for w, t in zip(result.weights, tests)), atol=1e-12)


def mid_rank_positions(column):
    """Each distinct value of one OOF column and its mid-rank position in (0, 1), from scipy."""
    values, first = np.unique(column, return_index=True)
    positions = (rankdata(column, method="average") - 0.5) / len(column)
    return values, positions[first]


def test_rank_blend_maps_test_rows_onto_the_oof_ranks_and_back(tmp_path):
    project = make_project(tmp_path, MODELS, n_train=60, n_test=15, seed=4)
    # Make some test rows copies of OOF rows (same value in every fold), so those rows must come out of the blend
    # exactly as the OOF rows did; the others fall between, below or above the OOF scores.
    copies = {0: 5, 3: 17, 7: 42}
    for name in MODELS:
        for fold in range(3):
            path = project.file(name, fold, "test")
            frame = pd.read_csv(path, dtype={"Id": str})
            for test_row, oof_row in copies.items():
                frame.loc[test_row, list(project.spec.classes)] = project.oof[name][oof_row]
            frame.loc[9, list(project.spec.classes)] = [0.0, 1.0, 0.0, 1.0, 0.5]
            frame.to_csv(path, index=False)
    result = blend_runs([project.runs], name="r", method="rank", **project.kwargs())
    for test_row, oof_row in copies.items():
        np.testing.assert_allclose(result.test[test_row], result.oof[oof_row], atol=1e-12)

    members = result.members
    mean_oof = np.mean([project.oof[m] for m in members], axis=0)
    tests = [member_test(project, m) for m in members]
    expected_oof, expected_test = np.zeros_like(mean_oof), np.zeros_like(result.test)
    for c in range(project.spec.num_classes):
        oof_rank = np.mean([(rankdata(project.oof[m][:, c]) - 0.5) / 60 for m in members], axis=0)
        test_rank = np.mean([np.interp(t[:, c], *mid_rank_positions(project.oof[m][:, c]))
                             for m, t in zip(members, tests)], axis=0)
        values, positions = mid_rank_positions(mean_oof[:, c])
        expected_oof[:, c] = np.interp(oof_rank, positions, values)
        expected_test[:, c] = np.interp(test_rank, positions, values)
    np.testing.assert_allclose(result.oof, expected_oof, atol=1e-12)
    np.testing.assert_allclose(result.test, expected_test, atol=1e-12)
    # below every OOF score of all members: the lowest blended OOF score; above all: the highest
    assert result.test[9, 0] == pytest.approx(mean_oof[:, 0].min()) and result.test[9, 1] == pytest.approx(
        mean_oof[:, 1].max())
