"""`--monitor last`: the honest choice of epoch, nothing picked on the rows that become oof.csv."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


def train(synth_dir, folds_csv, runs, *extra):
    return CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs",
                                     str(runs), "--model", "test_resnet", "--size", "32", "--epochs", "2",
                                     "--tta", "none", "--workers", "0", "--device", "cpu", "--no-progress", *extra])


def test_monitor_last_keeps_the_last_epoch_whatever_the_scores(synth_dir, folds_csv, tmp_path):
    result = train(synth_dir, folds_csv, tmp_path, "--monitor", "last", "--lr", "0.05")
    assert result.exit_code == 0, result.output
    run = tmp_path / "test_resnet" / "fold0"
    best = torch.load(run / "best.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)
    assert best["epoch"] == 2
    for key, value in last["model"].items():
        assert torch.equal(value, best["model"][key]), key  # best.pt holds the last epoch's weights
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_monitor_last_with_patience_is_refused(synth_dir, folds_csv, tmp_path):
    line = error_line(train(synth_dir, folds_csv, tmp_path, "--monitor", "last", "--patience", "2"))
    assert "--monitor last" in line and "patience" in line
    assert not (tmp_path / "test_resnet").exists()
