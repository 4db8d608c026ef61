"""A run killed mid-epoch (SIGKILL: no exception handler, no flush) and resumed with `kit train --resume`
ends with the weights and predictions of a run never interrupted, with DataLoader workers and gradient
accumulation on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from helpers import assert_same_run

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
SETTINGS = {"size": 32, "batch_size": 4, "accumulate": 2, "workers": 1, "epochs": 3, "tta": "flip", "ema": 0.5,
            "sampler": "balanced", "augment": "default", "seed": 11, "device": "cpu", "progress": False}

# Trains in a fresh process and kills itself with SIGKILL at training step `kill_at` (counted over the run).
KILLED = textwrap.dedent("""
    import json, os, signal, sys
    import kit.train.loop
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.settings import resolve_settings

    values, data, kill_at = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    real, steps = kit.train.loop.make_loss, []

    def make_loss(*args, **kwargs):
        loss = real(*args, **kwargs)
        forward = loss.forward

        def counting(logits, targets):
            if logits.requires_grad:  # training steps only
                steps.append(1)
                if len(steps) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return forward(logits, targets)

        loss.forward = counting
        return loss

    kit.train.loop.make_loss = make_loss
    settings = resolve_settings(options=values)[0]
    kit.train.loop.train_fold(settings, CompetitionData(data, HPA), log=lambda line: None)
""")


def cli_args(synth_dir, folds_csv, runs):
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--fold", "0",
            "--model", "test_resnet"]
    for key, value in SETTINGS.items():
        flag = "--" + key.replace("_", "-")
        args += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return args


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(synth_dir, tmp_path):
    folds_csv = tmp_path / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=folds_csv, k=3, seed=0)
    straight = CliRunner().invoke(main, cli_args(synth_dir, folds_csv, tmp_path / "straight"))
    assert straight.exit_code == 0, straight.output

    # 40 train images in batches of 4: 10 forward passes an epoch; the 15th is in the middle of epoch 2
    values = {**SETTINGS, "model": "test_resnet", "fold": 0, "folds": str(folds_csv), "runs": str(tmp_path / "killed")}
    killed = subprocess.run([sys.executable, "-c", KILLED, json.dumps(values), str(synth_dir), "15"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert killed.returncode == -9, killed.stderr
    run = tmp_path / "killed" / "test_resnet" / "fold0"
    assert load_checkpoint(run / "last.pt")["epoch"] == 1  # epoch 2 was under way
    assert not (run / "oof.csv").exists() and not list(run.glob(".*.tmp"))

    resumed = CliRunner().invoke(main, [*cli_args(synth_dir, folds_csv, tmp_path / "killed"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.output and "epoch 1/3" not in resumed.output

    done = tmp_path / "straight" / "test_resnet" / "fold0"
    assert_same_run(done, run, parts=("model", "ema", "optimizer"))
