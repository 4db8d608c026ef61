"""Several processes on CPU: one fold data-parallel under torchrun (gloo), and folds fanned out with --gpus."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData, labels_to_matrix, read_sample_ids
from kit.data.spec import HPA
from kit.errors import KitError
from kit.train.checkpoint import load_checkpoint
from kit.train.distributed import make_runtime
from kit.train.sampler import DistributedWeightedSampler, ShardSampler

pytestmark = pytest.mark.slow

# Exercises the distributed balanced sampler, re-wrapping DDP after unfreezing, and EMA.
# device cpu: gloo on CPU whatever the machine has, so the resumed run can equal the straight one bit for bit.
SETTINGS = {"size": 32, "batch_size": 8, "workers": 0, "epochs": 2, "freeze_epochs": 1, "sampler": "balanced",
            "ema": 0.5, "tta": "none", "seed": 5, "device": "cpu"}


@pytest.fixture(scope="module")
def folds_csv(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("folds") / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=out, k=2, seed=0)
    return out


def options(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args


def torchrun(synth_dir, folds_csv, runs, *extra, processes=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "kit", "train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs),
               "--fold", "0", "--model", "test_resnet", "--no-progress", *options(SETTINGS), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def ddp_run(synth_dir, folds_csv, tmp_path_factory):
    runs = tmp_path_factory.mktemp("ddp")
    result = torchrun(synth_dir, folds_csv, runs)
    assert result.returncode == 0, result.stdout + result.stderr
    return runs / "test_resnet" / "fold0", result.stdout


def test_one_fold_over_two_processes_predicts_every_id_once_and_scores_them_all(ddp_run, synth_dir, folds_csv):
    run_dir, output = ddp_run
    assert "DDP rank 0/2 (gloo)" in output
    assert output.count("best epoch") == 2  # rank 0's log line and its result line: rank 1 printed nothing
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"Id": str})
    assert sorted(oof["Id"]) == sorted(folds.loc[folds["fold"] == 0, "Id"]) and oof["Id"].is_unique
    test = pd.read_csv(run_dir / "test.csv", dtype={"Id": str})
    assert list(test["Id"]) == read_sample_ids(synth_dir / "sample_submission.csv", HPA)

    # The epoch's metrics were computed on every rank's predictions: they equal those of the single OOF file.
    labels = CompetitionData(synth_dir, HPA).train_labels().set_index("Id")
    truth = labels_to_matrix(labels.loc[oof["Id"], "labels"].tolist(), HPA.num_classes)
    probs = oof[list(HPA.classes)].to_numpy()
    best = load_checkpoint(run_dir / "best.pt")["metrics"]
    assert best["val_macro_f1"] == pytest.approx(sklearn_macro_f1(truth, probs), abs=1e-9)
    assert best["val_macro_f1_tuned"] == pytest.approx(sklearn_tuned_macro_f1(truth, probs), abs=1e-9)


def sklearn_macro_f1(truth, probs, threshold=0.5):
    """scikit-learn's macro F1 of `probs >= threshold` (kit's rule: positive at or above the threshold)."""
    from sklearn.metrics import f1_score

    return f1_score(truth, probs >= threshold, average="macro", zero_division=0)


def sklearn_tuned_macro_f1(truth, probs):
    """The mean over classes of the best F1 any threshold gives, by trying every distinct score (brute force)."""
    from sklearn.metrics import f1_score

    return float(np.mean([max([f1_score(truth[:, c], probs[:, c] >= t, zero_division=0)
                               for t in np.unique(probs[:, c])] + [0.0]) for c in range(truth.shape[1])]))


INTERRUPTED_RANK = """
import json, sys
from kit.data.reading import CompetitionData
from kit.settings import resolve_settings
from kit.data.spec import HPA
from kit.train.loop import train_fold

values, data = json.loads(sys.argv[1]), sys.argv[2]

def stop(epoch, model, row):
    if epoch == 0:
        raise SystemExit(3)

