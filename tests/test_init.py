"""Multi-stage training: `kit train --init runs/<name>`, and kit checkpoints (or foreign files) as --pretrained."""
from __future__ import annotations

import shutil

import pytest
import timm
import torch
import yaml
from click.testing import CliRunner
from helpers import error_line
from test_train import FAST, cli_args, run

import kit.train.loop
from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.errors import KitError
from kit.train.checkpoint import load_checkpoint, save_checkpoint
from kit.train.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(args):
    return CliRunner().invoke(main, args)


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("init_folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


@pytest.fixture(scope="module")
def stage1(synth_dir, folds_csv, tmp_path_factory):
    runs = tmp_path_factory.mktemp("stage1")
    run(cli_args(synth_dir, folds_csv, runs, {**FAST, "epochs": 2, "pretrained": "none"}))
    return runs / "test_resnet"


def test_stage_two_starts_from_stage_ones_best_weights(synth_dir, folds_csv, stage1, tmp_path, monkeypatch):
    seen = []
    original = kit.train.loop.train_one_epoch

    def first_epoch(model, *args, **kwargs):
        if not seen:
            seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(kit.train.loop, "train_one_epoch", first_epoch)
    settings = {**FAST, "size": 48, "crop": 40, "loss": "focal", "schedule": "cosine", "init": str(stage1)}
    result = run([*cli_args(synth_dir, folds_csv, tmp_path, settings), "--name", "stage2"])
    best = load_checkpoint(stage1 / "fold0" / "best.pt")
    assert f"weights from {stage1 / 'fold0' / 'best.pt'} (epoch {best['epoch']} of an earlier run)" in result.output
    assert seen[0].keys() == best["model"].keys()
    assert all(torch.equal(seen[0][k], best["model"][k]) for k in seen[0])  # head included: no prior bias
    config = yaml.safe_load((tmp_path / "stage2" / "fold0" / "config.yaml").read_text())
    assert config["train"]["mean"] == best["settings"]["mean"] and config["train"]["init"] == str(stage1)
    assert (tmp_path / "stage2" / "fold0" / "oof.csv").is_file()


def test_a_run_from_other_folds_or_another_spec_is_refused(synth_dir, folds_csv, stage1, tmp_path):
    other = tmp_path / "other_folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=other, k=3, seed=1)
    result = invoke(cli_args(synth_dir, other, tmp_path / "runs", {**FAST, "init": str(stage1)}))
    line = error_line(result)
    assert f"--init {stage1}: fold 0 of that run validated on other Ids" in line and "made on other folds" in line

    foreign = tmp_path / "foreign" / "test_resnet"
    shutil.copytree(stage1, foreign)
    checkpoint = load_checkpoint(foreign / "fold0" / "best.pt")
    checkpoint["spec"]["classes"] = checkpoint["spec"]["classes"][:5]
    save_checkpoint(foreign / "fold0" / "best.pt", checkpoint)
    result = invoke(cli_args(synth_dir, folds_csv, tmp_path / "runs", {**FAST, "init": str(foreign)}))
    assert "was trained for another competition spec (classes differ: 5 classes" in error_line(result)

    result = invoke(cli_args(synth_dir, folds_csv, tmp_path / "runs", {**FAST, "init": str(stage1)},
                                       models=("test_byobnet",)))
    assert "holds a test_resnet model, not test_byobnet" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_a_kit_checkpoint_as_pretrained_fills_the_backbone(stage1):
    best = load_checkpoint(stage1 / "fold0" / "best.pt")
    torch.manual_seed(123)
    model, note = create_model("test_resnet", 4, HPA.num_classes, pretrained=stage1 / "fold0" / "best.pt")
    assert note.startswith(f"backbone weights from the kit checkpoint {stage1 / 'fold0' / 'best.pt'}")
    state = model.state_dict()
    backbone = [k for k in best["model"] if k.startswith("backbone.")]
    assert backbone and all(torch.equal(state[k], best["model"][k]) for k in backbone)
    with pytest.raises(KitError, match=r"not weights of test_byobnet: \d+ of \d+ backbone tensors missing"):
        create_model("test_byobnet", 4, HPA.num_classes, pretrained=stage1 / "fold0" / "best.pt")


def test_a_weight_file_that_fills_no_backbone_parameter_is_an_error(tmp_path):
    path = tmp_path / "byobnet.pth"
    torch.save(timm.create_model("test_byobnet").state_dict(), path)
    reference = dict(timm.create_model("test_resnet", num_classes=0, in_chans=4).named_parameters())
    random_init = [k for k, p in reference.items() if p.dim() > 1]  # conv and linear weights
    with pytest.raises(KitError) as err:
        create_model("test_resnet", 4, HPA.num_classes, pretrained=path)
    message = str(err.value)
    assert message.startswith(f"{path}: left {len(random_init)} of {len(reference)} backbone parameters of "
                              "test_resnet unfilled (e.g. ")
    assert message.endswith("not weights of this model")
