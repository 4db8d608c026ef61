"""`kit infer`: a saved blend applied to a test set reproduces `kit blend`'s own submission, and works on a new
read-only test folder with nothing but the checkpoints and the blend JSON."""
from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.spec import HPA
from kit.data.submission import validate_submission

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_only(folder):
    """Make a folder tree read-only; returns a function that undoes it."""
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return lambda: [p.chmod(m) for p, m in modes.items()]


def test_infer_reproduces_the_blend_submission_exactly(tiny_blend, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(tiny_blend.data, data)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    restore = read_only(data)
    monkeypatch.chdir(tmp_path)
    try:
        result = run("infer", tiny_blend.json, "--data", data, "--out", tmp_path / "out" / "submission.csv",
                     "--workers", "0", "--device", "cpu")  # the runs were trained on the CPU: bit for bit
    finally:
        restore()
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "submission.csv").read_bytes() == tiny_blend.csv.read_bytes()
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # no cache, nothing written there
    assert "validated" in result.output and "test_resnet: 2 fold(s), 32px, TTA flip" in result.output


def test_member_test_predictions_match_the_runs_test_csv(tiny_blend):
    """The streamed probabilities are those `kit train` wrote, fold by fold (a reference that reads files)."""
    from kit.data.reading import CompetitionData
    from kit.infer.ensemble import load_ensemble
    from kit.infer.stream import load_models, predict_models

    ensemble = load_ensemble(tiny_blend.json)
    data = CompetitionData(tiny_blend.data, HPA)
    ids = data.test_ids()
    models = load_models(ensemble, "cpu", log=lambda line: None)
    outputs = predict_models(models, data, ids, workers=0, log=lambda line: None)
    for fold_model, probs in zip(models, outputs):
        member = ensemble.members[fold_model.member]
        written = pd.read_csv(member.fold_dir(fold_model.fold) / "test.csv", dtype={"Id": str}).set_index("Id")
        assert np.array_equal(written.loc[ids, list(HPA.classes)].to_numpy(), probs.astype(np.float64))


def test_infer_on_a_new_test_set_writes_a_valid_submission(tiny_blend, new_test_set, tmp_path):
    out = tmp_path / "submission.csv"
    result = run("infer", tiny_blend.json, "--data", new_test_set, "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert validate_submission(out, new_test_set / "sample_submission.csv", HPA) == 9
    frame = pd.read_csv(out, keep_default_na=False)
    assert (frame["Predicted"] != "").all()  # the no-empty rule


@pytest.fixture
def blend_copy(tiny_blend, tmp_path):
    """A private copy of the blend's runs and JSON, its member paths pointing into the copy."""
    shutil.copytree(tiny_blend.runs, tmp_path / "runs")
    shutil.copytree(tiny_blend.json.parent, tmp_path / "submissions")
    path = tmp_path / "submissions" / "blend.json"
    report = json.loads(path.read_text())
    for member in report["members"]:
        member["path"] = str(tmp_path / "runs" / member["name"])
    path.write_text(json.dumps(report))
    return path


@pytest.mark.parametrize("case,message", [
    ("no member run", "member test_byobnet: run folder"),
    ("no fold", "member test_resnet: fold 1 has no best.pt"),
    ("no arrays", "blend.npz is missing"),
    ("old json", "no 'state' entry"),
    ("not json", "not a readable JSON file"),
    ("no json", "blend file not found"),
])
def test_bad_blends_are_one_clear_line(blend_copy, tiny_blend, tmp_path, case, message):
    runs = blend_copy.parent.parent / "runs"
    if case == "no member run":
        shutil.rmtree(runs / "test_byobnet")
    elif case == "no fold":
        (runs / "test_resnet" / "fold1" / "best.pt").unlink()
    elif case == "no arrays":
        (blend_copy.parent / "blend.npz").unlink()
    elif case == "old json":
        report = json.loads(blend_copy.read_text())
        del report["state"]
        blend_copy.write_text(json.dumps(report))
    elif case == "not json":
        blend_copy.write_text("{members")
    elif case == "no json":
        blend_copy.unlink()
    result = run("infer", blend_copy, "--data", tiny_blend.data, "--out", tmp_path / "s.csv")
    assert message in error_line(result)
    assert not (tmp_path / "s.csv").exists()


def test_missing_test_image_is_one_line(blend_copy, tmp_path):
    data = tmp_path / "data"
    from kit.data.synth import write_dataset

    write_dataset(data, HPA, n_train=4, n_test=3, size=32, seed=1, workers=1)
    victim = sorted((data / "test").iterdir())[0]
    os.unlink(victim)
    result = run("infer", blend_copy, "--data", data, "--out", tmp_path / "s.csv")
    assert "missing channel file" in error_line(result)


@pytest.mark.parametrize("method,thresholds", [("hill", "ratio"), ("weighted", "global"), ("stack", "per-class")])
def test_other_methods_and_threshold_modes_reproduce_their_blend(tiny_blend, tmp_path, method, thresholds):
    from kit.blend.blending import blend_runs
    from kit.infer.apply import infer

    result = blend_runs([tiny_blend.runs], HPA, tiny_blend.folds, tiny_blend.data / "sample_submission.csv",
                        tiny_blend.data / "train.csv", tmp_path, method, method=method, thresholds=thresholds,
                        plot=False)
    out = infer(result.files["json"], tiny_blend.data, tmp_path / "again.csv", device="cpu", workers=0,
                log=lambda line: None)
    assert out.path.read_bytes() == result.files["csv"].read_bytes()
    assert np.array_equal(out.thresholds, result.thresholds)


@pytest.mark.parametrize("metric", ["logloss", "macro_auc"])
def test_a_probability_metric_blend_with_calibration_is_reproduced(tiny_blend, tmp_path, metric):
    import dataclasses

    from kit.blend.blending import blend_runs
    from kit.infer.apply import infer

    spec = dataclasses.replace(HPA, metric=metric)
    result = blend_runs([tiny_blend.runs], spec, tiny_blend.folds, tiny_blend.data / "sample_submission.csv",
                        tiny_blend.data / "train.csv", tmp_path, metric, method="weighted", plot=False)
    assert (result.calibration is not None) == (metric == "logloss")  # auto: log losses only
    report = json.loads(result.files["json"].read_text())
    assert report["thresholds"] is None and (report["calibration"] is not None) == (metric == "logloss")
    out = infer(result.files["json"], tiny_blend.data, tmp_path / "again.csv", device="cpu", workers=0,
                log=lambda line: None)
    assert out.path.read_bytes() == result.files["csv"].read_bytes()
    assert np.array_equal(out.scores, result.test)  # the calibrated probabilities, bit for bit
