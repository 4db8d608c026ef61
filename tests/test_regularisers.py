"""Mixup / cutmix, label smoothing, drop-path / drop-rate, SWA and `kit lr-find`, on CPU with tiny timm models."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision
from click.testing import CliRunner
from helpers import error_line

import kit.train.mixing
from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.settings import resolve_settings
from kit.train import find_lr
from kit.train.checkpoint import load_checkpoint
from kit.train.loop import train_fold
from kit.train.losses import MultiLabelLoss
from kit.train.mixing import BatchMixer
from kit.train.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"size": 32, "batch_size": 8, "workers": 0, "progress": False, "epochs": 1, "tta": "none",
        "model": "test_resnet", "fold": 0, "device": "cpu"}  # cpu: resumed runs compared bit for bit, on GPUs too


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


def settings_for(folds_csv, runs, **changes):
    return resolve_settings(options={**FAST, "folds": str(folds_csv), "runs": str(runs), **changes})[0]


def constant_batch(n: int = 8, classes: int = 6, size: int = 16):
    """Image i is the constant i + 1 (so every pixel says which images were blended); random multi-hot targets."""
    images = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).repeat(1, 3, size, size)
    targets = (torch.rand(n, classes, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    return images, targets


# ---------------------------------------------------------------- mixing


def test_mixup_targets_are_the_image_weights_applied_to_both_label_rows():
    images, targets = constant_batch()
    mixer = BatchMixer(targets.shape[1], mixup=0.4)
    mixer.reseed(0)
    mixed, soft = mixer(images.clone(), targets)
    n = len(images)
    partner = torch.arange(n).flip(0)
    value = mixed[:, 0, 0, 0]
    own, other = torch.arange(1, n + 1).float(), partner.float() + 1
    lam = (value - other) / (own - other)  # pixel = lam * own + (1 - lam) * partner's
    assert torch.allclose(lam, lam[0]) and 0.05 < lam[0] < 0.95
    expected = lam[0] * targets + (1 - lam[0]) * targets[partner]
    assert torch.allclose(soft, expected, atol=1e-6)
    assert torch.allclose(soft.sum(1), lam[0] * targets.sum(1) + (1 - lam[0]) * targets[partner].sum(1), atol=1e-5)
    assert ((soft > 0) & (soft < 1)).any()


def test_cutmix_targets_follow_the_pasted_area_and_smoothing_moves_to_eps():
    images, targets = constant_batch(size=32)
    eps = 0.05
    mixer = BatchMixer(targets.shape[1], cutmix=1.0, smoothing=eps)
    mixer.reseed(3)
    mixed, soft = mixer(images.clone(), targets)
    n = len(images)
    partner = torch.arange(n).flip(0)
    pasted = (mixed[:, 0] == (partner.float() + 1).view(n, 1, 1)).float().mean(dim=(1, 2))
    lam = 1 - pasted  # the share of each image that is still its own
    hard = lam.view(n, 1) * targets + (1 - lam.view(n, 1)) * targets[partner]
    assert 0 < pasted[0] < 1
    assert torch.allclose(soft, hard * (1 - 2 * eps) + eps, atol=1e-6)
    # smoothing alone: exactly eps and 1 - eps
    _, smoothed = BatchMixer(targets.shape[1], smoothing=eps)(images.clone(), targets)
    assert torch.allclose(smoothed, torch.where(targets > 0, torch.tensor(1 - eps), torch.tensor(eps)))


def test_an_odd_batch_mixes_all_but_its_last_image():
    images, targets = constant_batch(n=7)
    mixer = BatchMixer(targets.shape[1], mixup=1.0)
    mixer.reseed(0)
    mixed, soft = mixer(images.clone(), targets)
    assert torch.equal(mixed[-1], images[-1]) and torch.equal(soft[-1], targets[-1])
    assert not torch.equal(mixed[:6], images[:6])


def test_mixing_happens_only_in_training(synth_dir, folds_csv, tmp_path, monkeypatch):
    seen = []
    original = BatchMixer.__call__

    def spy(self, images, targets):
        seen.append(len(images))
        return original(self, images, targets)

    monkeypatch.setattr(kit.train.mixing.BatchMixer, "__call__", spy)
    settings = settings_for(folds_csv, tmp_path, mixup=0.4, cutmix=1.0, label_smoothing=0.1, epochs=2)
    data = CompetitionData(synth_dir, HPA)
    result = train_fold(settings, data, log=lambda line: None)
    folds = pd.read_csv(folds_csv)
    train_images = int((folds["fold"] != 0).sum())
    per_epoch = train_images // 8 * 8  # drop_last: only full batches
    assert sum(seen) == 2 * per_epoch  # nothing from validation or prediction
    assert len(pd.read_csv(result.files["oof"])) == int((folds["fold"] == 0).sum())


# ---------------------------------------------------------------- losses


def test_losses_take_soft_targets():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=gen, requires_grad=True)
    soft = torch.rand(16, 5, generator=gen)
    hard = (soft > 0.5).float()
    p = torch.sigmoid(logits.detach()).numpy().astype(np.float64)
    t = soft.numpy().astype(np.float64)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    assert MultiLabelLoss({"bce": 1.0})(logits, soft).item() == pytest.approx(bce, rel=1e-5)
    f1 = 1 - (2 * (p * t).sum(0) / (p.sum(0) + t.sum(0) + 1e-7)).mean()
    assert MultiLabelLoss({"soft_f1": 1.0})(logits, soft).item() == pytest.approx(f1, rel=1e-5)
    # focal: torchvision's on 0/1 targets; smallest where p equals a soft target
    reference = torchvision.ops.sigmoid_focal_loss(logits.detach(), hard, alpha=-1, gamma=2.0, reduction="mean")
    assert MultiLabelLoss({"focal": 1.0})(logits, hard).item() == pytest.approx(reference.item(), rel=1e-5)
    grid = torch.linspace(-4, 4, 801).view(-1, 1)
    for target in (0.1, 0.3, 0.5, 0.8):
        values = [MultiLabelLoss({"focal": 1.0})(g.view(1, 1), torch.tensor([[target]])).item() for g in grid]
        assert torch.sigmoid(grid[int(np.argmin(values))]).item() == pytest.approx(target, abs=0.01)
    total = MultiLabelLoss({"bce": 1.0, "focal": 1.0, "soft_f1": 0.5})(logits, soft)
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------- drop-path / drop-rate


def test_drop_path_reaches_timm_and_unsupported_backbones_are_one_clear_line(synth_dir, folds_csv, tmp_path):
    from timm.layers import DropPath

    model, _ = create_model("test_resnet", 4, 28, "none", drop_path=0.2, drop_rate=0.3)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    assert rates and max(rates) == pytest.approx(0.2) and model.backbone.drop_rate == 0.3
    x = torch.randn(4, 4, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))  # stochastic depth and dropout are on in training
    model.eval()
    assert torch.equal(model(x), model(x))
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(tmp_path / "runs"),
            "--size", "32", "--epochs", "1", "--workers", "0"]
    line = error_line(CliRunner().invoke(main, [*args, "--model", "smp:resnet18", "--drop-path", "0.1"]))
    assert "smp:resnet18" in line and "drop_path" in line and "smp:tu-resnet18" in line
    refused = CliRunner().invoke(main, [*args, "--model", "test_resnet", "--label-smoothing", "0.7"])
    assert refused.exit_code == 2 and "Error: Invalid value for '--label-smoothing': 0.7" in refused.output
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- SWA


def _train_images(synth_dir, folds_csv, mean, std) -> torch.Tensor:
    """The fold's training images read with cv2 and normalised by hand (not through kit's loader)."""
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    ids = folds.loc[folds["fold"] != 0, "Id"]
    images = [np.stack([cv2.imread(str(synth_dir / "train" / f"{i}_{c}.png"), cv2.IMREAD_UNCHANGED)
                        for c in HPA.channels]) for i in ids]
    x = torch.as_tensor(np.stack(images), dtype=torch.float32) / 255
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def test_swa_averages_the_last_epochs_and_recomputes_batch_norm(synth_dir, folds_csv, tmp_path):
    settings = settings_for(folds_csv, tmp_path, epochs=3, swa=2, augment="none", batch_size=64, lr=3e-3)
    captured = {}

    def keep(epoch, model, row):
        captured[epoch + 1] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    result = train_fold(settings, CompetitionData(synth_dir, HPA), log=lambda line: None, on_epoch_end=keep)
    last = load_checkpoint(result.out_dir / "last.pt")
    swa = last["swa"]
    assert int(swa["n_averaged"]) == 2
    for name, value in captured[3].items():
        if value.is_floating_point() and "running" not in name:
            expected = (captured[2][name] + captured[3][name]) / 2
            assert torch.allclose(swa[f"module.{name}"], expected, atol=1e-6), name
    # BN statistics of the averaged weights, recomputed on the training images (one batch of all of them)
    x = _train_images(synth_dir, folds_csv, last["settings"]["mean"], last["settings"]["std"])
    weight = (captured[2]["backbone.conv1.0.weight"] + captured[3]["backbone.conv1.0.weight"]) / 2
    features = F.conv2d(x, weight, stride=2, padding=1)
    assert torch.allclose(swa["module.backbone.conv1.1.running_mean"], features.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(swa["module.backbone.conv1.1.running_var"],
                          features.transpose(0, 1).reshape(features.shape[1], -1).var(dim=1), rtol=1e-4)
    assert not torch.allclose(swa["module.backbone.conv1.1.running_mean"],
                              captured[3]["backbone.conv1.1.running_mean"])
    # the best epoch is one of the averaged ones, and best.pt holds the average up to it
    assert result.best_epoch in (2, 3)
    best = load_checkpoint(result.out_dir / "best.pt")["model"]
    name = "head.fc.weight"
    expected = captured[2][name] if result.best_epoch == 2 else (captured[2][name] + captured[3][name]) / 2
    assert torch.allclose(best[name], expected, atol=1e-6)


# ---------------------------------------------------------------- exact resume


def test_resume_is_exact_with_mixup_swa_and_drop_path(synth_dir, folds_csv, tmp_path):
    changes = dict(epochs=3, swa=2, mixup=0.4, cutmix=1.0, mix_prob=0.8, label_smoothing=0.05, drop_path=0.2,
                   drop_rate=0.1, seed=5)
    data = CompetitionData(synth_dir, HPA)
    train_fold(settings_for(folds_csv, tmp_path / "straight", **changes), data, log=lambda line: None)

    class Interrupt(Exception):
        pass

    def stop(epoch, model, row):
        if epoch == 1:
            raise Interrupt

    resumed_settings = settings_for(folds_csv, tmp_path / "resumed", **changes)
    with pytest.raises(Interrupt):
        train_fold(resumed_settings, data, log=lambda line: None, on_epoch_end=stop)
    np.random.seed(123)  # the global generators as another process would leave them
    torch.manual_seed(123)
    train_fold(resumed_settings, data, resume=True, log=lambda line: None)
    straight = torch.load(tmp_path / "straight" / "test_resnet" / "fold0" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "test_resnet" / "fold0" / "last.pt", weights_only=True)
    for part in ("model", "swa"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key} differs"
    for name in ("history.csv", "oof.csv", "test.csv"):
        a = pd.read_csv(tmp_path / "straight" / "test_resnet" / "fold0" / name)
        b = pd.read_csv(tmp_path / "resumed" / "test_resnet" / "fold0" / name)
        pd.testing.assert_frame_equal(a.drop(columns="seconds", errors="ignore"),
                                      b.drop(columns="seconds", errors="ignore"))


# ---------------------------------------------------------------- lr-find


def _tree(path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_lr_find_plots_suggests_inside_the_range_and_leaves_runs_alone(synth_dir, folds_csv, tmp_path):
    runs = tmp_path / "runs"
    train_fold(settings_for(folds_csv, runs), CompetitionData(synth_dir, HPA), log=lambda line: None)
    before = _tree(runs)
    png = tmp_path / "plots" / "lr.png"
    result = CliRunner().invoke(main, [
        "lr-find", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--model", "test_resnet",
        "--fold", "0", "--size", "32", "--batch-size", "8", "--workers", "0", "--no-progress", "--no-prior-bias",
        "--mixup", "0.2", "--steps", "40", "--start-lr", "1e-5", "--end-lr", "10", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert _tree(runs) == before
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
    line = next(line for line in result.output.splitlines() if line.startswith("suggested --lr"))
    suggested = float(line.split()[2])
    assert 1e-5 <= suggested <= 10

    settings = settings_for(folds_csv, runs, prior_bias=False, freeze_epochs=0)
    found = find_lr(settings, CompetitionData(synth_dir, HPA), start_lr=1e-4, end_lr=1.0, steps=30,
                    out=tmp_path / "lib.png", log=lambda line: None)
    assert (tmp_path / "lib.png").is_file() and _tree(runs) == before
    assert found.lrs[0] == pytest.approx(1e-4) and np.all(np.diff(found.lrs) >= 0) and found.lrs[-1] <= 1.0 + 1e-9
    for lr in (found.suggestion, found.steepest, found.minimum):
        assert found.lrs[0] <= lr <= found.lrs[-1]
    assert found.minimum == pytest.approx(found.lrs[int(np.argmin(found.smoothed))])


def test_lr_find_bad_range_is_one_clear_line(synth_dir, folds_csv, tmp_path):
    result = CliRunner().invoke(main, ["lr-find", "--data", str(synth_dir), "--folds", str(folds_csv),
                                       "--model", "test_resnet", "--start-lr", "1", "--end-lr", "0.1"])
    assert "start lr" in error_line(result)
