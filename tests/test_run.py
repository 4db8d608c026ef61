"""`kit run` and `kit report`: the `make demo` flow at a tiny size (40 images, 32 px, 2 folds, 1 epoch, two
tiny timm models, d4 TTA), through the command line in a scratch folder."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import error_line, png_size, saved_figures
from helpers import invoke_in as invoke

from kit.data.reading import read_sample_ids
from kit.data.spec import HPA
from kit.data.submission import validate_submission
from kit.experiment import find_experiment, load_experiment, shipped_experiments
from kit.train.loop import history_columns

pytest_plugins = ["kaggle_server"]  # the stand-in Kaggle server's fixtures: kaggle, stand_in

PNG = b"\x89PNG\r\n\x1a\n"
MODELS = ("test_resnet", "test_byobnet")
# The shipped demo experiment, shrunk: 2 folds, 32 px, 1 epoch (its models, lrs, TTA, blend and submit as they are).
DEMO = yaml.safe_load(find_experiment("demo").read_text())
EXPERIMENT = {**DEMO, "folds": {**DEMO["folds"], "k": 2},
              "train": {**DEMO["train"], "size": 32, "epochs": 1, "batch_size": 8, "progress": False,
                        "device": "cpu"}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A scratch folder with a synthetic data set, the tiny experiment, and the result of one `kit run`."""
    root = tmp_path_factory.mktemp("project")
    (root / "experiment.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster on a shared machine
    try:  # the steps of scripts/demo.sh
        invoke(root, ["synth", "data", "--n-train", "40", "--n-test", "8", "--size", "32", "--seed", "3"])
        invoke(root, ["cache", "--size", "32", "--workers", "1"])
        result = invoke(root, ["run", "experiment.yaml"])
    finally:
        torch.set_num_threads(threads)
    return root, result.output


def test_run_writes_every_artifact_and_the_final_table(project):
    root, output = project
    folds = pd.read_csv(root / "folds/folds.csv")
    assert list(folds.columns) == ["Id", "fold"] and len(folds) == 40 and set(folds["fold"]) == {0, 1}
    test_ids = read_sample_ids(root / "data/sample_submission.csv", HPA)
    for model in MODELS:
        for fold in (0, 1):
            run = root / "runs" / model / f"fold{fold}"
            assert {"history.csv", "last.pt", "best.pt", "config.yaml", "oof.csv", "test.csv"} <= {
                p.name for p in run.iterdir()}
            history = pd.read_csv(run / "history.csv")
            assert list(history.columns) == history_columns(HPA.scorer) and len(history) == 1
            oof, test = pd.read_csv(run / "oof.csv"), pd.read_csv(run / "test.csv")
            assert list(oof.columns) == ["Id", *HPA.classes] == list(test.columns)
            assert sorted(oof["Id"]) == sorted(folds.loc[folds["fold"] == fold, "Id"])
            assert sorted(test["Id"]) == sorted(test_ids)
            assert f"runs/{model}/fold{fold}: training" in output
    assert "using cache data/cache/32px/train.npy" in output  # written by the `kit cache` step

    submission = root / "submissions/demo.csv"
    assert validate_submission(submission, root / "data/sample_submission.csv", HPA) == 8
    report = json.loads((root / "submissions/demo.json").read_text())
    assert [m["name"] for m in report["members"]] == list(MODELS)
    assert report["command"] == "kit run experiment.yaml"
    assert (root / "submissions/demo.png").read_bytes()[:8] == PNG
    assert not (root / "submissions/log.csv").exists()  # a dry run logs nothing
    assert "dry run: would upload submissions/demo.csv (8 rows" in output
    table = output[output.index("OOF macro F1 ("):].splitlines()
    assert table[1].split() == ["member", "F1@0.5", "tuned", "cv", "weight"]
    assert [line.split()[0] for line in table[2:]] == [*MODELS, "blend"]
    assert table[-1].split()[4] == f"{report['blend']['score']['cv']:.4f}"

    # The table and demo.csv again, from the runs' files alone: scikit-learn's F1 and brute-force thresholds
    expected = reference_blend(root, test_ids)
    for line, name in zip(table[2:], [*MODELS, "blend"]):
        values = line.split()[2:4] if name == "blend" else line.split()[1:3]  # "blend (mean)" is two words
        at_05, tuned = (float(v) for v in values)
        assert at_05 == pytest.approx(expected[name]["at_0.5"], abs=6e-5), name
        assert tuned == pytest.approx(expected[name]["tuned"], abs=6e-5), name
    demo = pd.read_csv(submission, dtype=str, keep_default_na=False)
    assert demo["Id"].tolist() == test_ids
    assert demo["Predicted"].tolist() == expected["labels"]


def reference_blend(root, test_ids) -> dict:
    """Each member's and the mean blend's OOF macro F1 at 0.5 and tuned, and the blend's test labels, computed
    from the run folders' CSV files: thresholds per class by brute force, or the best global grid point by
    scikit-learn for classes with fewer than 5 positives; the no-empty rule."""
    from sklearn.metrics import f1_score
    from test_blend import brute_force_threshold, no_empty_rule, sklearn_global_threshold

    classes = list(HPA.classes)
    folds = pd.read_csv(root / "folds/folds.csv", dtype={"Id": str})
    labels = pd.read_csv(root / "data/train.csv", dtype=str).set_index("Id")["Target"]
    truth = np.zeros((len(folds), len(classes)), dtype=bool)
    for row, sample_id in enumerate(folds["Id"]):
        truth[row, [int(t) for t in labels[sample_id].split()]] = True
    oof, test = {}, {}
    for model in MODELS:
        runs = [root / "runs" / model / f"fold{k}" for k in (0, 1)]
        frame = pd.concat([pd.read_csv(run / "oof.csv", dtype={"Id": str}) for run in runs]).set_index("Id")
        oof[model] = frame.loc[folds["Id"], classes].to_numpy()
        test[model] = np.mean([pd.read_csv(run / "test.csv", dtype={"Id": str}).set_index("Id").loc[test_ids, classes]
                               .to_numpy() for run in runs], axis=0)
    oof["blend"] = np.mean([oof[m] for m in MODELS], axis=0)
    test["blend"] = np.mean([test[m] for m in MODELS], axis=0)
    expected = {}
    for name, scores in oof.items():
        global_threshold = sklearn_global_threshold(truth, scores)[0]
        thresholds = [brute_force_threshold(truth[:, c], scores[:, c])[0] if truth[:, c].sum() >= 5
                      else global_threshold for c in range(len(classes))]
        expected[name] = {key: f1_score(truth, no_empty_rule(scores, scores >= np.asarray(cut)), average="macro",
                                        zero_division=0) for key, cut in (("at_0.5", 0.5), ("tuned", thresholds))}
        if name == "blend":
            predicted = no_empty_rule(test["blend"], test["blend"] >= np.asarray(thresholds))
            expected["labels"] = [" ".join(map(str, np.flatnonzero(row))) for row in predicted]
    return expected


def test_second_run_skips_finished_runs_and_resumes_an_interrupted_one(project):
    root, _ = project
    interrupted = root / "runs" / MODELS[1] / "fold1"
    before = pd.read_csv(interrupted / "oof.csv")
    (interrupted / "oof.csv").unlink()
    (interrupted / "test.csv").unlink()
    output = invoke(root, ["run", "experiment.yaml", "--no-submit"]).output
    assert output.count("complete, skipped") == 3
    assert f"runs/{MODELS[1]}/fold1: resuming from last.pt" in output and ": training" not in output
    assert "folds: using folds/folds.csv" in output and "dry run" not in output
    pd.testing.assert_frame_equal(pd.read_csv(interrupted / "oof.csv"), before, atol=1e-6)
    assert (root / "submissions/demo.csv").is_file()


def test_submit_for_real_and_dry_run_from_the_command_line(project, kaggle):
    root, _ = project
    no_submit = {**EXPERIMENT, "submit": {"enabled": False}}
    (root / "no_submit.yaml").write_text(yaml.safe_dump(no_submit))
    output = invoke(root, ["run", "no_submit.yaml"]).output
    assert "dry run" not in output and not kaggle.calls("StartSubmissionUpload")
    output = invoke(root, ["run", "no_submit.yaml", "--dry-run"]).output  # --dry-run alone implies --submit
    assert "dry run: would upload submissions/demo.csv" in output and not kaggle.calls("StartSubmissionUpload")

    output = invoke(root, ["run", "experiment.yaml", "--no-dry-run"]).output
    assert "submitted submissions/demo.csv to human-protein-atlas-image-classification" in output
    assert list(kaggle.uploads.values()) == [(root / "submissions/demo.csv").read_bytes()]
    log = pd.read_csv(root / "submissions/log.csv")
    assert list(log["outcome"]) == ["submitted"] and log["file"][0] == "submissions/demo.csv"
    output = invoke(root, ["run", "experiment.yaml", "--no-dry-run"]).output  # nothing changed: not sent again
    assert "(these exact bytes) went to human-protein-atlas-image-classification at" in output
    assert len(kaggle.calls("StartSubmissionUpload")) == 1 and len(pd.read_csv(root / "submissions/log.csv")) == 1
    (root / "submissions/log.csv").unlink()


def test_changed_settings_are_named_when_a_finished_run_is_skipped(project):
    root, _ = project
    changed = {**EXPERIMENT, "folds": {"k": 3}, "train": {**EXPERIMENT["train"], "epochs": 2}}
    (root / "changed.yaml").write_text(yaml.safe_dump(changed))
    output = invoke(root, ["run", "changed.yaml", "--no-submit"]).output
    assert "warning: folds/folds.csv has 2 folds, the experiment asks for 3; using the file's" in output
    assert output.count("complete, skipped (its settings differ: epochs; delete it to train again)") == 4


def test_report_on_runs_and_on_a_blend_json(project, monkeypatch):
    root, _ = project
    figures = saved_figures(monkeypatch)
    run = root / "runs" / MODELS[0] / "fold0"
    output = invoke(root, ["report", str(run), "submissions/demo.json"]).output
    per_class = root / "submissions/demo_per_class.png"
    for png in (run / "curves.png", per_class):
        assert png_size(png)[0] > 1000
        assert f"wrote {png.relative_to(root) if png == per_class else png}" in output
    assert output.splitlines()[-1].startswith("blend (mean)")
    # what is drawn: the run's history, and the blend's per-class F1 of its JSON
    curves, chart = figures
    history = pd.read_csv(run / "history.csv")
    train_line = next(line for line in curves.axes[0].get_lines() if line.get_label() == "train")
    assert list(train_line.get_ydata()) == pytest.approx(history["train_loss"].tolist())
    report = json.loads((root / "submissions/demo.json").read_text())
    bars = sorted(round(p.get_height(), 6) for p in chart.axes[0].patches)
    tuned = report["blend"]["per_class"]["tuned"]
    assert bars and set(bars) <= {round(v, 6) for v in tuned}
    score = report["blend"]["score"]
    assert any(f"{score['at_0.5']:.3f} at 0.5, {score['tuned']:.3f} tuned" in t.get_text() for t in chart.texts)

    output = invoke(root, ["report", "runs"]).output
    assert output.count("curves.png") == 4 and output.count("folds.png") == 2
    assert (root / "runs" / MODELS[1] / "folds.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("args, message", [
    (["report", "nowhere"], "nowhere: not found"),
    (["report", "data"], "data: no history.csv in it or in its folders"),
    (["report", "data/train.csv"], "expected a run folder or a `kit blend` JSON report"),
    (["report", "folds/folds_summary.csv"], "expected a run folder"),
])
def test_report_problems_are_one_line(project, args, message):
    root, _ = project
    assert message in error_line(invoke(root, args, expect=1))


