"""The whole flow on each of issue 20's presets, through the CLI: `kit init`, `kit synth --preset`, `kit folds`,
one tiny epoch per fold, `kit blend`, `kit infer`, `kit submit --dry-run`; each submission in the competition's
own shape and scored here with its own metric by scikit-learn against the hidden test labels."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import invoke_in as invoke
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from kit.data.presets import get_preset

pytest_plugins = ["kaggle_server"]  # the stand-in Kaggle server's fixtures: kaggle, stand_in

FAST = ["--size", "32", "--batch-size", "8", "--workers", "0", "--no-progress", "--epochs", "1", "--tta", "none"]
N_TEST = 8


@pytest.fixture(scope="module", params=["ranzcr-clip", "rsna-ich-2019", "plant-pathology-2020", "cassava-2020"])
def project(request, tmp_path_factory):
    import torch

    preset = request.param
    root = tmp_path_factory.mktemp(preset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        invoke(root, ["init", preset])
        invoke(root, ["synth", "data", "--preset", preset, "--n-train", "40", "--n-test", str(N_TEST),
                      "--size", "32", "--seed", "1"])
        invoke(root, ["folds", "--k", "2"])
        invoke(root, ["train", "--fold", "all", "--model", "test_resnet", *FAST])
        invoke(root, ["blend"])
        invoke(root, ["infer", "submissions/blend.json", "--data", "data", "--out", "inferred.csv",
                      "--workers", "1"])
    finally:
        torch.set_num_threads(threads)
    return preset, root


def score(preset: str, submission: pd.DataFrame, truth: pd.DataFrame) -> float:
    """The competition's metric, from scikit-learn, on the submission as written."""
    spec = get_preset(preset).spec()
    if preset == "rsna-ich-2019":
        merged = submission.merge(truth, on="ID", suffixes=("", "_true"), validate="one_to_one")
        weights = np.where(merged["ID"].str.endswith("_any"), 2.0, 1.0)
        return log_loss(merged["Label_true"], merged["Label"].clip(1e-15, 1 - 1e-15), sample_weight=weights)
    if preset == "cassava-2020":
        merged = submission.merge(truth, on="image_id", suffixes=("", "_true"), validate="one_to_one")
        return accuracy_score(merged["label_true"], merged["label"])
    ids = spec.id_column
    merged = truth.set_index(ids).loc[submission[ids]]
    present = [c for c in spec.classes if 0 < merged[c].sum() < len(merged)]
    return float(np.mean([roc_auc_score(merged[c], submission[c]) for c in present]))


def train_truth(preset: str, data) -> pd.DataFrame:
    """The train labels as an Id x class 0/1 frame, read with pandas from the competition's own file."""
    spec = get_preset(preset).spec()
    train = pd.read_csv(data / spec.train_csv, dtype={spec.id_column: str})
    if preset == "rsna-ich-2019":
        parts = train["ID"].str.extract(r"^(ID_[0-9a-f]+)_(\w+)$")
        return train.assign(image=parts[0], subtype=parts[1]).pivot(index="image", columns="subtype",
                                                                     values="Label")[list(spec.classes)]
    if preset == "cassava-2020":
        return pd.get_dummies(train.set_index("image_id")["label"]).reindex(columns=range(5), fill_value=0).set_axis(
            list(spec.classes), axis=1).astype(int)
    return train.set_index(spec.id_column)[list(spec.classes)]


def oof_score(preset: str, truth: np.ndarray, probabilities: np.ndarray) -> float:
    """The competition's metric on OOF rows, from scikit-learn (RSNA: the weighted mean over every cell)."""
    if preset == "rsna-ich-2019":
        weights = np.tile(get_preset(preset).spec().class_weight_array(), (len(truth), 1))
        return log_loss(truth.ravel(), probabilities.ravel().clip(1e-15, 1 - 1e-15), sample_weight=weights.ravel())
    if preset == "cassava-2020":
        return accuracy_score(truth.argmax(axis=1), probabilities.argmax(axis=1))
    scored = [c for c in range(truth.shape[1]) if 0 < truth[:, c].sum() < len(truth)]
    return float(np.mean([roc_auc_score(truth[:, c], probabilities[:, c]) for c in scored]))


