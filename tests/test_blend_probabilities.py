"""`kit blend` for metrics scored on the probabilities (macro AUC, weighted log loss, multi-class log loss) on
synthetic OOF files: scores against scikit-learn, methods optimising the metric, temperature calibration fit out
of fold, refused options, and `kit infer`'s re-application of the calibration."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score
from test_blend import SMALL, make_project

from kit.blend.blending import blend_runs
from kit.blend.calibration import apply_calibration, fit_calibration
from kit.errors import KitError
from kit.score.metrics import parse_metric


def truth_of(project):
    return project.truth


def overconfident(project, models=("a", "b"), sharpen: float = 4.0, seed: int = 1):
    """Rewrite each model's OOF and test files with over-confident probabilities: a class score z ~ N(+-1, 1.5^2)
    by label has the calibrated probability sigmoid(2 z / 1.5^2 + log prior odds); the files hold it with its
    logit multiplied by `sharpen`."""
    rng = np.random.default_rng(seed)
    row_of = {name: i for i, name in enumerate(project.train_ids)}
    prior = np.log(project.truth.mean(axis=0) / (1 - project.truth.mean(axis=0)))
    for name in models:
        for path in (project.runs / name).glob("fold*/*.csv"):
            frame = pd.read_csv(path, dtype={"Id": str})
            if path.name == "oof.csv":
                y = project.truth[[row_of[i] for i in frame["Id"]]]
            else:
                y = rng.random((len(frame), project.truth.shape[1])) < project.truth.mean(axis=0)
            z = np.where(y, 1.0, -1.0) + 1.5 * rng.normal(size=y.shape)
            calibrated = 2 * z / 1.5**2 + prior
            frame[list(project.spec.classes)] = 1 / (1 + np.exp(-sharpen * calibrated))
            frame.to_csv(path, index=False)


def oof_matrix(project, name):
    frames = [pd.read_csv(project.file(name, k), dtype={"Id": str}) for k in range(3)]
    frame = pd.concat(frames).set_index("Id").loc[project.train_ids]
    return frame[list(project.spec.classes)].to_numpy()


@pytest.mark.parametrize("method", ["mean", "rank", "weighted", "hill", "stack"])
def test_macro_auc_blend_scores_are_roc_auc_of_the_oof_probabilities(tmp_path, method):
    spec = dataclasses.replace(SMALL, metric="macro_auc")
    project = make_project(tmp_path, {"a": 0.6, "b": 0.3, "c": 0.0}, spec=spec)
    result = blend_runs([project.runs], **project.kwargs(method=method, name=method))
    truth = project.truth
    expected = np.mean([roc_auc_score(truth[:, c], result.oof[:, c]) for c in range(truth.shape[1])])
    assert result.scores.overall["oof"] == pytest.approx(expected, rel=1e-9)
    assert "calibrated" not in result.scores.overall and "tuned" not in result.scores.overall
    assert "a rank metric" or result.calibration is None
    assert result.calibration is None and "calibration: none" in result.calibration_note
    report = json.loads((tmp_path / "submissions" / f"{method}.json").read_text())
    assert report["thresholds"] is None and report["calibration"] is None and report["metric"] == "macro_auc"
    assert set(report["blend"]["score"]) == {"oof", "cv"}
    if method == "hill":  # the climb keeps the best member at least: no worse than model a alone
        single = np.mean([roc_auc_score(truth[:, c], oof_matrix(project, "a")[:, c]) for c in range(5)])
        assert result.scores.overall["oof"] >= single - 1e-12


def test_weighted_logloss_is_the_rsna_metric_and_calibration_lowers_it_out_of_fold(tmp_path):
    spec = dataclasses.replace(SMALL, metric="logloss", class_weights=(("epsilon", 2.0),))
    project = make_project(tmp_path, {"a": 0.6, "b": 0.4}, spec=spec, n_train=90)
    overconfident(project)
    plain = blend_runs([project.runs], **project.kwargs(calibrate="none", name="plain"))
    calibrated = blend_runs([project.runs], **project.kwargs(calibrate="auto", name="calibrated"))
    truth, weights = project.truth, np.array([1, 1, 1, 1, 2.0])
    clipped = np.clip(plain.oof, 1e-15, 1 - 1e-15)
    expected = log_loss(truth.ravel(), clipped.ravel(), sample_weight=np.tile(weights, len(truth)))
    assert plain.scores.overall["oof"] == pytest.approx(expected, rel=1e-9)
    # temperatures fit on over-confident OOF lower the loss, in-sample and on held-out folds
    assert calibrated.calibration is not None and np.all(calibrated.calibration.temperatures > 1)
    assert calibrated.scores.overall["calibrated"] < calibrated.scores.overall["oof"]
    assert calibrated.scores.overall["cv"] < plain.scores.overall["cv"]
    # the cv figure is fit out of fold: recompute it by hand with each fold's temperatures fit on the others
    blended = plain.oof
    cv = np.zeros_like(blended)
    for fold in range(3):
        held = project.folds == fold
        fit = fit_calibration(parse_metric("logloss"), truth[~held], blended[~held])
        cv[held] = apply_calibration(fit, blended[held])
    assert calibrated.scores.overall["cv"] == pytest.approx(
        parse_metric("logloss").score_probabilities(truth, cv, weights), rel=1e-9)
    report = json.loads((tmp_path / "submissions" / "calibrated.json").read_text())
    assert report["calibration"]["kind"] == "per-class" and len(report["calibration"]["temperatures"]) == 5
    assert set(report["blend"]["score"]) == {"oof", "calibrated", "cv"}


def test_hill_and_weighted_minimise_logloss(tmp_path):
    spec = dataclasses.replace(SMALL, metric="logloss")
    project = make_project(tmp_path, {"good": 0.7, "noise": 0.0}, spec=spec, n_train=90)
    for method in ("hill", "weighted"):
        result = blend_runs([project.runs], **project.kwargs(method=method, name=method, calibrate="none"))
        mean = blend_runs([project.runs], **project.kwargs(method="mean", name="mean", calibrate="none"))
        assert result.scores.overall["oof"] < mean.scores.overall["oof"]  # lower is better: away from the noise
        assert result.weights[result.members.index("good")] > 0.5


def test_options_that_cannot_apply_are_one_line(tmp_path):
    spec = dataclasses.replace(SMALL, metric="macro_auc")
    project = make_project(tmp_path, {"a": 0.5}, spec=spec)
    cases = [({"thresholds": "per-class"}, "--thresholds per-class: macro_auc scores the probabilities"),
             ({"calibrate": "temperature"}, "--calibrate temperature: macro_auc is not a log loss"),
             ({"prior": tmp_path / "prior.csv"}, "--prior sets test positive rates")]
    for options, message in cases:
        with pytest.raises(KitError) as error:
            blend_runs([project.runs], **project.kwargs(**options))
        assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "submissions").exists()


def test_multiclass_mlogloss_softmax_temperature_and_refused_rank(tmp_path):
    spec = dataclasses.replace(SMALL, metric="mlogloss", task="multiclass")
    project = make_project(tmp_path, {"a": 0.6, "b": 0.3}, spec=spec, n_train=90)
    # one class per image: the truth's first label; probabilities renormalised per row, then sharpened
    first = project.truth.argmax(axis=1)
    labels = pd.read_csv(tmp_path / "data" / "train.csv", dtype={"Id": str})
    labels["Target"] = first.astype(str)
    labels.to_csv(tmp_path / "data" / "train.csv", index=False)
    for path in project.runs.glob("*/fold*/*.csv"):
        frame = pd.read_csv(path, dtype={"Id": str})
        p = frame[list(spec.classes)].to_numpy() + 1e-3
        p = p ** 4
        frame[list(spec.classes)] = p / p.sum(axis=1, keepdims=True)
        frame.to_csv(path, index=False)
    with pytest.raises(KitError, match="--method rank averages each class's ranks"):
        blend_runs([project.runs], **project.kwargs(method="rank"))
    result = blend_runs([project.runs], **project.kwargs(method="hill", name="mc"))
    truth = np.eye(5, dtype=bool)[first]
    raw = np.stack([oof_matrix(project, m) for m in result.members])
    blended = np.tensordot(result.weights, raw, axes=1)
    assert result.scores.overall["oof"] == pytest.approx(log_loss(first, blended, labels=range(5)), rel=1e-6)
    assert result.calibration.kind == "softmax" and len(result.calibration.temperatures) == 1
    np.testing.assert_allclose(result.oof.sum(axis=1), 1.0, rtol=1e-9)
    assert result.scores.overall["calibrated"] < result.scores.overall["oof"]
    assert (result.predicted.sum(axis=1) == 1).all()  # labels: the argmax class
    np.testing.assert_array_equal(result.predicted.argmax(axis=1), result.test.argmax(axis=1))
    assert truth.sum() == len(first)


def test_blend_png_and_kit_report_chart_per_class_log_loss(tmp_path):
    from helpers import png_size

    from kit.blend.report import summary_table
    from kit.report import report

    spec = dataclasses.replace(SMALL, metric="logloss")
    project = make_project(tmp_path, {"a": 0.6, "b": 0.3}, spec=spec)
    result = blend_runs([project.runs], **project.kwargs(plot=True, name="ll"))
    assert png_size(result.files["png"])[0] > 0
    table = summary_table(result)
    assert "calib." in table and "tuned" not in table and "@0.5" not in table
    lines = []
    written = report([result.files["json"]], log=lines.append)
    assert written[0].name == "ll_per_class.png" and png_size(written[0])[0] > 0
    assert any("calib." in line for line in lines)


def test_learning_curves_of_a_log_loss_run(tmp_path):
    from helpers import png_size

    from kit.report import plot_learning_curves

    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"epoch": [1, 2, 3], "lr": [1e-3] * 3, "train_loss": [0.5, 0.4, 0.3], "val_loss": [0.5, 0.45, 0.5],
                  "val_logloss": [0.5, 0.45, 0.5], "seconds": [1.0] * 3}).to_csv(run / "history.csv", index=False)
    assert png_size(plot_learning_curves(run))[0] > 0
