"""Tracking of `kit train` and `kit blend`: TensorBoard event files (always) and MLflow runs (--track mlflow), read
back with their own libraries (tensorboard's EventAccumulator, MlflowClient) against history.csv and config.yaml."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from test_budget import STOPPED_EXIT_CODE, fake_time  # noqa: F401 (fake_time: a fixture)

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA

pytestmark = pytest.mark.usefixtures("one_thread")


def train_args(data, folds, runs, *extra):
    return ["train", "--data", str(data), "--folds", str(folds), "--runs", str(runs), "--model", "test_resnet",
            "--size", "32", "--epochs", "2", "--batch-size", "8", "--workers", "0", "--no-progress", "--tta", "none",
            "--device", "cpu", *extra]


def invoke(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def folds(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=2, seed=0)
    return out


def events(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_scalars_equal_history_epoch_by_epoch(synth_dir, folds, tmp_path):
    invoke(train_args(synth_dir, folds, tmp_path / "runs"))
    fold = tmp_path / "runs" / "test_resnet" / "fold0"
    history = pd.read_csv(fold / "history.csv")
    accumulator = events(fold / "tb")
    tags = accumulator.Tags()
    for column in ("lr", "train_loss", "val_loss", "val_macro_f1", "val_macro_f1_tuned"):
        scalars = accumulator.Scalars(column)
        assert [s.step for s in scalars] == history["epoch"].tolist()
        np.testing.assert_allclose([s.value for s in scalars], history[column], rtol=1e-6)
    assert {"lr/head", "lr/backbone"} <= set(tags["scalars"])
    np.testing.assert_allclose([s.value for s in accumulator.Scalars("lr/head")], history["lr"], rtol=1e-6)
    # the per-class metric at the best epoch, from the fold's oof.csv, against scikit-learn
    from sklearn.metrics import f1_score

    best_epoch = int(history.loc[history["val_macro_f1_tuned"].idxmax(), "epoch"])
    oof = pd.read_csv(fold / "oof.csv").set_index("Id")
    labels = CompetitionData(synth_dir, HPA).train_labels().set_index("Id").loc[oof.index]
    truth = np.zeros(oof.shape, dtype=int)
    for row, target in enumerate(labels["labels"]):
        truth[row, list(target)] = 1
    expected = f1_score(truth, (oof.to_numpy() >= 0.5).astype(int), average=None, zero_division=0)
    for index in (0, 25):
        (point,) = accumulator.Scalars(f"per_class_at_0.5/{HPA.classes[index]}")
        assert point.step == best_epoch
        assert point.value == pytest.approx(expected[index], abs=1e-6)
    # one grid of augmented images, 4 x 4 tiles of 32 px with 2 px padding
    (image,) = accumulator.Images("augmented")
    assert (image.width, image.height) == (4 * 34 + 2, 4 * 34 + 2)


@pytest.mark.slow
def test_a_fresh_run_replaces_the_old_events_and_resume_appends(synth_dir, folds, tmp_path):
    runs = tmp_path / "runs"
    invoke(train_args(synth_dir, folds, runs, "--epochs", "1"))
    invoke(train_args(synth_dir, folds, runs, "--epochs", "2", "--resume"))
    accumulator = events(runs / "test_resnet" / "fold0" / "tb")
    assert [s.step for s in accumulator.Scalars("train_loss")] == [1, 2]
    assert len(accumulator.Images("augmented")) == 1  # drawn once, when the fold started
    invoke(train_args(synth_dir, folds, runs, "--epochs", "1"))
    assert [s.step for s in events(runs / "test_resnet" / "fold0" / "tb").Scalars("train_loss")] == [1]


@pytest.mark.slow
def test_mlflow_logs_folds_under_a_model_run_and_the_blend(synth_dir, folds, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    invoke(train_args(synth_dir, folds, "runs", "--fold", "all", "--track", "mlflow"))
    invoke(["blend", "runs", "--data", str(synth_dir), "--folds", str(folds), "--out", "submissions",
            "--track", "mlflow"])
    assert (tmp_path / "mlruns.db").is_file()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.info.run_name == "test_resnet"]
    folds_runs = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1 and sorted(folds_runs) == ["test_resnet/fold0", "test_resnet/fold1"]
    for k, run in enumerate(folds_runs[f"test_resnet/fold{i}"] for i in range(2)):
        fold = tmp_path / "runs" / "test_resnet" / f"fold{k}"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.info.status == "FINISHED"
        config = yaml.safe_load((fold / "config.yaml").read_text())["train"]
        params = run.data.params
        assert set(params) == set(config)
        for key, value in config.items():
            assert (params[key] if isinstance(value, str) else json.loads(params[key])) == value, key
        history = pd.read_csv(fold / "history.csv")
        for column in ("train_loss", "val_loss", "lr", "val_macro_f1", "val_macro_f1_tuned"):
            logged = client.get_metric_history(run.info.run_id, column)
            assert [m.step for m in sorted(logged, key=lambda m: m.step)] == history["epoch"].tolist()
            np.testing.assert_allclose([m.value for m in sorted(logged, key=lambda m: m.step)], history[column])
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "history.csv", "curves.png"} <= artifacts
    (blend,) = [r for r in runs if r.data.tags.get("kit.kind") == "blend"]
    report = json.loads((tmp_path / "submissions" / "blend.json").read_text())
    for flavour, value in report["blend"]["score"].items():
        assert blend.data.metrics[f"blend_{flavour}"] == pytest.approx(value, abs=5e-6)  # the JSON rounds to 5 digits
    assert json.loads(blend.data.params["members"]) == [m if isinstance(m, str) else m["name"]
                                                        for m in report["members"]]
    assert {"blend.json", "blend.csv"} <= {a.path for a in client.list_artifacts(blend.info.run_id)}


def test_a_run_stopped_by_the_time_limit_is_killed_in_mlflow_and_resume_finishes_it(
        synth_dir, folds, tmp_path, monkeypatch, fake_time):  # noqa: F811
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = train_args(synth_dir, folds, "runs", "--fold", "0", "--track", "mlflow")
    stopped = CliRunner().invoke(main, [*args, "--time-limit", "9s", "--checkpoint-every", "3s"])
    assert stopped.exit_code == STOPPED_EXIT_CODE, stopped.output
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]

    def fold_runs():
        return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]

    (killed,) = fold_runs()
    assert killed.info.status == "KILLED"
    invoke([*args, "--resume"])
    (finished,) = fold_runs()
    assert finished.info.run_id == killed.info.run_id and finished.info.status == "FINISHED"
    epochs = client.get_metric_history(finished.info.run_id, "train_loss")
    assert sorted(m.step for m in epochs) == [1, 2]
