"""Training options checked by what they do, against references computed here: accumulate, clip_grad,
monitor, prior_bias, the channel statistics, and the TTA predictions in test.csv; `kit predict` never writes
NaN. All on CPU (bit-exact comparisons), tiny models at 32 px."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData, read_sample_ids
from kit.data.spec import HPA
from kit.settings import resolve_settings
from kit.train.loop import train_fold
from kit.train.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = {"size": 32, "batch_size": 8, "workers": 0, "progress": False, "epochs": 1, "tta": "none", "device": "cpu",
        "augment": "none"}


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


def train(synth_dir, folds_csv, runs, **settings):
    values = {**FAST, **settings, "folds": str(folds_csv), "runs": str(runs), "fold": 0}
    values.setdefault("model", "test_resnet")
    options = resolve_settings(options=values)[0]
    return options, train_fold(options, CompetitionData(synth_dir, HPA), log=lambda line: None)


def plain_image(folder, sample_id):
    return np.dstack([cv2.imread(str(folder / f"{sample_id}_{c}.png"), cv2.IMREAD_UNCHANGED) for c in HPA.channels])


def fold_rows(synth_dir, folds_csv, fold=0):
    """(train Ids, their 0/1 labels) of the fold, from train.csv and folds.csv by pandas."""
    labels = pd.read_csv(synth_dir / "train.csv", dtype=str, keep_default_na=False)
    folds = pd.read_csv(folds_csv, dtype={"Id": str}).set_index("Id")["fold"]
    train = labels[labels["Id"].map(folds) != fold]
    matrix = np.zeros((len(train), HPA.num_classes))
    for row, target in enumerate(train["Target"]):
        matrix[row, [int(t) for t in target.split()]] = 1
    return train["Id"].tolist(), matrix


@pytest.fixture(scope="module")
def still(synth_dir, folds_csv, tmp_path_factory):
    """A run whose weights cannot move (lr 0, no decay): what it saves is what it started from."""
    runs = tmp_path_factory.mktemp("still")
    options, result = train(synth_dir, folds_csv, runs, lr=0.0, weight_decay=0.0, tta="flip")
    return options, result, torch.load(result.out_dir / "best.pt", weights_only=True)


def test_channel_statistics_are_those_of_the_fold_training_images(still, synth_dir, folds_csv):
    _, result, best = still
    ids, _ = fold_rows(synth_dir, folds_csv)
    pixels = np.stack([plain_image(synth_dir / "train", i) for i in ids]).astype(np.float64) / 255
    mean, std = pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2))
    assert best["settings"]["mean"] == pytest.approx(mean, abs=1e-5)
    assert best["settings"]["std"] == pytest.approx(std, abs=1e-5)
    config = (result.out_dir / "config.yaml").read_text()
    assert f"- {best['settings']['mean'][0]}" in config


def test_prior_bias_starts_each_class_at_its_log_odds(still, synth_dir, folds_csv, tmp_path):
    options, _, best = still
    _, targets = fold_rows(synth_dir, folds_csv)
    p = np.clip(targets.mean(axis=0), 1e-4, 1 - 1e-4)
    bias = [v for k, v in best["model"].items() if k.endswith("bias") and v.shape == (HPA.num_classes,)]
    assert len(bias) == 1
    np.testing.assert_allclose(bias[0].numpy(), np.log(p / (1 - p)), rtol=1e-5)

    _, result = train(synth_dir, folds_csv, tmp_path, lr=0.0, weight_decay=0.0, prior_bias=False)
    off = [v for k, v in torch.load(result.out_dir / "best.pt", weights_only=True)["model"].items()
           if k.endswith("bias") and v.shape == (HPA.num_classes,)]
    fresh = [v for k, v in build_model(options, HPA)[0].state_dict().items()
             if k.endswith("bias") and v.shape == (HPA.num_classes,)]
    assert torch.equal(off[0], fresh[0])  # left as the model made it


def test_test_csv_holds_the_flip_tta_predictions_of_the_best_checkpoint(still, synth_dir):
    options, result, best = still
    model, _ = build_model(options.replace(pretrained="none"), HPA)
    model.load_state_dict(best["model"])
    model.eval()
    ids = read_sample_ids(synth_dir / "sample_submission.csv", HPA)
    mean, std = np.array(best["settings"]["mean"]), np.array(best["settings"]["std"])
    images = np.stack([(plain_image(synth_dir / "test", i) / 255.0 - mean) / std for i in ids])
    images = images.transpose(0, 3, 1, 2).astype(np.float32)  # N x C x H x W
    views = [images, images[..., ::-1], images[..., ::-1, :], images[..., ::-1, ::-1]]
    with torch.no_grad():
        expected = np.mean([torch.sigmoid(model(torch.from_numpy(v.copy()))).numpy() for v in views], axis=0)
    test = pd.read_csv(result.out_dir / "test.csv", dtype={"Id": str})
    assert test["Id"].tolist() == ids
    np.testing.assert_allclose(test[list(HPA.classes)].to_numpy(), expected, atol=1e-5)


def parameters(path):
    return torch.load(path, weights_only=True)["model"]


def test_accumulating_two_half_batches_equals_one_full_batch(synth_dir, folds_csv, tmp_path):
    # test_convnext has no batch statistics, so 2 x 4 images with accumulate 2 take the same steps as 8 at once
    common = {"model": "test_convnext", "dropout": 0.0, "epochs": 2, "lr": 3e-3, "seed": 1}
    _, full = train(synth_dir, folds_csv, tmp_path / "full", batch_size=8, **common)
    _, halves = train(synth_dir, folds_csv, tmp_path / "halves", batch_size=4, accumulate=2, **common)
    _, small = train(synth_dir, folds_csv, tmp_path / "small", batch_size=4, **common)
    a, b, c = (parameters(r.out_dir / "last.pt") for r in (full, halves, small))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    assert any((a[key] - c[key]).abs().max() > 1e-3 for key in a)  # without accumulating: other steps
    steps = [torch.load(r.out_dir / "last.pt", weights_only=True)["scheduler"]["last_epoch"]
             for r in (full, halves, small)]
    assert steps == [2 * 5, 2 * 5, 2 * 10]  # 40 train images: 5 steps of 8 (or 2 x 4), 10 of 4


def test_clip_grad_bounds_every_step(synth_dir, folds_csv, tmp_path):
    common = {"weight_decay": 0.0, "schedule": "constant", "lr": 1e-2}
    options, free = train(synth_dir, folds_csv, tmp_path / "free", **common)
    _, clipped = train(synth_dir, folds_csv, tmp_path / "clipped", clip_grad=1e-12, **common)
    start = build_model(options, HPA)[0]
    names = [name for name, p in start.named_parameters() if name.endswith("weight") and p.ndim > 1]
    initial = start.state_dict()
    moved = {kind: max((parameters(r.out_dir / "last.pt")[n] - initial[n]).abs().max().item() for n in names)
             for kind, r in (("free", free), ("clipped", clipped))}
    # Adam divides by the gradient's scale, so only a gradient clipped far below its eps (1e-8) stops a step
    assert moved["free"] > 1e-3 and moved["clipped"] < 1e-4 * moved["free"], moved


@pytest.mark.parametrize("monitor, column, pick", [("val_loss", "val_loss", np.argmin),
                                                   ("val_metric", "val_macro_f1", np.argmax),
                                                   ("val_metric_tuned", "val_macro_f1_tuned", np.argmax)])
def test_the_monitor_decides_the_best_checkpoint(synth_dir, folds_csv, tmp_path, monitor, column, pick):
    _, result = train(synth_dir, folds_csv, tmp_path, epochs=3, lr=1e-2, monitor=monitor)
    history = pd.read_csv(result.out_dir / "history.csv")
    best = torch.load(result.out_dir / "best.pt", weights_only=True)
    expected = int(pick(history[column].to_numpy())) + 1  # the first of equal values
    assert best["epoch"] == expected == result.best_epoch
    assert best["metrics"][column] == pytest.approx(history[column][expected - 1])


def test_predict_refuses_to_write_nan(still, tmp_path):
    _, result, best = still
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "oof.csv"):
        (run / name).write_bytes((result.out_dir / name).read_bytes())
    broken = {**best, "model": {k: v.clone() for k, v in best["model"].items()}}
    weight = next(k for k, v in broken["model"].items() if v.ndim == 2)  # the head's linear layer
    broken["model"][weight][0, 0] = float("nan")
    torch.save(broken, run / "best.pt")
    (run / "test.csv").write_text("kept\n")
    line = error_line(CliRunner().invoke(main, ["predict", str(run), "--workers", "0", "--device", "cpu"]))
    assert "oof.csv: not written: the model predicts NaN for Id" in line and "finite" in line
    assert (run / "test.csv").read_text() == "kept\n"  # nothing was half replaced
