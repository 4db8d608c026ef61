"""Training on Kaggle: `kit bundle --train`, `kit notebook --train [--push]` and `kit pull`, through the real kaggle
client against the stand-in server (tests/kaggle_server.py), offline; then `kit blend` on the runs pulled home."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.spec import HPA

pytest_plugins = ["kaggle_server"]  # the stand-in server's fixtures: kaggle, stand_in
pytestmark = pytest.mark.usefixtures("one_thread")
BUNDLE = "tester/hpa-train"
KERNEL = "tester/hpa-train-test-resnet"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def project(tiny_blend, tmp_path, monkeypatch):
    """A working folder holding the tiny blend's folds (folds/folds.csv, the default) and no runs yet."""
    (tmp_path / "folds").mkdir()
    shutil.copy2(tiny_blend.folds, tmp_path / "folds" / "folds.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kernel_output(run_dirs: dict[str, Path], exit_code: int = 0) -> dict[str, bytes]:
    """What a training kernel leaves in /kaggle/working: runs/<model>/fold<k>/* and kit-status.json."""
    files = {f"runs/{where}/{path.name}": path.read_bytes()
             for where, folder in run_dirs.items() for path in sorted(folder.iterdir()) if path.is_file()}
    status = {"exit_code": exit_code, "command": ["-m", "kit", "train"], "kernel": "",
              "notebook": ["kit", "notebook", "nb", "--train", "--bundle", BUNDLE, "--id", KERNEL, "--fold", "0",
                           "--model", "test_resnet", "--epochs", "1", "--push"]}
    files["kit-status.json"] = json.dumps(status).encode()
    return files


def attach_bundle(kaggle):
    kaggle.datasets[BUNDLE] = {"title": "kit train", "licenseName": "CC0-1.0", "isPrivate": True, "polls": 0,
                               "versions": []}


def serve_runs(kaggle, runs: Path, model: str = "test_resnet"):
    """Each pushed kernel <...>-fold<k> 'trains' by handing back the local run of fold k."""
    def job(ref, body):
        fold = int(re.search(r"fold(\d+)$", ref).group(1))
        return True, f"running kit train --fold {fold}\n", kernel_output({f"{model}/fold{fold}": runs / model /
                                                                          f"fold{fold}"})
    kaggle.kernel_job = job


# ---------------------------------------------------------------- the kernel as written


def test_notebook_train_writes_a_gpu_kernel_without_internet_that_trains_within_the_session(project):
    result = run("notebook", "nb", "--train", "--bundle", BUNDLE, "--weights", "tester/timm-weights",
                 "--model", "test_resnet", "--fold", "1", "--session-limit", "9h", "--margin", "20m",
                 "--epochs", "3", "--size", "64")
    assert result.exit_code == 0, result.output
    meta = json.loads((project / "nb" / "kernel-metadata.json").read_text())
    assert meta == {"id": f"{KERNEL}-fold1", "title": "hpa train test resnet fold1", "code_file": "train.py",
                    "language": "python", "kernel_type": "script", "is_private": True, "enable_gpu": True,
                    "enable_internet": False, "dataset_sources": [BUNDLE, "tester/timm-weights"],
                    "competition_sources": [HPA.slug], "kernel_sources": []}
    script = (project / "nb" / "train.py").read_text()
    compile(script, "train.py", "exec")
    assert "TRAIN = ['--model', 'test_resnet', '--fold', '1', '--epochs', '3', '--size', '64']" in script
    assert "TIME_LIMIT = '8h40m00s'" in script and "--no-index" in script and script.count("/kaggle") == 1
    assert "torch.distributed.run" in script  # two GPUs: the fold under DDP


def test_fold_all_writes_one_kernel_per_fold_and_resume_from_attaches_each_earlier_one(project):
    result = run("notebook", "nb", "--train", "--bundle", BUNDLE, "--model", "test_resnet", "--fold", "all",
                 "--resume-from", KERNEL, "--session-limit", "12h")
    assert result.exit_code == 0, result.output
    for fold in (0, 1):
        meta = json.loads((project / "nb" / f"fold{fold}" / "kernel-metadata.json").read_text())
        assert meta["id"] == f"{KERNEL}-fold{fold}" and meta["kernel_sources"] == [f"{KERNEL}-fold{fold}"]
        script = (project / "nb" / f"fold{fold}" / "train.py").read_text()
        assert f"RESUME_FROM = '{KERNEL}-fold{fold}'" in script and "TIME_LIMIT = '11h40m00s'" in script


@pytest.mark.parametrize("args,message", [
    (["--runs", "elsewhere"], "--runs: set by the training kernel itself"),
    (["--resume"], "--resume: set by the training kernel itself"),
    (["--epoch", "2"], "No such option '--epoch'"),
    (["--session-limit", "20m"], "leaves no time to train"),
    (["--session-limit", "soon"], "--session-limit: 'soon' is not a duration"),
    (["--gpus", "0,1"], "--gpus 0,1: fans several folds out in one kernel; give --fold all"),
    (["--fold", "all", "--gpus", "0"], "2 folds on 1 GPUs would run in waves"),
    (["--blend", "x.json"], "--blend: only for inference kernels"),
])
def test_notebook_train_refusals_are_one_line(project, args, message):
    assert message in error_line(run("notebook", "nb", "--train", "--bundle", BUNDLE, *args))
    assert not (project / "nb").exists()


def test_training_options_without_train_are_refused(project):
    assert "--fold: only for training kernels (add --train)" in error_line(
        run("notebook", "nb", "--bundle", BUNDLE, "--fold", "0"))
    assert "--epochs: only for training kernels" in error_line(run("notebook", "nb", "--bundle", BUNDLE,
                                                                   "--epochs", "2"))


# ---------------------------------------------------------------- push, pull, blend


def test_push_then_pull_then_blend_through_the_cli(kaggle, project, tiny_blend):
    attach_bundle(kaggle)
    serve_runs(kaggle, tiny_blend.runs)
    kaggle.output_page_size = 3  # the client pages through the output listing
    pushed = run("notebook", "nb", "--train", "--bundle", BUNDLE, "--model", "test_resnet", "--fold", "all",
                 "--epochs", "1", "--size", "32", "--push")
    assert pushed.exit_code == 0, pushed.output
    saves = kaggle.calls("SaveKernel")
    assert [s.json()["slug"] for s in saves] == [f"{KERNEL}-fold0", f"{KERNEL}-fold1"]
    body = saves[0].json()
    assert body["datasetDataSources"] == [BUNDLE] and body["enableGpu"] and not body["enableInternet"]
    assert f"bring its runs home with: kit pull {KERNEL}-fold1" in pushed.output
    assert (project / "nb" / "fold1" / "output" / "runs" / "test_resnet" / "fold1" / "best.pt").is_file()

    pulled = run("pull", f"{KERNEL}-fold0", f"{KERNEL}-fold1")
    assert pulled.exit_code == 0, pulled.output
    assert "pulled 2 run(s) into runs" in pulled.output
    for fold in (0, 1):
        for name in ("best.pt", "oof.csv", "test.csv", "config.yaml", "history.csv"):
            assert (project / "runs" / "test_resnet" / f"fold{fold}" / name).read_bytes() == \
                (tiny_blend.runs / "test_resnet" / f"fold{fold}" / name).read_bytes()
    assert not list(project.glob(".kit-pull-*"))

    home = run("blend", "runs", "--data", tiny_blend.data, "--out", "submissions", "--method", "mean")
    local = run("blend", tiny_blend.runs / "test_resnet", "--data", tiny_blend.data, "--out", "local",
                "--method", "mean")
    assert home.exit_code == 0 and local.exit_code == 0, home.output + local.output
    assert (project / "submissions" / "blend.csv").read_bytes() == (project / "local" / "blend.csv").read_bytes()


def test_a_kernel_stopped_by_its_time_limit_is_reported_with_the_command_that_resumes_it(kaggle, project, tiny_blend):
    attach_bundle(kaggle)
    partial = project / "partial"
    (partial / "fold0").mkdir(parents=True)
    shutil.copy2(tiny_blend.runs / "test_resnet" / "fold0" / "best.pt", partial / "fold0" / "last.pt")
    kaggle.kernel_job = lambda ref, body: (True, "stopped at epoch 1/3\n",
                                           kernel_output({"test_resnet/fold0": partial / "fold0"}, exit_code=75))
    pushed = run("notebook", "nb", "--train", "--bundle", BUNDLE, "--model", "test_resnet", "--fold", "0",
                 "--epochs", "1", "--push")
    assert pushed.exit_code == 0, pushed.output
    assert f"kernel {KERNEL}-fold0 version 1 stopped at its time limit; continue it with: kit notebook" in pushed.output
    assert f"--resume-from {KERNEL}-fold0 --push" in pushed.output

    pulled = run("pull", f"{KERNEL}-fold0")
    assert pulled.exit_code == 75, pulled.output
    assert f"kernel {KERNEL}-fold0: stopped by its time limit" in pulled.output
    assert f"--resume-from {KERNEL}-fold0 --push" in pulled.output
    assert not (project / "runs").exists()

    serve_runs(kaggle, tiny_blend.runs)
    again = run("notebook", "nb", "--train", "--bundle", BUNDLE, "--model", "test_resnet", "--fold", "0",
                "--epochs", "1", "--resume-from", f"{KERNEL}-fold0", "--push")
    assert again.exit_code == 0, again.output
    body = kaggle.calls("SaveKernel")[-1].json()
    assert body["kernelDataSources"] == [f"{KERNEL}-fold0"] and f"RESUME_FROM = '{KERNEL}-fold0'" in body["text"]
    assert run("pull", f"{KERNEL}-fold0").exit_code == 0


def test_a_stopped_fan_out_kernel_brings_its_finished_folds_home_and_the_continued_one_the_rest(
        kaggle, project, tiny_blend):
    ref, runs = f"{KERNEL}-all", tiny_blend.runs / "test_resnet"
    partial = project / "partial" / "fold1"
    partial.mkdir(parents=True)
    shutil.copy2(runs / "fold1" / "best.pt", partial / "last.pt")
    stopped = kernel_output({"test_resnet/fold0": runs / "fold0", "test_resnet/fold1": partial}, exit_code=75)
    kaggle.kernels[ref] = {"versions": [{}], "status": "COMPLETE", "failure": "", "polls": 0, "log": "",
                           "outputs": stopped}
    pulled = run("pull", ref)
    assert pulled.exit_code == 75, pulled.output
    assert (f"kernel {ref}: stopped by its time limit before finishing runs/test_resnet/fold1; pulling its 1 "
            "finished run(s)") in pulled.output and "--resume-from" in pulled.output
    home = project / "runs" / "test_resnet"
    assert sorted(p.name for p in home.iterdir()) == ["fold0"]
    assert (home / "fold0" / "oof.csv").read_bytes() == (runs / "fold0" / "oof.csv").read_bytes()

    continued = kernel_output({"test_resnet/fold0": runs / "fold0", "test_resnet/fold1": runs / "fold1"})
    continued["runs/test_resnet/fold0/oof.csv"] += b"\n"  # fold 0 predicted again: other bytes, the same weights
    kaggle.kernels[ref]["outputs"] = continued
    again = run("pull", ref)
    assert again.exit_code == 0, again.output
    assert f"kernel {ref}: runs/test_resnet/fold0/ is already here" in again.output
    assert sorted(p.name for p in home.iterdir()) == ["fold0", "fold1"]
    assert (home / "fold0" / "oof.csv").read_bytes() == (runs / "fold0" / "oof.csv").read_bytes()  # kept
    assert (home / "fold1" / "best.pt").read_bytes() == (runs / "fold1" / "best.pt").read_bytes()


def broken(tiny_blend, tmp_path, how):
    """A copy of test_resnet's fold 0 run, broken one way."""
    folder = tmp_path / "broken" / "fold0"
    shutil.copytree(tiny_blend.runs / "test_resnet" / "fold0", folder)
    if how == "incomplete":
        (folder / "test.csv").unlink()
    elif how == "other folds":
        shutil.copy2(tiny_blend.runs / "test_resnet" / "fold1" / "oof.csv", folder / "oof.csv")
    elif how == "another spec":
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["competition"]["classes"] = config["competition"]["classes"][:-1]
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.mark.parametrize("how,message", [
    ("incomplete", "runs/test_resnet/fold0/test.csv is missing: the run is incomplete"),
    ("other folds", "runs/test_resnet/fold0/oof.csv holds other Ids than fold 0 of folds/folds.csv"),
    ("another spec", "runs/test_resnet/fold0/config.yaml was made for another competition spec (classes differs"),
])
def test_pull_refusals_name_the_kernel_and_the_file_and_write_nothing(kaggle, project, tiny_blend, tmp_path, how,
                                                                      message):
    good, bad = f"{KERNEL}-fold1", f"{KERNEL}-fold0"
    kaggle.kernels[good] = {"versions": [{}], "status": "COMPLETE", "failure": "", "polls": 0, "log": "",
                            "outputs": kernel_output({"test_resnet/fold1": tiny_blend.runs / "test_resnet" / "fold1"})}
    kaggle.kernels[bad] = {**kaggle.kernels[good],
                           "outputs": kernel_output({"test_resnet/fold0": broken(tiny_blend, tmp_path, how)})}
    line = error_line(run("pull", good, bad))
    assert line == f"Error: kernel {bad}: {message}" or line.startswith(f"Error: kernel {bad}: {message}")
    assert not (project / "runs").exists() and not list(project.glob(".kit-pull-*"))


def test_pull_never_replaces_a_local_run_unless_forced(kaggle, project, tiny_blend):
    ref = f"{KERNEL}-fold0"
    kaggle.kernels[ref] = {"versions": [{}], "status": "COMPLETE", "failure": "", "polls": 0, "log": "",
                           "outputs": kernel_output({"test_resnet/fold0": tiny_blend.runs / "test_resnet" / "fold0"})}
    local = project / "runs" / "test_resnet" / "fold0"
    local.mkdir(parents=True)
    (local / "notes.txt").write_text("mine")
    assert "would replace the local run runs/test_resnet/fold0; --force replaces it" in error_line(run("pull", ref))
    assert sorted(p.name for p in local.iterdir()) == ["notes.txt"]
    forced = run("pull", ref, "--force")
    assert forced.exit_code == 0, forced.output
    assert not (local / "notes.txt").exists() and (local / "best.pt").read_bytes() == \
        (tiny_blend.runs / "test_resnet" / "fold0" / "best.pt").read_bytes()
    assert sorted(p.name for p in local.parent.iterdir()) == ["fold0"]


def test_pull_of_a_kernel_that_is_not_a_training_kernel_is_one_line(kaggle, project):
    kaggle.kernels["tester/some-inference"] = {"versions": [{}], "status": "COMPLETE", "failure": "", "polls": 0,
                                               "log": "", "outputs": {"submission.csv": b"Id,Predicted\n"}}
    assert "kernel tester/some-inference: its output holds no runs/<model>/fold<k>/" in \
        error_line(run("pull", "tester/some-inference"))
    assert "kernel 'nobody': expected owner/slug" in error_line(run("pull", "nobody"))


# ---------------------------------------------------------------- the training bundle


def test_training_bundle_holds_wheels_spec_train_section_and_folds_and_no_members(project, tiny_blend):
    (project / "kit.yaml").write_text(yaml.safe_dump({"train": {"epochs": 2, "size": 32}}))
    result = run("bundle", "tb", "--train", "--dep", "none")
    assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(project / "tb")) for p in (project / "tb").rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("wheels/")] == ["bundle.json", "dataset-metadata.json",
                                                               "folds/folds.csv", "kit.yaml"]
    assert len([f for f in files if f.startswith("wheels/kit-")]) == 1
    assert (project / "tb" / "folds" / "folds.csv").read_bytes() == tiny_blend.folds.read_bytes()
    spec = yaml.safe_load((project / "tb" / "kit.yaml").read_text())
    assert spec["train"] == {"epochs": 2, "size": 32} and spec["competition"]["slug"] == HPA.slug
    assert json.loads((project / "tb" / "bundle.json").read_text())["kind"] == "train"
    assert "--train makes a bundle for training kernels" in error_line(
        run("bundle", "tb2", "--train", "--blend", tiny_blend.json))