@pytest.mark.slow
def test_the_blend_scores_the_oof_rows_with_the_competitions_metric(project):
    preset, root = project
    spec = get_preset(preset).spec()
    report = json.loads((root / "submissions/blend.json").read_text())
    assert report["metric"] == spec.metric
    oof = pd.concat([pd.read_csv(root / f"runs/test_resnet/fold{k}/oof.csv", dtype={spec.id_column: str})
                     for k in (0, 1)]).set_index(spec.id_column)
    truth = train_truth(preset, root / "data").loc[oof.index].to_numpy()
    # one member blended by the mean: the blend's OOF score is the member's
    expected = oof_score(preset, truth, oof[list(spec.classes)].to_numpy())
    assert report["blend"]["score"]["oof"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_each_preset_goes_the_whole_way(project, kaggle):
    preset, root = project
    spec = get_preset(preset).spec()
    data = root / "data"
    sample = pd.read_csv(data / spec.sample_submission)
    blend = pd.read_csv(root / "submissions/blend.csv")
    inferred = pd.read_csv(root / "inferred.csv")
    assert list(blend.columns) == list(sample.columns)
    assert blend[spec.id_column].tolist() == sample[spec.id_column].tolist()  # the sample's rows, its order
    pd.testing.assert_frame_equal(inferred, blend, check_exact=False, atol=1e-5)  # kit infer = the blend
    value = score(preset, blend, pd.read_csv(data / "test_labels.csv"))
    assert np.isfinite(value)
    if preset == "cassava-2020":
        assert set(blend["label"]) <= set(range(5))
    else:
        values = blend.drop(columns=spec.id_column).to_numpy()
        assert ((values >= 0) & (values <= 1)).all()
    result = invoke(root, ["submit", "submissions/blend.csv", "--dry-run", "-m", "flow"])
    assert "dry run: would upload submissions/blend.csv" in result.output
    assert f"({len(sample)} rows" in result.output


@pytest.mark.slow
def test_report_bundle_and_notebook_take_each_format(project, tmp_path):
    """`kit report` draws the per-class chart in the metric's own terms; a bundle of the blend, inferred from alone,
    writes the blend's submission again; the inference kernel is written for it."""
    preset, root = project
    spec = get_preset(preset).spec()
    output = invoke(root, ["report", "submissions/blend.json"]).output
    assert (root / "submissions/blend_per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert spec.scorer.label in output
    bundle = tmp_path / "bundle"
    invoke(root, ["bundle", str(bundle), "--blend", "submissions/blend.json", "--dep", "none"])
    invoke(root, ["infer", str(bundle / "blend.json"), "--data", "data", "--out", str(tmp_path / "from_bundle.csv"),
                  "--workers", "0"])
    assert (tmp_path / "from_bundle.csv").read_bytes() == (root / "submissions/blend.csv").read_bytes()
    invoke(root, ["notebook", str(tmp_path / "kernel"), "--bundle", "tester/bundle"])
    metadata = json.loads((tmp_path / "kernel/kernel-metadata.json").read_text())
    assert metadata["competition_sources"] == [spec.slug] and metadata["dataset_sources"] == ["tester/bundle"]


@pytest.mark.slow
def test_kit_run_takes_a_long_dicom_log_loss_competition(tmp_path):
    """`kit run` from one experiment file on RSNA 2019's layout: long labels, DICOM windows, weighted log loss,
    calibration, and the long submission."""
    import yaml

    experiment = {"folds": {"k": 2, "seed": 0},
                  "train": {"size": 32, "epochs": 1, "batch_size": 8, "workers": 0, "progress": False, "tta": "none",
                            "device": "cpu", "models": [{"name": "test_resnet"}]},
                  "blend": {"name": "rsna"}, "submit": {"enabled": True, "dry_run": True}}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    invoke(tmp_path, ["init", "rsna-ich-2019"])
    invoke(tmp_path, ["synth", "data", "--preset", "rsna-ich-2019", "--n-train", "24", "--n-test", "6",
                      "--size", "32", "--seed", "2"])
    output = invoke(tmp_path, ["run", "experiment.yaml"]).output  # no competition: section: kit.yaml's spec
    assert "competition: rsna-intracranial-hemorrhage-detection (the spec of kit.yaml)" in output
    report = json.loads((tmp_path / "submissions/rsna.json").read_text())
    assert report["metric"] == "logloss" and report["calibration"]["method"] == "temperature"
    submission = pd.read_csv(tmp_path / "submissions/rsna.csv")
    sample = pd.read_csv(tmp_path / "data/stage_2_sample_submission.csv")
    assert submission["ID"].tolist() == sample["ID"].tolist()
    assert "dry run: would upload submissions/rsna.csv" in output
