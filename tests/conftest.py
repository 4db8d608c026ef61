"""Shared fixtures: small synthetic competition folders made once per session with `kit synth`."""
from __future__ import annotations

import shutil

import pytest

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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine run several times faster on one thread than on two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
