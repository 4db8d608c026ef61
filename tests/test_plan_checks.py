"""Settings that would give another result than the one asked for are refused before anything trains (one line,
nothing written), or applied: `kit train`, `kit lr-find`, `kit submit` and `kit run`, through the commands."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner
from helpers import error_line
from helpers import invoke_in as invoke

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0", "--no-progress", "--device", "cpu",
        "--tta", "none"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=2, seed=0)
    return out


def train(synth_dir, folds_csv, runs, *args):
    return run("train", "--data", synth_dir, "--folds", folds_csv, "--runs", runs, *FAST, *args)


# ---------------------------------------------------------------- kit train: runs that would share a folder


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--gpus", "cpu,cpu", "--fold", "all"]])
def test_one_name_for_several_models_is_refused_before_training(synth_dir, folds_csv, tmp_path, extra):
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--model", "test_resnet", "--model", "test_byobnet",
                   "--name", "shared", *extra)
    line = error_line(result)
    assert "test_resnet and test_byobnet would both write" in line and "shared" in line
    assert not (tmp_path / "runs").exists()


def test_train_name_with_models_in_the_config_is_refused(synth_dir, folds_csv, tmp_path):
    config = tmp_path / "kit.yaml"
    config.write_text(yaml.safe_dump({"train": {"name": "x", "models": ["test_resnet", {"name": "test_byobnet"}]}}))
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--config", config)
    assert "would both write" in error_line(result)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- a fixed-size backbone with --crop


# test_vit3 is built for one size (timm's strict patch embedding; test_vit itself is dynamic already)
def test_a_vit_trained_on_crops_validates_and_predicts_at_the_full_size(synth_dir, folds_csv, tmp_path):
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--model", "test_vit3", "--crop", "16",
                   "--pretrained", "none")
    assert result.exit_code == 0, result.output
    fold = tmp_path / "runs" / "test_vit3" / "fold0"
    oof = pd.read_csv(fold / "oof.csv")
    folds = pd.read_csv(folds_csv)
    assert len(oof) == (folds["fold"] == 0).sum() and len(pd.read_csv(fold / "test.csv")) == 12


@pytest.mark.parametrize("model,crop,message", [
    ("test_vit3", "24", "cannot take 24 px images"),  # not a whole number of its 16 px patches
    ("test_vit_relpos", "16", "no dynamic_img_size"),  # a ViT timm cannot make take two sizes
])
def test_a_crop_the_vit_cannot_take_is_one_line_before_training(synth_dir, folds_csv, tmp_path, model, crop,
                                                                message):
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--model", model, "--crop", crop, "--pretrained", "none")
    assert message in error_line(result)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- --ema with --swa, --warmup with constant


@pytest.mark.parametrize("args,message", [
    (["--ema", "0.9", "--swa", "1"], "ema and swa both average the weights"),
    (["--schedule", "constant", "--warmup", "0.2"], "schedule constant has no warm-up"),
])
def test_settings_that_would_be_ignored_are_one_line(synth_dir, folds_csv, tmp_path, args, message):
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--model", "test_resnet", *args)
    assert message in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_the_constant_schedule_with_the_default_warmup_trains(synth_dir, folds_csv, tmp_path):
    result = train(synth_dir, folds_csv, tmp_path / "runs", "--model", "test_resnet", "--schedule", "constant")
    assert result.exit_code == 0, result.output


def test_submit_file_name_without_kernel_is_one_line(synth_dir, tmp_path):
    sub = tmp_path / "s.csv"
    sub.write_text("Id,Predicted\n")
    result = run("submit", sub, "--file-name", "other.csv", "--data", synth_dir, "--dry-run")
    assert "--file-name goes with --kernel" in error_line(result)


# ---------------------------------------------------------------- kit lr-find


def lr_find(synth_dir, folds_csv, tmp_path, *args):
    return run("lr-find", "--data", synth_dir, "--folds", folds_csv, "--fold", "0", "--size", "32", "--batch-size",
               "8", "--workers", "0", "--no-progress", "--device", "cpu", "--steps", "12", "--out",
               tmp_path / "lr.png", *args)


@pytest.mark.parametrize("option", [["--epochs", "3"], ["--schedule", "cosine"], ["--warmup", "0.2"],
                                    ["--tta", "d4"], ["--patience", "2"], ["--monitor", "val_loss"],
                                    ["--ema", "0.99"], ["--swa", "1"]])
def test_lr_find_refuses_the_train_options_it_cannot_use(synth_dir, folds_csv, tmp_path, option):
    result = lr_find(synth_dir, folds_csv, tmp_path, "--model", "test_resnet", *option)
    assert f"lr-find: {option[0]} does not apply" in error_line(result)
    assert not (tmp_path / "lr.png").exists()


def test_lr_find_names_config_settings_it_leaves_unused(synth_dir, folds_csv, tmp_path):
    config = tmp_path / "kit.yaml"
    config.write_text(yaml.safe_dump({"train": {"epochs": 4, "tta": "flip", "models": ["test_resnet"]}}))
    result = lr_find(synth_dir, folds_csv, tmp_path, "--config", config)
    assert result.exit_code == 0, result.output
    assert f"lr-find: not used here (from {config}): epochs, tta" in result.output


def test_lr_find_starts_from_the_init_runs_fold(tiny_blend, tmp_path):
    init = tiny_blend.runs / "test_resnet"
    result = lr_find(tiny_blend.data, tiny_blend.folds, tmp_path, "--model", "test_resnet", "--init", init)
    assert result.exit_code == 0, result.output
    assert f"weights from {init / 'fold0' / 'best.pt'}" in result.output
    # the other model's weights do not fit: --init is read, not ignored
    result = lr_find(tiny_blend.data, tiny_blend.folds, tmp_path, "--model", "test_byobnet", "--init", init)
    assert "holds a test_resnet model, not test_byobnet" in error_line(result)


# ---------------------------------------------------------------- kit run: every model checked before the first epoch


EXPERIMENT = {"folds": {"k": 2, "seed": 0},
              "train": {"size": 32, "epochs": 1, "batch_size": 8, "workers": 0, "progress": False, "device": "cpu",
                        "tta": "none", "pretrained": "none"},
              "blend": {"name": "b"}}


@pytest.fixture
def project(synth_dir, tmp_path):
    import shutil

    shutil.copytree(synth_dir, tmp_path / "data")
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pt")
    return tmp_path


@pytest.mark.parametrize("second,message", [
    ({"name": "test_byobnet", "pretrained": "missing.pt"}, "test_byobnet: --pretrained missing.pt: file not found"),
    ({"name": "test_byobnet", "pretrained": "linear.pt"}, "test_byobnet: linear.pt"),
    ({"name": "test_byobnet", "init": "runs/nothing"}, "test_byobnet: --init runs/nothing: run folder not found"),
    ({"name": "smp:resnet18", "drop_path": 0.1}, "smp:resnet18: model 'smp:resnet18': smp's own encoders support"),
    ({"name": "test_vit3", "crop": 24}, "test_vit3: model 'test_vit3' cannot take 24 px images"),
    ({"name": "test_byobnet", "ema": 0.9, "swa": 1}, "ema and swa both average the weights"),
])
def test_a_later_models_settings_fail_before_the_first_epoch(project, second, message):
    experiment = {**EXPERIMENT, "train": {**EXPERIMENT["train"], "models": ["test_resnet", second]}}
    (project / "bad.yaml").write_text(yaml.safe_dump(experiment))
    line = error_line(invoke(project, ["run", "bad.yaml"], expect=1))
    assert line.startswith("Error: bad.yaml: ") and message in line
    assert not (project / "runs").exists()


@pytest.mark.parametrize("key,value", [("kernel", "me/notebook"), ("version", 2), ("file_name", "x.csv")])
def test_kernel_only_submit_keys_are_refused_by_kit_run(project, key, value):
    experiment = {**EXPERIMENT, "train": {**EXPERIMENT["train"], "models": ["test_resnet"]},
                  "submit": {key: value}}
    (project / "bad.yaml").write_text(yaml.safe_dump(experiment))
    line = error_line(invoke(project, ["run", "bad.yaml"], expect=1))
    assert line.startswith(f"Error: bad.yaml: submit.{key}: applies to `kit submit --kernel` only")
    assert not (project / "runs").exists() and not (project / "folds").exists()


@pytest.mark.parametrize("damage", [b"train: [unclosed\n", b"\xff\xfe not text", b"- a list\n"])
def test_a_finished_run_with_an_unreadable_config_is_not_skipped(project, damage):
    experiment = {**EXPERIMENT, "train": {**EXPERIMENT["train"], "models": ["test_resnet"]}}
    (project / "e.yaml").write_text(yaml.safe_dump(experiment))
    invoke(project, ["run", "e.yaml"])
    config = project / "runs" / "test_resnet" / "fold0" / "config.yaml"
    config.write_bytes(damage)
    line = error_line(invoke(project, ["run", "e.yaml"], expect=1))
    assert "runs/test_resnet/fold0: the finished run's settings cannot be read" in line
