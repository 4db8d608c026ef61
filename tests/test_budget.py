"""`kit train --time-limit` stops before the limit (exit 75, one line), SIGTERM saves and stops mid-epoch, and
`--resume` from either ends with the weights and predictions of a run never interrupted (workers, gradient
accumulation, mixup, SWA and EMA on). Time is a fake clock that training steps and forward passes advance, so
nothing sleeps and the stopping point is the same on every machine."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from click.testing import CliRunner
from helpers import assert_same_run

import kit.train.budget
import kit.train.loop
import kit.train.models
from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.train.budget import STOPPED_EXIT_CODE, format_duration, parse_duration
from kit.train.checkpoint import load_checkpoint

SETTINGS = {"size": 32, "batch_size": 4, "accumulate": 2, "workers": 1, "epochs": 3, "tta": "flip",
            "mixup": 0.4, "swa": 2, "sampler": "balanced", "augment": "default", "seed": 5, "device": "cpu",
            "progress": False}
STEP_SECONDS, FORWARD_SECONDS = 1.0, 0.05  # fake cost of a training step's loss, and of any forward pass
STOPPED = r"stopped at epoch (\d)/3 \(step (\d+)\) after (\S+) {cause}; run the same command with --resume"


def cli_args(synth_dir, folds_csv, runs, **extra):
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--fold", "0",
            "--model", "test_resnet"]
    for key, value in {**SETTINGS, **extra}.items():
        flag = "--" + key.replace("_", "-")
        args += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return args


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


@pytest.fixture(scope="module")
def straight(synth_dir, folds_csv, tmp_path_factory):
    """The uninterrupted run every stopped-and-resumed one must end equal to."""
    runs = tmp_path_factory.mktemp("straight")
    result = CliRunner().invoke(main, cli_args(synth_dir, folds_csv, runs))
    assert result.exit_code == 0, result.output
    return runs / "test_resnet" / "fold0"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    """kit.train.budget's clock, advanced by every forward pass and more by every training loss."""
    clock = FakeClock()
    monkeypatch.setattr(kit.train.budget, "clock", clock)
    forward = kit.train.models.Classifier.forward

    def timed_forward(self, *args, **kwargs):
        clock.now += FORWARD_SECONDS
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(kit.train.models.Classifier, "forward", timed_forward)
    make_loss = kit.train.loop.make_loss

    def timed_loss(*args, **kwargs):
        loss = make_loss(*args, **kwargs)
        real = loss.forward

        def counted(logits, targets):
            if logits.requires_grad:
                clock.now += STEP_SECONDS
            return real(logits, targets)

        loss.forward = counted
        return loss

    monkeypatch.setattr(kit.train.loop, "make_loss", timed_loss)
    return clock