@pytest.mark.parametrize("change, message", [
    ({"trian": {}}, "unknown section(s) trian"),
    ({"blend": {"name": "demo", "methd": "mean"}}, "blend: unknown key(s) methd"),
    ({"blend": {"method": "median"}}, "blend.method: 'median' is not one of mean, rank, weighted, hill"),
    ({"blend": {"name": "../x"}}, "blend.name: '../x' is not a plain file name"),
    ({"folds": {"k": 1}}, "folds.k: must be at least 2"),
    ({"submit": {"enabled": "yes please"}}, "submit.enabled: expected true or false"),
    ({"train": {**EXPERIMENT["train"], "models": ["no_such_net"]}}, "train.models: unknown model 'no_such_net'"),
    ({"train": {**EXPERIMENT["train"], "models": ["test_resnet", {"name": "test_resnet", "lr": 0.1}]}},
     "two entries would write runs/test_resnet"),
    ({"train": {**EXPERIMENT["train"], "epochs": "many"}}, "train: epochs: expected int"),
    ({"train": {"size": 32}}, "train.models: no models listed"),
])
def test_bad_experiment_files_are_one_line_and_write_nothing(tmp_path, change, message):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**EXPERIMENT, **change}))
    line = error_line(invoke(tmp_path, ["run", "bad.yaml", "--data", "nowhere"], expect=1))
    assert line.startswith("Error: bad.yaml: ") and message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_missing_experiment_and_broken_yaml(tmp_path):
    line = error_line(invoke(tmp_path, ["run", "nosuch"], expect=1))
    assert "nosuch: experiment file not found, and not a shipped experiment (shipped: demo)" in line
    (tmp_path / "broken.yaml").write_text("train: [unclosed\n")
    assert "broken.yaml: line 2 not valid YAML" in error_line(invoke(tmp_path, ["run", "broken.yaml"], expect=1))
    # the shipped demo needs its data set in ./data (scripts/demo.sh writes it)
    assert "data folder not found" in error_line(invoke(tmp_path, ["run", "demo"], expect=1))


def test_the_shipped_demo_experiment_resolves():
    assert "demo" in shipped_experiments()
    plan = load_experiment("demo")
    assert plan.path == find_experiment("demo") and plan.path.name == "demo.yaml"
    assert [s.model for s in plan.runs] == list(MODELS)  # both exist in timm: checked on load
    assert {(s.size, s.tta) for s in plan.runs} == {(64, "d4")} and plan.folds["k"] == 5
    assert plan.blend["name"] == "demo" and plan.submit == {**plan.submit, "enabled": True, "dry_run": True}
    assert plan.data.root.as_posix() == "data"
