"""`kit weights` against a stand-in of the Hugging Face hub (tests/hf_server.py), and `--pretrained auto` finding
what it wrote in $KIT_WEIGHTS and in attached Kaggle inputs, offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import timm
import torch
from click.testing import CliRunner
from helpers import error_line
from hf_server import HubStandIn
from safetensors.torch import load_file, save

from kit.cli import main
from kit.train.models import create_model

REPO = "timm/test_resnet.r160_in1k"  # timm's pretrained_cfg of test_resnet names this hub repository


@pytest.fixture(scope="module")
def served():
    """A random test_resnet's state dict (seed 3), as the hub would hold it."""
    torch.manual_seed(3)
    return {k: v.contiguous() for k, v in timm.create_model("test_resnet").state_dict().items()}


@pytest.fixture(scope="module")
def weights_dir(served, tmp_path_factory):
    """`kit weights test_resnet --out W`, run for real (a fresh process, HF_HUB_OFFLINE unset there only) against
    the hub stand-in."""
    root = tmp_path_factory.mktemp("weights")
    config = json.dumps({"architecture": "test_resnet", "num_classes": 1000}).encode()
    with HubStandIn({REPO: {"model.safetensors": save(served), "config.json": config}}) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(root / "hf-home"), NO_PROXY="127.0.0.1,localhost",
                   KAGGLE_USERNAME="tester", HF_HUB_DISABLE_TELEMETRY="1")
        done = subprocess.run([sys.executable, "-m", "kit", "weights", "test_resnet", "--out", str(root / "W")],
                              env=env, capture_output=True, text=True, timeout=300)
        requests = list(hub.requests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("GET", f"/{REPO}/resolve/main/model.safetensors") in requests
    return root / "W", done.stdout


def test_weights_writes_safetensors_cfg_listing_and_dataset_metadata(weights_dir, served):
    out, output = weights_dir
    written = load_file(str(out / "test_resnet" / "model.safetensors"))
    assert written.keys() == served.keys() and all(torch.equal(written[k], served[k]) for k in served)
    cfg = json.loads((out / "test_resnet" / "pretrained_cfg.json").read_text())
    assert cfg["hf_hub_id"] == REPO and cfg["first_conv"] == "conv1.0" and cfg["classifier"] == "fc"
    listing = json.loads((out / "weights.json").read_text())
    assert listing["models"]["test_resnet"]["file"] == "test_resnet/model.safetensors"
    assert json.loads((out / "dataset-metadata.json").read_text())["id"] == "tester/timm-weights"
    assert "test_resnet: downloading" in output


def backbone_matches(model, served) -> bool:
    """Every backbone tensor but the first conv (adapted to 4 channels) is the served one."""
    state = model.backbone.state_dict()
    return all(torch.equal(state[k], served[k]) for k in state if not k.startswith("conv1.0"))


@pytest.mark.parametrize("where", ["KIT_WEIGHTS", "input/<slug>", "input/datasets/<owner>/<slug>"])
def test_auto_finds_the_weights_folder_and_says_which_file(weights_dir, served, tmp_path, monkeypatch, where):
    out, _ = weights_dir
    root = tmp_path / "kaggle"
    monkeypatch.delenv("KIT_WEIGHTS", raising=False)
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(root))
    (root / "input" / "human-protein-atlas-image-classification").mkdir(parents=True)  # looked into, not at
    if where == "KIT_WEIGHTS":
        monkeypatch.setenv("KIT_WEIGHTS", str(out))
        expected = out / "test_resnet" / "model.safetensors"
    else:
        folder = root / "input" / ("timm-weights" if where == "input/<slug>" else "datasets/tester/timm-weights")
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(out, target_is_directory=True)
        expected = folder / "test_resnet" / "model.safetensors"
    model, note = create_model("test_resnet", 4, 28, pretrained="auto")
    assert note == f"weights from {expected} (a `kit weights` folder)"
    assert backbone_matches(model, served)
    first = model.backbone.state_dict()["conv1.0.weight"]
    assert first.shape[1] == 4 and not torch.equal(first[:, :3], torch.zeros_like(first[:, :3]))


def test_weights_refusals_are_one_line(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    run = CliRunner().invoke
    assert "not a timm model name" in error_line(run(main, ["weights", "no_such_net", "--out", str(tmp_path / "w")]))
    assert "not a kit weights folder" in error_line(run(main, ["weights", "test_resnet", "--out",
                                                               str(tmp_path / "taken")]))
    assert not (tmp_path / "w").exists()
