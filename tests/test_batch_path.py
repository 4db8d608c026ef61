"""`kit train --augment-on batch` on the CPU: workers only read, the batch augmenter runs in the step; the run
resumes bit for bit (the augmenter's generator in last.pt), `--cache-device gpu` gathers batches from the images
held on the training device, and a pipeline the batch path cannot express runs in the workers, said once."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from test_budget import STOPPED_EXIT_CODE, assert_same_run, fake_time  # noqa: F401 (fake_time: a fixture)
from test_budget import cli_args as budget_args

from kit.cli import main
from kit.data.cache import CacheStore, build_cache
from kit.data.folds import make_folds
from kit.data.loader import RawBatches, batch_as_is, make_loader
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.settings import resolve_settings
from kit.train.checkpoint import load_checkpoint
from kit.train.loop import train_fold

pytestmark = pytest.mark.usefixtures("one_thread")
BATCH = {"size": 32, "batch_size": 8, "workers": 0, "progress": False, "epochs": 1, "tta": "none", "device": "cpu",
         "augment_on": "batch"}


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=3, seed=0)
    return out


def cli_args(synth_dir, folds_csv, runs, settings):
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--fold", "0",
            "--model", "test_resnet"]
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        args += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return args


def run(args, expect=0):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == expect, result.output + repr(result.exception)
    return result


def test_the_read_only_loader_gives_the_cache_pixels_unchanged(synth_dir, tmp_path):
    data = CompetitionData(synth_dir, HPA)
    build_cache(data, 32, out=tmp_path / "cache", splits=["train"])
    store = CacheStore(tmp_path / "cache" / "32px" / "train.npy", rows=range(10))
    targets = np.eye(10, 28, dtype=np.float32)
    for workers in (0, 1):
        loader = make_loader(RawBatches(store, targets), batch_size=4, workers=workers, collate_fn=batch_as_is)
        images, batch_targets = next(iter(loader))
        assert images.dtype == torch.uint8 and images.shape == (4, 32, 32, 4)  # N x H x W x C, as cached
        assert np.array_equal(images.numpy(), np.stack([store.read(i) for i in range(4)]))
        assert np.array_equal(batch_targets.numpy(), targets[:4])


@pytest.mark.slow
def test_batch_path_trains_end_to_end_and_resumes_bit_for_bit(synth_dir, folds_csv, tmp_path):
    settings = {**BATCH, "epochs": 3, "crop": 24, "mixup": 0.4, "seed": 3, "workers": 1}
    straight = run(cli_args(synth_dir, folds_csv, tmp_path / "straight", settings))
    first = straight.output.splitlines()[0]
    assert "augment on cpu per batch (hflip, vflip, rot90, affine, brightness_contrast; workers read only)" in first

    class Interrupt(Exception):
        pass

    def stop_after_second(epoch, model, row):
        if epoch == 1:
            raise Interrupt

    values = {**settings, "folds": str(folds_csv), "runs": str(tmp_path / "resumed"), "model": "test_resnet",
              "fold": 0}
    with pytest.raises(Interrupt):
        train_fold(resolve_settings(options=values)[0], CompetitionData(synth_dir, HPA), log=lambda line: None,
                   on_epoch_end=stop_after_second)
    resumed_dir = tmp_path / "resumed" / "test_resnet" / "fold0"
    assert isinstance(load_checkpoint(resumed_dir / "last.pt")["rng"]["augmenter"], torch.Tensor)
    run([*cli_args(synth_dir, folds_csv, tmp_path / "resumed", settings), "--resume"])
    straight_last = torch.load(tmp_path / "straight" / "test_resnet" / "fold0" / "last.pt", weights_only=True)
    resumed_last = torch.load(resumed_dir / "last.pt", weights_only=True)
    for key, value in straight_last["model"].items():
        assert torch.equal(value, resumed_last["model"][key]), key
    for name in ("history.csv", "oof.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "straight" / "test_resnet" / "fold0" / name).drop(columns="seconds", errors="ignore"),
            pd.read_csv(resumed_dir / name).drop(columns="seconds", errors="ignore"))


def test_the_batch_path_augments_differently_from_the_workers_and_repeats(synth_dir, folds_csv, tmp_path):
    histories = {}
    for name, settings in (("batch", BATCH), ("again", BATCH), ("workers", {**BATCH, "augment_on": "workers"})):
        run(cli_args(synth_dir, folds_csv, tmp_path / name, settings))
        histories[name] = pd.read_csv(tmp_path / name / "test_resnet" / "fold0" / "history.csv")
    assert histories["batch"]["train_loss"].equals(histories["again"]["train_loss"])
    assert not histories["batch"]["train_loss"].equals(histories["workers"]["train_loss"])


def test_images_held_on_the_training_device(synth_dir, folds_csv, tmp_path):
    result = run(cli_args(synth_dir, folds_csv, tmp_path / "held", {**BATCH, "cache_device": "gpu", "crop": 24}))
    assert "images on cpu" in result.output.splitlines()[0]
    assert (tmp_path / "held" / "test_resnet" / "fold0" / "oof.csv").is_file()
    refused = run(cli_args(synth_dir, folds_csv, tmp_path / "no", {**BATCH, "augment_on": "workers",
                                                                    "cache_device": "gpu"}), expect=1)
    assert "--cache-device gpu needs the batch path (--augment-on batch)" in refused.output


def test_a_pipeline_without_a_batch_version_runs_in_the_workers_said_once(synth_dir, folds_csv, tmp_path):
    config = tmp_path / "kit.yaml"
    config.write_text("train:\n  augment:\n    - {name: HorizontalFlip}\n    - {name: GaussNoise, p: 0.5}\n")
    result = run([*cli_args(synth_dir, folds_csv, tmp_path / "runs", BATCH), "--config", str(config)])
    lines = result.output.splitlines()
    assert ("train.augment[1]: GaussNoise has no batch version: augmenting in the workers (--augment-on batch)"
            in lines[0])
    assert sum("GaussNoise" in line for line in lines) == 1


@pytest.mark.slow
def test_a_batch_path_run_stopped_mid_epoch_resumes_bit_for_bit(synth_dir, folds_csv, fake_time, tmp_path):  # noqa: F811
    """--time-limit stops in epoch 2 (kit.train.budget's fake clock); --resume replays the consumed batches
    through the batch augmenter, so the run ends equal to an uninterrupted one."""
    extra = {"augment_on": "batch", "crop": 28, "workers": 0}
    done = CliRunner().invoke(main, budget_args(synth_dir, folds_csv, tmp_path / "straight", **extra))
    assert done.exit_code == 0, done.output
    fake_time.now = 1000.0
    stopped = CliRunner().invoke(main, budget_args(synth_dir, folds_csv, tmp_path / "stopped", time_limit="17s",
                                                   checkpoint_every="4s", **extra))
    assert stopped.exit_code == STOPPED_EXIT_CODE, stopped.output
    run = tmp_path / "stopped" / "test_resnet" / "fold0"
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["epoch"] == 1 and checkpoint.get("partial", {}).get("batches"), stopped.output
    assert isinstance(checkpoint["rng"]["augmenter"], torch.Tensor)
    resumed = CliRunner().invoke(main, [*budget_args(synth_dir, folds_csv, tmp_path / "stopped", **extra), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(tmp_path / "straight" / "test_resnet" / "fold0", run)


@pytest.fixture
def cached(synth_dir, tmp_path, monkeypatch):
    """A 32 px cache of the training images, found through $KIT_CACHE: the batch path reads it with threads."""
    build_cache(CompetitionData(synth_dir, HPA), 32, out=tmp_path / "cache", splits=["train", "test"])
    monkeypatch.setenv("KIT_CACHE", str(tmp_path / "cache"))


@pytest.mark.slow
def test_a_cached_batch_path_run_is_the_same_with_any_thread_count_and_resumes_mid_epoch(
        synth_dir, folds_csv, cached, fake_time, tmp_path):  # noqa: F811
    """The ring of reader threads (kit.data.ring) with random crops: 0 and 2 threads train the same run, and a run
    stopped mid-epoch by --time-limit resumes to equal it."""
    extra = {"augment_on": "batch", "crop": 28}
    done = CliRunner().invoke(main, budget_args(synth_dir, folds_csv, tmp_path / "straight", workers=2, **extra))
    assert done.exit_code == 0, done.output
    assert "threads read the cache" in done.output.splitlines()[0], done.output
    inline = CliRunner().invoke(main, budget_args(synth_dir, folds_csv, tmp_path / "inline", workers=0, **extra))
    assert inline.exit_code == 0, inline.output
    assert_same_run(tmp_path / "straight" / "test_resnet" / "fold0", tmp_path / "inline" / "test_resnet" / "fold0")
    fake_time.now = 1000.0
    stopped = CliRunner().invoke(main, budget_args(synth_dir, folds_csv, tmp_path / "stopped", time_limit="17s",
                                                   checkpoint_every="4s", workers=2, **extra))
    assert stopped.exit_code == STOPPED_EXIT_CODE, stopped.output
    run = tmp_path / "stopped" / "test_resnet" / "fold0"
    assert load_checkpoint(run / "last.pt").get("partial", {}).get("batches"), stopped.output
    resumed = CliRunner().invoke(main, [*budget_args(synth_dir, folds_csv, tmp_path / "stopped", workers=2, **extra),
                                        "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(tmp_path / "straight" / "test_resnet" / "fold0", run)
