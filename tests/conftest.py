"""Shared fixtures: small synthetic competition folders made once per session with `kit synth`."""
from __future__ import annotations

import os
import shutil

import pytest

# Runs compared bit for bit must use one thread count everywhere (float reductions over 1 and 2 threads differ),
# in this process and in the kit processes tests start; one thread is also the fastest for tiny models on 2 cores.
os.environ["OMP_NUM_THREADS"] = "1"

from kit.data.spec import HPA
from kit.data.synth import write_dataset


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A read-only 60-train / 12-test HPA-shaped data set at 32 px. Copy it before changing anything."""
    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(root, HPA, n_train=60, n_test=12, size=32, seed=7, workers=1)
    return root


@pytest.fixture
def data_copy(synth_dir, tmp_path):
    """A private, writable copy of `synth_dir`."""
    target = tmp_path / "data"
    shutil.copytree(synth_dir, target)
    return target


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine run several times faster on one thread than on two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_blend(synth_dir, tmp_path_factory):
    """A finished two-member rank blend on `synth_dir` (2 folds, 1 epoch at 32 px, different TTA and batch
    sizes per member), made through the commands: root/runs/<model>/fold<k>, root/submissions/blend.{csv,json}.
    Read-only: copy before changing anything."""
    import types

    from click.testing import CliRunner

    from kit.cli import main
    from kit.data.folds import make_folds
    from kit.data.reading import CompetitionData

    root = tmp_path_factory.mktemp("tiny-blend")
    folds = root / "folds" / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=folds, k=2, seed=0)
    common = ["--data", str(synth_dir), "--folds", str(folds), "--runs", str(root / "runs"), "--fold", "all",
              "--size", "32", "--epochs", "1", "--workers", "0", "--no-progress", "--device", "cpu"]
    for model, tta, batch in (("test_resnet", "flip", "8"), ("test_byobnet", "none", "6")):
        result = CliRunner().invoke(main, ["train", "--model", model, "--tta", tta, "--batch-size", batch, *common])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["blend", str(root / "runs"), "--data", str(synth_dir), "--folds", str(folds),
                                       "--out", str(root / "submissions"), "--method", "rank"])
    assert result.exit_code == 0, result.output
    return types.SimpleNamespace(root=root, data=synth_dir, runs=root / "runs", folds=folds,
                                 json=root / "submissions" / "blend.json", csv=root / "submissions" / "blend.csv")


@pytest.fixture(scope="session")
def new_test_set(tmp_path_factory):
    """Another synthetic competition folder (a test set the blend never saw), read-only."""
    root = tmp_path_factory.mktemp("new-test") / "data"
    write_dataset(root, HPA, n_train=8, n_test=9, size=32, seed=11, workers=1)
    return root
