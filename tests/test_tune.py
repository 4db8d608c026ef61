"""`kit tune` on a `kit synth` set with a tiny model (test_resnet, 32 px, 1 epoch), read back through Optuna's own
storage API: trials counted, pruned, resumed after a kill, shared between processes; bad spaces refused."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from helpers import error_line, invoke_in

from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA

TRAIN = {"model": "test_resnet", "size": 32, "epochs": 1, "batch_size": 8, "workers": 0, "tta": "none",
         "device": "cpu"}
SPACE = {"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True}, "loss": ["bce", "focal"]}


def project(root, synth_dir, tune=None):
    """A working folder with kit.yaml (train: tiny settings, tune: `tune`) and folds/folds.csv (2 folds)."""
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=root / "folds" / "folds.csv", k=2, seed=0)
    config = {"data": str(synth_dir), "train": TRAIN, "tune": {"space": SPACE, "trials": 2, **(tune or {})}}
    (root / "kit.yaml").write_text(yaml.safe_dump(config))
    return root


def trials(root, study="test_resnet"):
    return optuna.load_study(study_name=study, storage=f"sqlite:///{root / 'tune.db'}").get_trials()


def states(root):
    try:
        return sorted(t.state.name for t in trials(root))
    except KeyError:  # the file exists, the study is not made yet
        return []


def kit_process(root, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "kit", "tune", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("space, key", [
    ({"learning_rate": {"low": 0.1, "high": 0.2}}, "tune.space.learning_rate: not a train: setting"),
    ({"lr": {"low": 3.0e-3, "high": 1.0e-4}}, "tune.space.lr: empty range"),
    ({"mixup": {"low": 0.2, "high": 0.2}}, "tune.space.mixup: empty range"),
    ({"loss": []}, "tune.space.loss: empty list of choices"),
    ({"loss": ["bce", "hinge"]}, "tune.space.loss: unknown loss 'hinge'"),
])
def test_a_bad_space_is_one_line_naming_the_key(tmp_path, synth_dir, space, key):
    root = project(tmp_path, synth_dir)
    config = yaml.safe_load((root / "kit.yaml").read_text())
    config["tune"]["space"] = space
    (root / "kit.yaml").write_text(yaml.safe_dump(config))
    line = error_line(invoke_in(root, ["tune"], expect=1))
    assert line.startswith("Error: ") and f"kit.yaml: {key}" in line, line
    assert not (root / "tune.db").exists()


@pytest.mark.slow
def test_trials_pruned_resumed_and_the_best_printed(tmp_path, synth_dir, monkeypatch):
    root = project(tmp_path, synth_dir, {"trials": 3, "pruner": "none"})
    invoke_in(root, ["tune"])
    assert states(root) == ["COMPLETE"] * 3
    # the same study, asked for 4: one more trial, pruned by a threshold no F1 reaches
    result = invoke_in(root, ["tune", "--trials", "4", "--pruner", "threshold", "--prune-threshold", "2"])
    assert states(root) == ["COMPLETE"] * 3 + ["PRUNED"]
    done = trials(root)
    assert [t.number for t in done] == [0, 1, 2, 3]
    pruned = done[3]
    assert list(pruned.intermediate_values) == [0]  # reported after epoch 1 of fold 0, then pruned
    for trial in done:
        assert (root / "runs" / "tune" / "test_resnet" / f"trial{trial.number}" / "fold0" / "history.csv").is_file()
    best = max(done[:3], key=lambda t: t.value)
    printed = yaml.safe_load(result.output.split("as a train: section:", 1)[1].split("wrote ", 1)[0])
    assert printed["train"] == {**TRAIN, **best.params}
    assert {"history.png", "importance.png"} <= {p.name for p in (root / "runs" / "tune" / "test_resnet").iterdir()}
    assert "4 finished trial(s), 1 pruned" in result.output
    invoke_in(root, ["tune", "--trials", "4"])  # nothing left to do
    assert len(trials(root)) == 4


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_asked_number(tmp_path, synth_dir):
    root = project(tmp_path, synth_dir, {"trials": 3, "pruner": "none"})
    process = kit_process(root)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (root / "tune.db").exists() and "COMPLETE" in states(root):  # one trial done, the next running
            break
        assert process.poll() is None, process.stdout.read()
        time.sleep(1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = states(root)
    assert 1 <= killed.count("COMPLETE") < 3
    resumed = kit_process(root)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"{killed.count('COMPLETE')} of 3 trials finished" in output
    assert states(root).count("COMPLETE") == 3


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path, synth_dir):
    root = project(tmp_path, synth_dir, {"trials": 2, "pruner": "none", "folds": [0, 1]})
    result = invoke_in(root, ["tune", "--gpus", "cpu,cpu"])
    done = [t for t in trials(root) if t.state.name == "COMPLETE"]
    assert len(done) >= 2
    assert len({t.number for t in done}) == len(done)
    assert len({t.user_attrs["process"] for t in done}) == 2, result.output  # each process ran trials
    for trial in done:  # a cross-validated objective: the mean of the two folds' best values
        folds = trial.user_attrs["fold_scores"]
        assert sorted(folds) == ["0", "1"]
        assert trial.value == pytest.approx(sum(folds.values()) / 2)