train_fold(resolve_settings(options=values)[0], CompetitionData(data, HPA), log=lambda line: None, on_epoch_end=stop)
"""


def test_an_interrupted_ddp_run_resumes_to_the_same_weights(ddp_run, synth_dir, folds_csv, tmp_path):
    runs = tmp_path / "runs"
    values = {**SETTINGS, "model": "test_resnet", "fold": 0, "folds": str(folds_csv), "runs": str(runs),
              "progress": False}
    script = tmp_path / "interrupted_rank.py"
    script.write_text(INTERRUPTED_RANK)
    # torchrun --standalone binds its rendezvous store to port 0 and keeps it: no free-port race with other
    # test files (a port found free, then closed, can be taken before the rank-0 process binds it).
    interrupted = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         json.dumps(values), str(synth_dir)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    said = interrupted.stdout + interrupted.stderr
    assert interrupted.returncode != 0 and re.search(r"exitcode\s*:\s*3\b", said), said  # the ranks' SystemExit(3)
    resumed_dir = runs / "test_resnet" / "fold0"
    assert load_checkpoint(resumed_dir / "last.pt")["epoch"] == 1 and not (resumed_dir / "oof.csv").exists()

    result = torchrun(synth_dir, folds_csv, runs, "--resume")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming from" in result.stdout
    straight = torch.load(ddp_run[0] / "last.pt", weights_only=True)
    resumed = torch.load(resumed_dir / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key} differs"
    pd.testing.assert_frame_equal(pd.read_csv(ddp_run[0] / "oof.csv"), pd.read_csv(resumed_dir / "oof.csv"))


def test_sync_bn_on_cpu_is_one_clear_line(synth_dir, folds_csv, tmp_path, monkeypatch):
    single = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs",
                                       str(tmp_path), "--model", "test_resnet", "--sync-bn"])
    assert single.exit_code == 1 and "start the run with torchrun" in single.output
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; the check comes before joining a group
    with pytest.raises(KitError, match="SyncBatchNorm runs on CUDA devices only"):
        make_runtime("cpu", "auto", sync_bn=True)


def test_the_samplers_split_the_draws_over_the_ranks_exactly():
    weights = torch.tensor([1.0, 5.0, 0.5, 2.0, 3.0, 1.0, 0.1])
    for world in (2, 3):
        for epoch in (0, 1):
            shards = []
            for rank in range(world):
                sampler = DistributedWeightedSampler(weights, 12, rank, world, seed=4)
                sampler.set_epoch(epoch)
                shards.append(list(sampler))
            one = DistributedWeightedSampler(weights, 12, 0, 1, seed=4)  # a single process's draw of the epoch
            one.set_epoch(epoch)
            alone = list(one)
            assert [len(shard) for shard in shards] == [12 // world] * world
            interleaved = [shards[i % world][i // world] for i in range(12)]
            assert interleaved == alone  # the ranks together drew exactly what one process draws
    again = DistributedWeightedSampler(weights, 12, 0, 2, seed=4)
    first = list(again)
    again.set_epoch(1)
    assert list(again) != first  # another epoch, another draw
    # the draws follow the weights (a chi-square test at 0.1% over 40,000 draws)
    from scipy.stats import chisquare

    big = DistributedWeightedSampler(weights, 40_000, 0, 1, seed=0)
    counts = np.bincount(list(big), minlength=7)
    expected = weights.double().numpy() / weights.double().sum().item() * counts.sum()
    assert chisquare(counts, expected).pvalue > 1e-3
    parts = [list(ShardSampler(7, rank, 3)) for rank in range(3)]
    assert sorted(sum(parts, [])) == list(range(7)) and parts[0] == [0, 3, 6]


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f"needs 2 CUDA devices for 2 NCCL processes ({torch.cuda.device_count()} visible)")
def test_one_fold_over_two_gpus_with_nccl(synth_dir, folds_csv, tmp_path):
    settings = {**SETTINGS, "device": "cuda"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kit",
               "train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(tmp_path), "--fold", "0",
               "--model", "test_resnet", "--no-progress", *options(settings), "--sync-bn"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DDP rank 0/2 (nccl)" in result.stdout
    oof = pd.read_csv(tmp_path / "test_resnet" / "fold0" / "oof.csv", dtype={"Id": str})
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    assert sorted(oof["Id"]) == sorted(folds.loc[folds["fold"] == 0, "Id"])


def fan_out_args(synth_dir, folds_csv, runs, *extra):
    return ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(runs), "--fold", "all",
            "--model", "test_resnet", "--gpus", "cpu,cpu", "--no-progress", "--size", "32", "--batch-size", "8",
            "--epochs", "1", "--tta", "none", "--workers", "0", *extra]


def test_folds_fan_out_over_two_devices(synth_dir, folds_csv, tmp_path):
    result = CliRunner().invoke(main, fan_out_args(synth_dir, folds_csv, tmp_path))
    assert result.exit_code == 0, result.output
    folds = pd.read_csv(folds_csv, dtype={"Id": str})
    for fold in (0, 1):
        run_dir = tmp_path / "test_resnet" / f"fold{fold}"
        oof = pd.read_csv(run_dir / "oof.csv", dtype={"Id": str})
        assert sorted(oof["Id"]) == sorted(folds.loc[folds["fold"] == fold, "Id"])
        assert (run_dir / "test.csv").is_file() and "best epoch" in (run_dir / "train.log").read_text()
        assert f"{run_dir}: done on cpu" in result.output


def test_a_failing_fold_is_reported_and_the_others_go_on(synth_dir, folds_csv, tmp_path):
    broken = tmp_path / "test_resnet" / "fold1" / "last.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, fan_out_args(synth_dir, folds_csv, tmp_path, "--resume"))
    assert result.exit_code == 1
    last_line = result.output.strip().splitlines()[-1]
    assert last_line.startswith("Error: 1 of 2 run(s) failed") and "not a readable checkpoint" in last_line
    assert (tmp_path / "test_resnet" / "fold0" / "oof.csv").is_file()
    assert not (tmp_path / "test_resnet" / "fold1" / "oof.csv").exists()


@pytest.mark.parametrize("gpus,message", [("0,1", "CUDA is not available"), ("a,b", "neither a CUDA device")])
def test_bad_gpus_are_one_clear_line(synth_dir, folds_csv, tmp_path, gpus, message):
    if torch.cuda.is_available() and gpus == "0,1":
        pytest.skip("this machine has CUDA")
    args = fan_out_args(synth_dir, folds_csv, tmp_path)
    args[args.index("cpu,cpu")] = gpus
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_a_fanned_out_process_loads_torch_only_after_choosing_its_gpu():
    # The child unpickles kit.train.fanout before it sets CUDA_VISIBLE_DEVICES; torch must not be loaded by then.
    check = "import sys, kit.train.fanout; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], timeout=120).returncode == 0
