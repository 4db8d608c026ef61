"""`kit train` and `kit predict` end to end, on CPU with tiny timm models at 32 px."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import yaml
from click.testing import CliRunner

import kit.train.loop
from kit.cli import main
from kit.config import load_config
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData, read_sample_ids
from kit.data.spec import HPA
from kit.errors import KitError
from kit.settings import resolve_settings
from kit.train.checkpoint import load_checkpoint
from kit.train.loop import history_columns, train_fold
from kit.train.losses import MultiLabelLoss
from kit.train.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


# device cpu: these tests compare runs bit for bit; test_cuda_* below cover the GPU path where there is one.
FAST = {"size": 32, "batch_size": 8, "workers": 0, "progress": False, "epochs": 1, "tta": "none", "device": "cpu"}


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    data = CompetitionData(synth_dir, HPA)
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(data.train_labels(), HPA, out=out, k=3, seed=0)
    return out


def cli_args(synth_dir, folds_csv, runs, settings=None, models=("test_resnet",)):
    """`kit train` arguments for `settings` (FAST by default), so library and CLI runs can share them."""
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--fold", "0"]
    for name in models:
        args += ["--model", name]
    for key, value in (settings or FAST).items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def run(args, expect=0):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == expect, result.output + repr(result.exception)
    return result


def library_settings(synth_dir, folds_csv, runs, settings, model="test_resnet"):
    values = {**settings, "folds": str(folds_csv), "runs": str(runs), "model": model, "fold": 0}
    return resolve_settings(options=values)[0], CompetitionData(synth_dir, HPA)


@pytest.fixture(scope="module")
def trained(synth_dir, folds_csv, tmp_path_factory):
    """One finished run of each model source, trained once for the module."""
    runs = tmp_path_factory.mktemp("runs")
    result = run(cli_args(synth_dir, folds_csv, runs, {**FAST, "tta": "flip"}, models=("test_resnet", "smp:resnet18")))
    return runs, result.output


@pytest.mark.parametrize("name,folder", [("test_resnet", "test_resnet"), ("smp:resnet18", "smp-resnet18")])
def test_each_model_source_trains_and_writes_every_artifact(trained, synth_dir, folds_csv, name, folder):
    runs, output = trained
    out = runs / folder / "fold0"
    columns = ["Id", *HPA.classes]
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    val_ids = set(folds.loc[folds["fold"] == 0, "Id"])

    oof = pd.read_csv(out / "oof.csv", dtype={"Id": str})
    assert list(oof.columns) == columns and set(oof["Id"]) == val_ids and len(oof) == len(val_ids)
    test = pd.read_csv(out / "test.csv", dtype={"Id": str})
    assert list(test.columns) == columns
    assert test["Id"].tolist() == read_sample_ids(synth_dir / "sample_submission.csv", HPA)
    for frame in (oof, test):
        values = frame[list(HPA.classes)].to_numpy()
        assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1

    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == history_columns(HPA.scorer) and history["epoch"].tolist() == [1]

    config = load_config(out / "config.yaml")
    assert config.spec == HPA and config.section("train")["model"] == name
    assert config.section("train")["tta"] == "flip" and len(config.section("train")["mean"]) == HPA.num_channels

    for checkpoint in ("last.pt", "best.pt"):
        payload = torch.load(out / checkpoint, weights_only=True)
        assert payload["epoch"] == 1 and payload["settings"]["model"] == name
    last = torch.load(out / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "scaler", "rng", "history", "ema"} <= set(last)
    assert f"{out}: best epoch 1" in output


def test_predict_redoes_the_predictions_from_a_run(trained, tmp_path):
    runs, _ = trained
    out = runs / "test_resnet" / "fold0"
    run(["predict", str(out), "--tta", "flip", "--out", str(tmp_path / "same"), "--workers", "0", "--device", "cpu"])
    for split in ("oof", "test"):
        again = pd.read_csv(tmp_path / "same" / f"{split}.csv")
        pd.testing.assert_frame_equal(again, pd.read_csv(out / f"{split}.csv"), atol=1e-6)
    run(["predict", str(out), "--tta", "d4", "--split", "test", "--out", str(tmp_path / "d4"), "--workers", "0",
         "--device", "cpu"])
    assert not (tmp_path / "d4" / "oof.csv").exists()
    d4 = pd.read_csv(tmp_path / "d4" / "test.csv")
    assert d4.shape == pd.read_csv(out / "test.csv").shape
    assert not np.allclose(d4[list(HPA.classes)], pd.read_csv(out / "test.csv")[list(HPA.classes)])


def test_predict_on_a_new_test_folder_keeps_the_oof_from_the_training_folder(trained, synth_dir, tmp_path):
    runs, _ = trained
    out = runs / "test_resnet" / "fold0"
    new = tmp_path / "new_test"
    shutil.copytree(synth_dir / "test", new / "test")
    ids = read_sample_ids(synth_dir / "sample_submission.csv", HPA)[::-2]  # another set, in another order
    pd.DataFrame({"Id": ids, "Predicted": "0"}).to_csv(new / "sample_submission.csv", index=False)
    result = run(["predict", str(out), "--data", str(new), "--out", str(tmp_path / "p"), "--workers", "0",
                  "--device", "cpu"])
    assert "decoding png files" in result.output  # which store the pixels came from
    assert pd.read_csv(tmp_path / "p" / "test.csv", dtype={"Id": str})["Id"].tolist() == ids
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p" / "oof.csv"), pd.read_csv(out / "oof.csv"), atol=1e-6)


def test_config_yaml_reproduces_the_run_settings(trained):
    runs, _ = trained
    out = runs / "test_resnet" / "fold0"
    config = load_config(out / "config.yaml")
    again = resolve_settings(config.section("train"), source=str(out / "config.yaml"))
    assert len(again) == 1
    assert again[0].to_dict() == torch.load(out / "best.pt", weights_only=True)["settings"]


def test_interrupted_then_resumed_equals_uninterrupted(synth_dir, folds_csv, tmp_path):
    settings = {**FAST, "epochs": 3, "ema": 0.9, "sampler": "balanced", "dropout": 0.5, "augment": "default",
                "crop": 24, "seed": 3}
    run(cli_args(synth_dir, folds_csv, tmp_path / "straight", settings))

    class Interrupt(Exception):
        pass

    def stop_after_second(epoch, model, row):
        if epoch == 1:
            raise Interrupt

    options, data = library_settings(synth_dir, folds_csv, tmp_path / "resumed", settings)
    with pytest.raises(Interrupt):
        train_fold(options, data, log=lambda message: None, on_epoch_end=stop_after_second)
    resumed_dir = tmp_path / "resumed" / "test_resnet" / "fold0"
    assert load_checkpoint(resumed_dir / "last.pt")["epoch"] == 2 and not (resumed_dir / "oof.csv").exists()
    result = run([*cli_args(synth_dir, folds_csv, tmp_path / "resumed", settings), "--resume"])
    assert "resuming from" in result.output and "epoch 1/3" not in result.output and "epoch 3/3" in result.output

    straight = torch.load(tmp_path / "straight" / "test_resnet" / "fold0" / "last.pt", weights_only=True)
    resumed = torch.load(resumed_dir / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key} differs"
    for name in ("history.csv", "oof.csv", "test.csv"):
        a = pd.read_csv(tmp_path / "straight" / "test_resnet" / "fold0" / name)
        b = pd.read_csv(resumed_dir / name)
        pd.testing.assert_frame_equal(a.drop(columns="seconds", errors="ignore"),
                                      b.drop(columns="seconds", errors="ignore"))


def test_freeze_then_unfreeze_keeps_the_backbone_unchanged_while_frozen(synth_dir, folds_csv, tmp_path):
    options, data = library_settings(synth_dir, folds_csv, tmp_path, {**FAST, "epochs": 2, "freeze_epochs": 1})
    initial_model, _ = build_model(options, HPA)
    initial = {k: v.clone() for k, v in initial_model.state_dict().items()}
    seen = {}

    def record(epoch, model, row):
        seen[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    train_fold(options, data, log=lambda message: None, on_epoch_end=record)
    backbone = [k for k in initial if k.startswith("backbone.")]
    head = [k for k in initial if k.startswith("head.") and initial[k].is_floating_point()]
    assert backbone and head
    for key in backbone:  # weights and norm statistics
        assert torch.equal(seen[0][key], initial[key]), f"{key} changed while frozen"
    assert any(not torch.equal(seen[0][k], initial[k]) for k in head)
    assert any(not torch.equal(seen[1][k], initial[k]) for k in backbone if initial[k].is_floating_point())


def test_pretrained_file_through_the_command(synth_dir, folds_csv, tmp_path):
    path = tmp_path / "test_efficientnet.safetensors"
    import safetensors.torch

    safetensors.torch.save_file(timm.create_model("test_efficientnet").state_dict(), str(path))
    result = run([*cli_args(synth_dir, folds_csv, tmp_path / "runs", models=("test_efficientnet",)),
                  "--pretrained", str(path)])
    assert f"weights from {path}" in result.output


def test_early_stopping_with_patience(synth_dir, folds_csv, tmp_path):
    # a frozen backbone and a zero learning rate change nothing: no epoch improves on the first
    settings = {**FAST, "epochs": 5, "freeze_epochs": 4, "lr": 0.0, "patience": 2}
    result = run(cli_args(synth_dir, folds_csv, tmp_path, settings))
    assert "early stop" in result.output
    assert pd.read_csv(tmp_path / "test_resnet" / "fold0" / "history.csv")["epoch"].tolist() == [1, 2, 3]
    assert (tmp_path / "test_resnet" / "fold0" / "test.csv").is_file()


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(synth_dir, folds_csv, tmp_path,
                                                                                monkeypatch):
    folds = pd.read_csv(folds_csv)
    steps_per_epoch = int((folds["fold"] != 0).sum()) // FAST["batch_size"]
    calls = {"n": 0}

    class BreaksInEpochTwo(MultiLabelLoss):
        def forward(self, logits, targets):
            loss = super().forward(logits, targets)
            if torch.is_grad_enabled():  # training steps only
                calls["n"] += 1
                if calls["n"] > steps_per_epoch:
                    return loss * float("nan")
            return loss

    monkeypatch.setattr(kit.train.loop, "make_loss", lambda terms, *a, **k: BreaksInEpochTwo(terms))
    stale = tmp_path / "test_resnet" / "fold0"
    stale.mkdir(parents=True)
    for name in ("oof.csv", "test.csv", "history.csv", "best.pt"):  # as an earlier, finished run left them
        (stale / name).write_text("from an earlier run")
    result = run(cli_args(synth_dir, folds_csv, tmp_path, {**FAST, "epochs": 3}), expect=1)
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "loss became nan" in lines[-1] and "keeps epoch 1" in lines[-1]
    out = tmp_path / "test_resnet" / "fold0"
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not (out / "oof.csv").exists() and not (out / "test.csv").exists()  # nothing of two runs mixed
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1]


@pytest.mark.parametrize("case,message", [
    ("unknown model", "unknown model 'resnet_nope'"),
    ("fold not in folds.csv", "no fold 7"),
    ("missing folds.csv", "folds file not found"),
    ("corrupt checkpoint", "not a readable checkpoint"),
    ("unknown setting in the config", "unknown train setting(s) epochz"),
])
def test_bad_input_is_one_clear_line(synth_dir, folds_csv, tmp_path, case, message):
    args = cli_args(synth_dir, folds_csv, tmp_path)
    if case == "unknown model":
        args = cli_args(synth_dir, folds_csv, tmp_path, models=("resnet_nope",))
    elif case == "fold not in folds.csv":
        args[args.index("--fold") + 1] = "7"
    elif case == "missing folds.csv":
        args[args.index("--folds") + 1] = str(tmp_path / "nowhere.csv")
    elif case == "corrupt checkpoint":
        (tmp_path / "test_resnet" / "fold0").mkdir(parents=True)
        (tmp_path / "test_resnet" / "fold0" / "last.pt").write_bytes(b"not a checkpoint at all")
        args.append("--resume")
    else:
        config = tmp_path / "kit.yaml"
        config.write_text(yaml.safe_dump({"train": {"epochz": 3}}))
        args += ["--config", str(config)]
    result = run(args, expect=1)
    lines = result.output.strip().splitlines()
    assert lines == [lines[-1]] and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("problem", ["missing test image", "undecodable train image, read in a worker"])
def test_bad_images_are_one_clear_line(data_copy, folds_csv, tmp_path, problem):
    data = CompetitionData(data_copy, HPA)
    if problem == "missing test image":
        sample_id = data.test_ids()[3]
        path = data_copy / "test" / f"{sample_id}_yellow.png"
        path.unlink()
        message = f"Id {sample_id}: missing channel file {path}"
    else:
        sample_id = pd.read_csv(folds_csv, dtype=str).query("fold != '0'")["Id"].iloc[2]
        path = data_copy / "train" / f"{sample_id}_green.png"
        path.write_bytes(path.read_bytes()[:40])
        message = f"Id {sample_id}: cannot decode {path}"
    result = run(cli_args(data_copy, folds_csv, tmp_path / "runs", {**FAST, "workers": 1}), expect=1)
    assert result.output.strip().splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.output


def test_library_errors_are_kit_errors(synth_dir, folds_csv, tmp_path):
    options, data = library_settings(synth_dir, folds_csv, tmp_path, FAST)
    with pytest.raises(KitError, match="no fold 5"):
        train_fold(options.replace(fold=5), data)


def test_fold_all_trains_every_fold_in_turn(synth_dir, folds_csv, tmp_path):
    args = cli_args(synth_dir, folds_csv, tmp_path)
    args[args.index("--fold") + 1] = "all"
    result = run(args)
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    seen = set()
    for k in range(3):
        oof = pd.read_csv(tmp_path / "test_resnet" / f"fold{k}" / "oof.csv", dtype={"Id": str})
        assert set(oof["Id"]) == set(folds.loc[folds["fold"] == k, "Id"])
        seen |= set(oof["Id"])
        assert f"fold{k}: best epoch 1" in result.output
    assert seen == set(folds["Id"])  # the OOF files together cover every train Id once


def test_bf16_autocast_on_cpu_trains_and_predicts(synth_dir, folds_csv, tmp_path):
    options, data = library_settings(synth_dir, folds_csv, tmp_path, {**FAST, "amp": "bf16", "device": "cpu"})
    runtime = kit.train.loop.make_runtime("cpu", "bf16")
    model, _ = build_model(options, HPA)
    with runtime.autocast():
        features = model.backbone(torch.zeros(2, HPA.num_channels, 32, 32))
    assert runtime.describe() == "cpu bf16" and features.dtype == torch.bfloat16

    result = train_fold(options, data, log=lambda message: None)
    assert np.isfinite(result.history[["train_loss", "val_loss"]].to_numpy()).all()
    oof = pd.read_csv(result.files["oof"])
    assert len(oof) and oof[list(HPA.classes)].apply(lambda c: c.between(0, 1)).all().all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_uses_amp_and_channels_last_and_predicts_like_the_cpu(synth_dir, folds_csv, tmp_path):
    settings = {**FAST, "device": "cuda", "epochs": 2, "tta": "flip"}
    result = run(cli_args(synth_dir, folds_csv, tmp_path / "runs", settings))
    from kit.train.device import native_bf16

    precision = "bf16" if native_bf16(torch.device("cuda")) else "fp16"
    assert f"cuda {precision}, channels_last" in result.output
    out = tmp_path / "runs" / "test_resnet" / "fold0"
    on_gpu = pd.read_csv(out / "test.csv")[list(HPA.classes)].to_numpy()
    assert np.isfinite(on_gpu).all()
    run(["predict", str(out), "--split", "test", "--out", str(tmp_path / "cpu"), "--workers", "0", "--device", "cpu"])
    on_cpu = pd.read_csv(tmp_path / "cpu" / "test.csv")[list(HPA.classes)].to_numpy()
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-2)  # the same weights; autocast rounds on the GPU
