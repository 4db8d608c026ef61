"""`--amp auto` picks bf16 only on GPUs that compute it natively (compute capability 8.0+), else fp16 with a loss
scaler; `kit predict` uses the run's own --amp. No GPU here: the capability is faked and the fp16 run uses a CPU
runtime that claims fp16 (autocast left out), so the scaler's part of the step is what is checked."""
from __future__ import annotations

import contextlib

import pytest
import torch
from click.testing import CliRunner

import kit.train.loop
from kit.cli import main
from kit.data.folds import make_folds
from kit.data.reading import CompetitionData
from kit.data.spec import HPA
from kit.settings import resolve_settings
from kit.train.checkpoint import load_checkpoint
from kit.train.device import Runtime, amp_dtype

CUDA = torch.device("cuda", 0)


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device of a given compute capability, and is_bf16_supported() saying yes as it does on a T4."""
    capability = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability["value"])
    return capability


@pytest.mark.parametrize("capability, expected", [
    ((6, 0), torch.float16),   # P100
    ((7, 0), torch.float16),   # V100
    ((7, 5), torch.float16),   # T4: bf16 only emulated, though is_bf16_supported() says yes
    ((8, 0), torch.bfloat16),  # A100
    ((8, 9), torch.bfloat16),  # L4
    ((9, 0), torch.bfloat16),  # H100
])
def test_auto_is_bf16_only_where_the_gpu_computes_it(fake_gpu, capability, expected):
    fake_gpu["value"] = capability
    assert amp_dtype(CUDA, "auto") == expected
    assert amp_dtype(torch.device("cuda"), "auto") == expected  # no index: the current device's capability
    assert amp_dtype(CUDA, "fp16") == torch.float16 and amp_dtype(CUDA, "bf16") == torch.bfloat16  # as asked
    assert amp_dtype(CUDA, "off") is None and amp_dtype(torch.device("cpu"), "auto") is None


class ScalerSpy(torch.amp.GradScaler):
    """A real (enabled) GradScaler on the CPU that counts what the training step asks of it."""

    calls: list[str] = []

    def scale(self, outputs):
        ScalerSpy.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer, *args, **kwargs):
        ScalerSpy.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        ScalerSpy.calls.append("update")
        return super().update(new_scale)


class FakeFp16Runtime(Runtime):
    """What a T4 gets (fp16 + scaler), on the CPU: autocast is left out (CPU fp16 convolutions are not the point)."""

    def autocast(self):
        return contextlib.nullcontext()

    def grad_scaler(self):
        scaler = super().grad_scaler()  # the real choice: enabled only for fp16
        assert scaler.is_enabled()
        return ScalerSpy("cpu", enabled=scaler.is_enabled())


def test_an_fp16_run_steps_through_the_grad_scaler(synth_dir, tmp_path):
    folds_csv = tmp_path / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=folds_csv, k=3, seed=0)
    settings = resolve_settings(options={"model": "test_resnet", "size": 32, "batch_size": 8, "workers": 0,
                                         "epochs": 1, "tta": "none", "device": "cpu", "progress": False,
                                         "folds": str(folds_csv), "runs": str(tmp_path / "runs")})[0]
    ScalerSpy.calls = []
    runtime = FakeFp16Runtime(device=torch.device("cpu"), dtype=torch.float16)
    assert runtime.describe() == "cpu fp16"
    kit.train.loop.train_fold(settings, CompetitionData(synth_dir, HPA), runtime=runtime, log=lambda line: None)
    steps = 40 // 8  # 40 training images of fold 0, batches of 8
    assert ScalerSpy.calls == ["scale", "step", "update"] * steps
    scaler_state = load_checkpoint(tmp_path / "runs" / "test_resnet" / "fold0" / "last.pt")["scaler"]
    assert scaler_state["scale"] > 1  # an enabled scaler's state (a disabled one saves none)

    bf16 = Runtime(device=torch.device("cpu"), dtype=torch.bfloat16).grad_scaler()
    assert not bf16.is_enabled()  # bf16 and fp32 need no loss scaling


def test_predict_uses_the_runs_own_amp(synth_dir, tmp_path):
    folds_csv = tmp_path / "folds.csv"
    make_folds(CompetitionData(synth_dir, HPA).train_labels(), HPA, out=folds_csv, k=3, seed=0)
    args = ["train", "--data", str(synth_dir), "--folds", str(folds_csv), "--runs", str(tmp_path / "runs"),
            "--model", "test_resnet", "--size", "32", "--batch-size", "8", "--workers", "0", "--epochs", "1",
            "--tta", "none", "--device", "cpu", "--no-progress", "--amp", "bf16"]
    trained = CliRunner().invoke(main, args)
    assert trained.exit_code == 0, trained.output
    assert "cpu bf16" in trained.output
    run_dir = tmp_path / "runs" / "test_resnet" / "fold0"
    predicted = CliRunner().invoke(main, ["predict", str(run_dir), "--split", "test", "--out", str(tmp_path / "p"),
                                          "--workers", "0", "--device", "cpu"])
    assert predicted.exit_code == 0, predicted.output
    assert "best.pt, cpu bf16" in predicted.output  # auto would have been fp32 on the CPU
