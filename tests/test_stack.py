"""`kit blend --method stack` (nested second-level models) and `--thresholds ratio --prior FILE`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import error_line
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_blend import SMALL, cli_args, make_project, write_small_config

from kit.blend.blending import blend_members, evaluate
from kit.blend.gather import Member
from kit.blend.methods import Blender, apply
from kit.blend.stack import BOOSTING, LOGISTIC, fit_stacker
from kit.blend.state import read_state
from kit.cli import main
from kit.data.spec import CompetitionSpec

SPEC = CompetitionSpec(classes=("a", "b", "c", "d"))


def logits(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def correlated(rng, rows=400, members=3, test_rows=50, linked=True):
    """Labels of 4 classes; with `linked`, class b is present exactly when a or c is, and the members see
    a and c well but not b: a stacker can read b off the members' a and c scores, a mean cannot."""
    def labels(n):
        truth = rng.random((n, 4)) < [0.3, 0.0, 0.3, 0.4]
        truth[:, 1] = (truth[:, 0] | truth[:, 2]) if linked else rng.random(n) < 0.5
        truth[~truth.any(axis=1), 3] = True  # every sample has a label, as in the competitions
        return truth

    truth, test_truth = labels(rows), labels(test_rows)
    found = []
    for m in range(members):
        signal = np.array([1.5, 0.0, 1.5, 1.5]) if linked else np.full(4, 0.7)

        def scores(t, signal=signal):
            return 1 / (1 + np.exp(-(signal * (t - 0.5) * 2 + rng.normal(size=t.shape))))

        found.append(Member(f"m{m}", f"runs/m{m}", scores(truth), scores(test_truth)))
    return found, truth, np.arange(rows) % 5


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_the_saved_stacker_predicts_as_scikit_learn_does(kind):
    found, truth, _ = correlated(np.random.default_rng(0))
    oof, test = np.stack([m.oof for m in found]), np.stack([m.test for m in found])
    stacker = fit_stacker(kind, oof, truth)
    x = logits(oof).transpose(1, 0, 2).reshape(len(truth), -1)
    x_test = logits(test).transpose(1, 0, 2).reshape(test.shape[1], -1)
    for c in range(4):
        if kind == "logistic":
            reference = make_pipeline(StandardScaler(), LogisticRegression(**LOGISTIC)).fit(x, truth[:, c])
        else:
            reference = HistGradientBoostingClassifier(**BOOSTING).fit(x, truth[:, c])
        assert np.allclose(stacker.predict(test)[:, c], reference.predict_proba(x_test)[:, 1], atol=1e-9)


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_the_scored_folds_labels_never_reach_its_stacked_predictions(kind):
    found, truth, folds = correlated(np.random.default_rng(1), rows=150)
    oof, test = np.stack([m.oof for m in found]), np.stack([m.test for m in found])
    first = evaluate(Blender("stack", oof, test, kind), truth, folds)
    changed = truth.copy()
    held = folds == 2
    changed[held] = np.random.default_rng(9).random((held.sum(), 4)) < 0.5
    second = evaluate(Blender("stack", oof, test, kind), changed, folds)
    assert np.array_equal(first.oof[held], second.oof[held])  # the stacker fit without fold 2
    assert np.array_equal(first.cv_predicted[held], second.cv_predicted[held])  # and its thresholds
    assert not np.array_equal(first.oof[~held], second.oof[~held])  # the other folds did see fold 2
    assert not np.array_equal(first.test, second.test)  # the test stacker is fit on every OOF row


def test_stacking_beats_the_mean_on_correlated_classes_and_keeps_up_on_independent_ones():
    for linked in (True, False):
        found, truth, folds = correlated(np.random.default_rng(2), linked=linked)
        mean = blend_members(found, truth, folds, SPEC, method="mean").scores.summary()["cv"]
        for kind in ("logistic", "boosting"):
            stacked = blend_members(found, truth, folds, SPEC, method="stack", stacker=kind).scores.summary()["cv"]
            if linked:
                assert stacked > mean + 0.05, (kind, stacked, mean)
            else:  # trees fit to 320 rows lose a little to the mean where every class is independent
                assert stacked > mean - (0.01 if kind == "logistic" else 0.04), (kind, stacked, mean)