@pytest.mark.slow
def test_a_time_limit_stops_mid_epoch_and_resume_finishes_like_an_uninterrupted_run(
        synth_dir, folds_csv, straight, fake_time, tmp_path):


    started = fake_time.now
    limit = 17  # epoch 1 is 10 training batches (~11 fake seconds with its end); the limit falls in epoch 2
    stopped = CliRunner().invoke(main, cli_args(synth_dir, folds_csv, tmp_path, time_limit=f"{limit}s",
                                                checkpoint_every="4s"))
    assert stopped.exit_code == STOPPED_EXIT_CODE, stopped.output
    last_line = stopped.output.strip().splitlines()[-1]
    match = re.fullmatch(STOPPED.format(cause="to stay within --time-limit"), last_line)
    assert match, last_line
    epoch, step = int(match[1]), int(match[2])
    assert epoch == 2 and 0 < step < 5  # 5 optimizer steps an epoch (10 batches, accumulate 2)
    assert fake_time.now - started <= limit  # stopped before the limit, not at it
    assert parse_duration(match[3]) <= limit
    run = tmp_path / "test_resnet" / "fold0"
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["epoch"] == 1 and checkpoint["partial"]["batches"] == 2 * step
    assert not (run / "oof.csv").exists() and not list(run.glob(".*.tmp"))

    resumed = CliRunner().invoke(main, [*cli_args(synth_dir, folds_csv, tmp_path), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"{2 * step} batches into epoch 2" in resumed.output and "epoch 1/3" not in resumed.output
    assert_same_run(straight, run)


def test_a_limit_too_short_to_predict_is_refused_before_training(synth_dir, folds_csv, fake_time, tmp_path):
    result = CliRunner().invoke(main, cli_args(synth_dir, folds_csv, tmp_path, time_limit="4s", epochs=1, swa=0))
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    # (18 + 12 images) x 4 views x 0.05 s / 4 images a batch, x 1.3 (safety) + 5 s (loading, writing): 7 s
    assert re.search(r"^Error: --time-limit 4s: predicting 18 out-of-fold and 12 test images with TTA flip "
                     r"\(4 views\) needs about 7s, more than the 4s left; nothing was trained", line), line
    assert not (tmp_path / "test_resnet" / "fold0" / "last.pt").exists()


# Trains through the CLI in a fresh process (group) and sends SIGTERM to its process group (itself and its
# loader worker) at training step `signal_at`.
SIGNALLED = textwrap.dedent("""
    import os, signal, sys
    import kit.train.loop
    from kit.cli import main

    args, signal_at = sys.argv[1:-1], int(sys.argv[-1])
    real, steps = kit.train.loop.make_loss, []

    def make_loss(*a, **k):
        loss = real(*a, **k)
        forward = loss.forward

        def counting(logits, targets):
            if logits.requires_grad:
                steps.append(1)
                if len(steps) == signal_at:
                    os.killpg(os.getpgid(0), signal.SIGTERM)  # as a session's end: the loader's workers too
            return forward(logits, targets)

        loss.forward = counting
        return loss

    kit.train.loop.make_loss = make_loss
    main(args)
""")


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_exits_75_and_resumes_bit_for_bit(synth_dir, folds_csv, straight, tmp_path):


    # the 15th training batch is the 5th of epoch 2: the step ends at batch 6 (accumulate 2), and there it stops
    args = cli_args(synth_dir, folds_csv, tmp_path)
    signalled = subprocess.run([sys.executable, "-c", SIGNALLED, *args, "15"], capture_output=True, text=True,
                               timeout=300, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert signalled.returncode == STOPPED_EXIT_CODE, signalled.stdout + signalled.stderr
    last_line = signalled.stdout.strip().splitlines()[-1]
    assert re.fullmatch(STOPPED.format(cause="on SIGTERM"), last_line), last_line
    assert "epoch 2/3 (step 3)" in last_line
    run = tmp_path / "test_resnet" / "fold0"
    assert load_checkpoint(run / "last.pt")["partial"]["batches"] == 6

    resumed = CliRunner().invoke(main, [*cli_args(synth_dir, folds_csv, tmp_path), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(straight, run)


@pytest.mark.parametrize("text, seconds", [("8h30m", 30600), ("45m", 2700), ("90s", 90), ("1h5m30s", 3930),
                                           ("2.5h", 9000), ("600", 600), (" 1H ", 3600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_one_line(synth_dir, folds_csv, tmp_path):
    for bad in ("8x", "h", "-5m", "0s"):
        result = CliRunner().invoke(main, cli_args(synth_dir, folds_csv, tmp_path, time_limit=bad))
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "time_limit" in lines[0] and "8h30m" in lines[0], result.output
    assert format_duration(3725) == "1h02m05s" and format_duration(95) == "1m35s" and format_duration(42.4) == "42s"


@pytest.mark.parametrize("cores, requested, expected", [
    (2, None, "1 loader worker (default for 2 cores)"),  # a Kaggle notebook: the main process keeps a core
    (1, None, "1 loader worker (default for 1 cores)"),
    (16, None, "15 loader workers (default for 16 cores)"),
    (2, 3, "3 loader workers"),  # as asked
])
def test_the_default_workers_fit_the_cores(monkeypatch, cores, requested, expected):
    import kit.train.device

    monkeypatch.setattr(kit.train.device, "available_cores", lambda: cores)
    runtime = kit.train.device.Runtime(device=torch.device("cpu"))
    assert runtime.describe_workers(requested) == expected
    if requested is None:  # the workers and the main process together fit the cores (one core: one worker)
        assert runtime.loader_workers(None) + 1 <= max(cores, 2)