# ---------------------------------------------------------------- the script itself, run here as Kaggle would


def kit_train_has_time_limit() -> bool:
    from kit.settings.train import FIELDS

    return any(f.name == "time_limit" for f in FIELDS)


@pytest.mark.slow
@pytest.mark.skipif(not kit_train_has_time_limit(), reason="kit train --time-limit (issue 21, kaggle-train) not in")
def test_the_training_script_runs_offline_from_the_bundle_and_pulls_back_the_local_run_bit_for_bit(
        kaggle, project, tiny_blend, tmp_path):
    import subprocess

    from kaggle_image import image_env, image_venv

    made = run("bundle", "tb", "--train")  # kit's wheel and what it needs beyond a Kaggle image
    assert made.exit_code == 0, made.output
    bundle_ref = json.loads((project / "tb" / "bundle.json").read_text())["dataset"]
    root = tmp_path / "kaggle"
    shutil.copytree(project / "tb", root / "input" / bundle_ref.split("/")[1])  # attached as input/<slug>
    shutil.copytree(tiny_blend.data, root / "input" / HPA.slug)
    # the settings of tiny_blend's test_resnet runs (conftest.py), on the CPU
    written = run("notebook", "nb", "--train", "--bundle", bundle_ref, "--model", "test_resnet", "--fold", "0",
                  "--tta", "flip", "--batch-size", "8", "--size", "32", "--epochs", "1", "--workers", "0",
                  "--no-progress", "--device", "cpu")
    assert written.exit_code == 0, written.output

    python = image_venv(tmp_path / "image")  # only what a Kaggle image provides: kit comes from the bundle
    env = image_env(KIT_KAGGLE_ROOT=str(root), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env.pop("KIT_WEIGHTS", None)
    done = subprocess.run([python, project / "nb" / "train.py"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    working = root / "working"
    status = json.loads((working / "kit-status.json").read_text())
    assert status["exit_code"] == 0 and "--time-limit" in status["command"]

    ref = json.loads((project / "nb" / "kernel-metadata.json").read_text())["id"]
    outputs = {str(p.relative_to(working)): p.read_bytes() for p in working.rglob("*") if p.is_file()}
    kaggle.kernels[ref] = {"versions": [{}], "status": "COMPLETE", "failure": "", "polls": 0, "log": done.stdout,
                           "outputs": outputs}
    pulled = run("pull", ref)
    assert pulled.exit_code == 0, pulled.output
    home, local = project / "runs" / "test_resnet" / "fold0", tiny_blend.runs / "test_resnet" / "fold0"
    for name in ("oof.csv", "test.csv"):
        assert (home / name).read_bytes() == (local / name).read_bytes(), name
    theirs = torch_state(home / "best.pt")
    ours = torch_state(local / "best.pt")
    assert theirs.keys() == ours.keys() and all(torch_equal(theirs[k], ours[k]) for k in ours)


def torch_state(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)