def test_cli_stack_writes_the_fitted_stacker_that_reapplies_to_the_test_predictions(tmp_path, monkeypatch):
    project = make_project(tmp_path, {"a": 0.8, "b": 0.5}, n_train=90)
    write_small_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, cli_args(project, "--config", "kit.yaml", "--method", "stack", "--stacker",
                                               "boosting", "--name", "s"))
    assert result.exit_code == 0, result.output
    assert "blend (stack, boosting)" in result.output
    out = tmp_path / "submissions"
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.json", "s.npz", "s.png"]
    report = json.loads((out / "s.json").read_text())
    assert report["method"] == "stack" and report["stacker"] == "boosting"
    assert "--method stack " in report["command"] and "--stacker boosting" in report["command"]
    state = read_state(report["state"], out / "s.json")
    members = np.stack([np.mean(project.test[m], axis=0) for m in ("a", "b")])
    predicted = apply(state, members) >= np.array([report["thresholds"][c] for c in SMALL.classes])
    empty = ~predicted.any(axis=1)
    assert not empty.any() or report["no_empty"]
    submission = pd.read_csv(out / "s.csv", keep_default_na=False)
    for row, text in enumerate(submission["Predicted"]):
        if not empty[row]:
            assert set(map(int, str(text).split())) == set(np.flatnonzero(predicted[row]))


# ---------------------------------------------------------------- ratio thresholds from a prior


def test_ratio_thresholds_match_the_prior_and_the_train_rate_elsewhere(tmp_path, monkeypatch):
    project = make_project(tmp_path, {"a": 0.8}, n_train=60, n_test=40)
    write_small_config(tmp_path)
    (tmp_path / "prior.csv").write_text("class,rate\nbeta,0.25\n0,0.1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, cli_args(project, "--config", "kit.yaml", "--thresholds", "ratio", "--prior",
                                               "prior.csv", "--allow-empty", "--min-positives", "0", "--name", "r"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "submissions" / "r.json").read_text())
    assert report["prior"] == {"alpha": 0.1, "beta": 0.25}
    test = np.mean(project.test["a"], axis=0)
    thresholds = np.array([report["thresholds"][c] for c in SMALL.classes])
    rates = (test >= thresholds).mean(axis=0)
    expected = project.truth.mean(axis=0)
    expected[:2] = [0.1, 0.25]
    assert np.allclose(rates, np.round(expected * 40) / 40)  # whole samples; scores are distinct


@pytest.mark.parametrize("text, message", [
    ("class,rate\nomega,0.2\n", "prior.csv: line 2: 'omega' is not a class of the competition (a name, or an index "
                                "0..4)"),
    ("beta,1.5\n", "prior.csv: line 1: class 'beta': rate 1.5 is outside [0, 1]"),
    ("7,0.5\n", "prior.csv: line 1: '7' is not a class of the competition"),
    ("beta,-0.1\n", "rate -0.1 is outside [0, 1]"),
    ("beta,0.2\nbeta,0.3\n", "prior.csv: line 2: class 'beta' was already given on line 1"),
    ("beta,lots\nalpha,0.1\n", None),  # a first line that is not a number is the header
    ("alpha,0.1\nbeta,lots\n", "prior.csv: line 2: class 'beta': rate 'lots' is not a number"),
])
def test_a_bad_prior_is_one_line(tmp_path, monkeypatch, text, message):
    project = make_project(tmp_path, {"a": 0.8})
    write_small_config(tmp_path)
    (tmp_path / "prior.csv").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, cli_args(project, "--config", "kit.yaml", "--thresholds", "ratio", "--prior",
                                               "prior.csv"))
    if message is None:
        assert result.exit_code == 0, result.output
        return
    assert message in error_line(result)
    assert not (tmp_path / "submissions").exists()


def test_a_prior_without_ratio_thresholds_is_refused(tmp_path, monkeypatch):
    project = make_project(tmp_path, {"a": 0.8})
    write_small_config(tmp_path)
    (tmp_path / "prior.csv").write_text("beta,0.2\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, cli_args(project, "--config", "kit.yaml", "--prior", "prior.csv"))
    assert "--prior sets test positive rates for --thresholds ratio, not per-class" in error_line(result)
