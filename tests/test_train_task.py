"""Training scored by a probability metric (log loss picks best.pt downward) and the multiclass pieces: softmax
cross-entropy with soft targets, a softmax prior bias, softmax probabilities through TTA, refused losses."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss

from kit.data.folds import make_folds
from kit.data.reading import CompetitionData, labels_to_matrix
from kit.data.spec import HPA
from kit.errors import KitError
from kit.score.metrics import parse_metric
from kit.settings import resolve_settings
from kit.train.checkpoint import load_checkpoint
from kit.train.loop import history_columns, train_fold
from kit.train.losses import make_loss
from kit.train.task import check_loss, monitor_for, prior_bias, probabilities
from kit.train.tta import tta_probabilities

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"size": 32, "batch_size": 8, "workers": 0, "progress": False, "tta": "none", "device": "cpu"}


@pytest.mark.slow
def test_logloss_is_monitored_downward_and_best_pt_is_the_lowest_epoch(synth_dir, tmp_path):
    spec = dataclasses.replace(HPA, metric="logloss")
    data = CompetitionData(synth_dir, spec)
    folds = tmp_path / "folds.csv"
    make_folds(data.train_labels(), spec, out=folds, k=3, seed=0)
    # at this learning rate the validation log loss moves both ways over the epochs (lowest at epoch 1)
    settings = resolve_settings(options={**FAST, "epochs": 4, "lr": 0.01, "folds": str(folds), "runs": str(tmp_path),
                                         "model": "test_resnet", "fold": 0})[0]
    result = train_fold(settings, data, out_dir=tmp_path / "run", log=lambda _line: None)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history.columns) == history_columns(spec.scorer)
    assert "val_logloss" in history.columns and not any(c.endswith("_tuned") for c in history.columns)
    best = int(history.loc[history["val_logloss"].idxmin(), "epoch"])
    assert best != int(history.loc[history["val_logloss"].idxmax(), "epoch"])
    assert result.best_epoch == best and load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == best
    # the column is the metric of the best epoch's predictions: scikit-learn's log loss over every cell
    oof = pd.read_csv(tmp_path / "run" / "oof.csv", dtype={"Id": str})
    labels = data.train_labels().set_index("Id").loc[oof["Id"], "labels"].tolist()
    truth = labels_to_matrix(labels, spec.num_classes)
    expected = log_loss(truth.ravel(), oof[list(spec.classes)].to_numpy().ravel(), labels=[0, 1])
    assert history.loc[history["epoch"] == best, "val_logloss"].item() == pytest.approx(expected, rel=1e-4)


def test_monitor_directions():
    assert monitor_for("val_metric_tuned", parse_metric("logloss")).column == "val_logloss"
    assert not monitor_for("val_metric", parse_metric("logloss")).better(0.5, 0.4)
    assert monitor_for("val_metric", parse_metric("macro_auc")).better(0.9, 0.8)
    assert monitor_for("val_metric_tuned", parse_metric("macro_f1")).column == "val_macro_f1_tuned"
    assert not monitor_for("val_loss", parse_metric("macro_auc")).better(0.5, 0.4)
    assert not monitor_for("val_metric", parse_metric("macro_auc")).better(float("nan"), None)


def test_softmax_cross_entropy_takes_soft_targets_and_refuses_multilabel_losses():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]])
    hard = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    loss = make_loss({"bce": 1.0}, task="multiclass")
    expected = -np.mean([np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))),
                         np.log(np.exp(0.3) / np.exp([0.1, 0.2, 0.3]).sum())])
    assert loss(logits, hard).item() == pytest.approx(expected, rel=1e-6)
    smoothed = hard * 0.8 + 0.1  # label smoothing cell by cell: rows sum to 1.1, renormalised
    target = (smoothed / smoothed.sum(1, keepdim=True)).numpy()
    log_p = torch.log_softmax(logits, 1).numpy()
    assert loss(logits, smoothed).item() == pytest.approx(-(target * log_p).sum(1).mean(), rel=1e-6)
    with pytest.raises(KitError, match="train.loss: focal is a multi-label loss"):
        check_loss("multiclass", {"bce": 1.0, "focal": 0.5}, "none")
    with pytest.raises(KitError, match="train.pos_weight"):
        check_loss("multiclass", {"bce": 1.0}, "auto")
    check_loss("multilabel", {"focal": 1.0}, "auto")


def test_softmax_prior_bias_gives_the_class_frequencies_and_tta_averages_softmax():
    targets = np.eye(3)[[0, 0, 0, 1, 2, 2]]
    bias = torch.as_tensor(prior_bias(targets, "multiclass"))
    np.testing.assert_allclose(torch.softmax(bias, 0).numpy(), [0.5, 1 / 6, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(torch.sigmoid(torch.as_tensor(prior_bias(targets, "multilabel"))).numpy(),
                               [0.5, 1 / 6, 1 / 3], rtol=1e-6)

    class Model(torch.nn.Module):
        task = "multiclass"

        def forward(self, images):
            return images.mean(dim=(2, 3)) * torch.tensor([1.0, 2.0, 3.0])

    model = Model()
    images = torch.rand(4, 3, 8, 8)
    probs = tta_probabilities(model, images, "flip")
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs.numpy(), probabilities(model, model(images)).numpy(), rtol=1e-5)


@pytest.mark.slow
def test_a_multiclass_run_predicts_softmax_rows_and_scores_accuracy(synth_dir, tmp_path):
    spec = dataclasses.replace(HPA, task="multiclass", metric="accuracy")
    root = tmp_path / "data"
    shutil.copytree(synth_dir, root)
    labels = pd.read_csv(root / "train.csv", dtype=str)
    labels["Target"] = labels["Target"].str.split().str[0]  # one class per image
    labels.to_csv(root / "train.csv", index=False)
    data = CompetitionData(root, spec)
    folds = tmp_path / "folds.csv"
    make_folds(data.train_labels(), spec, out=folds, k=3, seed=0)
    settings = resolve_settings(options={**FAST, "epochs": 1, "tta": "flip", "folds": str(folds),
                                         "runs": str(tmp_path), "model": "test_resnet", "fold": 0})[0]
    train_fold(settings, data, out_dir=tmp_path / "run", log=lambda _line: None)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history.columns) == ["epoch", "lr", "train_loss", "val_loss", "val_accuracy", "seconds"]
    for split in ("oof", "test"):
        values = pd.read_csv(tmp_path / "run" / f"{split}.csv", dtype={"Id": str})[list(spec.classes)].to_numpy()
        np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-5)  # softmax rows, TTA-averaged
    assert 0.0 <= history["val_accuracy"].item() <= 1.0
