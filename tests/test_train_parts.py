"""The parts under `kit train`: settings resolution, losses, augmentation, sampler, schedules, checkpoints."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kit.data.augment import build_transform
from kit.errors import KitError
from kit.settings import DEFAULT_AUGMENT, parse_loss, resolve_settings
from kit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from kit.train.device import amp_dtype, pick_device
from kit.train.distributed import make_runtime
from kit.train.loop import lr_factor, make_scheduler, param_groups
from kit.train.losses import make_loss, positive_weights, soft_f1_loss
from kit.train.sampler import balanced_weights

# ---------------------------------------------------------------- settings


def test_settings_defaults_then_config_then_options():
    section = {"epochs": 7, "lr": 3e-4, "size": 256,
               "models": ["resnet34", {"name": "densenet121", "lr": 1e-4, "size": 384}]}
    runs = resolve_settings(section, {"size": 128, "batch_size": None}, source="exp.yaml")
    assert [s.model for s in runs] == ["resnet34", "densenet121"]
    assert [s.lr for s in runs] == [3e-4, 1e-4]  # the model's own entry wins over the section
    assert [s.size for s in runs] == [128, 128]  # options win over both
    assert runs[0].epochs == 7 and runs[0].batch_size == 32  # None = option not given: config, then default
    # --model replaces the list, and still picks up a model's own entry
    (only,) = resolve_settings(section, {}, ["densenet121"])
    assert only.lr == 1e-4 and only.size == 384
    assert resolve_settings({}, {})[0].model == "resnet34"


@pytest.mark.parametrize("section,message", [
    ({"epochz": 3}, "exp.yaml: train: unknown train setting(s) epochz"),
    ({"epochs": "many"}, "exp.yaml: train: epochs: expected int, got 'many'"),
    ({"schedule": "step"}, "'step' is not one of onecycle, cosine, constant"),
    ({"loss": "bce+mse"}, "unknown loss 'mse'"),
    ({"augment": "lots"}, "train: augment: expected a list"),
    ({"freeze_epochs": 5, "epochs": 5}, "freeze_epochs must be in 0..epochs-1"),
    ({"crop": 600}, "crop must be between 1 and size"),
    ({"models": [{"lr": 1}]}, "needs a name"),
    ({"augment": [{"name": "HorizontalFlip", "bogus": 3}]}, "exp.yaml: train.augment[0]: HorizontalFlip: unknown "
                                                             "parameter(s) bogus"),
    ({"augment": [{"name": "Flipz"}]}, "exp.yaml: train.augment[0]: unknown albumentations transform 'Flipz'"),
])
def test_bad_settings_are_one_clear_line(section, message):
    with pytest.raises(KitError) as err:
        resolve_settings(section, {}, source="exp.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_losses_parse_as_weighted_sums():
    assert parse_loss("bce") == {"bce": 1.0}
    assert parse_loss("bce + 0.5*soft_f1") == {"bce": 1.0, "soft_f1": 0.5}
    assert parse_loss({"focal": 2}) == {"focal": 2.0}
    (settings,) = resolve_settings({"augment": "none", "loss": "focal+soft_f1"})
    assert settings.augment == [] and settings.loss == {"focal": 1.0, "soft_f1": 1.0}
    assert resolve_settings({})[0].augment == DEFAULT_AUGMENT


# ---------------------------------------------------------------- losses


def test_loss_terms():
    torch.manual_seed(0)
    logits, targets = torch.randn(16, 5), (torch.rand(16, 5) > 0.7).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    assert torch.allclose(make_loss({"bce": 1})(logits, targets), bce)
    focal0 = make_loss({"focal": 1}, gamma=0.0)(logits, targets)
    assert torch.allclose(focal0, bce, atol=1e-6)  # gamma 0 is BCE
    assert make_loss({"focal": 1}, gamma=2.0)(logits, targets) < bce  # focusing only shrinks
    combined = make_loss({"bce": 1, "soft_f1": 0.5})(logits, targets)
    assert torch.allclose(combined, bce + 0.5 * soft_f1_loss(logits, targets))
    perfect = (targets * 40 - 20)  # confident and right
    assert soft_f1_loss(perfect, targets) < 1e-4 and soft_f1_loss(-perfect, targets) > 0.999


def test_positive_weights_from_frequencies():
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    assert positive_weights(targets, max_weight=10).tolist() == [1.0, 3.0, 10.0]
    weighted = make_loss({"bce": 1}, targets, pos_weight="auto")
    assert weighted.pos_weight.tolist() == [1.0, 3.0, 10.0]


# ---------------------------------------------------------------- augmentation and sampling


def test_augmentation_pipeline_from_data_keeps_uint8_channels():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 4), dtype=np.uint8)
    transform = build_transform(DEFAULT_AUGMENT, crop=24, seed=1)
    out = transform(image=image)["image"]
    assert out.shape == (24, 24, 4) and out.dtype == np.uint8
    nested = build_transform([{"name": "OneOf", "transforms": [{"name": "Transpose"}, {"name": "RandomRotate90"}],
                               "p": 1.0}], seed=0)
    assert nested(image=image)["image"].shape == (32, 32, 4)
    assert build_transform([]) is None
    with pytest.raises(KitError, match=r"augment\[0\]: unknown albumentations transform 'Flipz'"):
        build_transform([{"name": "Flipz"}])
    with pytest.raises(KitError, match=r"augment\[0\]: Affine"):
        build_transform([{"name": "Affine", "scale": "big"}])


def test_balanced_sampler_oversamples_rare_classes():
    targets = np.zeros((100, 3), dtype=np.uint8)
    targets[:, 0] = 1
    targets[:2, 1] = 1  # a rare class on 2 images
    weights = balanced_weights(targets, power=1.0)
    assert weights[0] == weights[1] > weights[2] == weights[99]
    draws = torch.multinomial(weights, 10_000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = (draws < 2).float().mean().item()
    assert share > 0.3  # 2% of the images, drawn about half the time
    assert torch.allclose(balanced_weights(targets, power=0.0), torch.ones(100, dtype=torch.double))


# ---------------------------------------------------------------- schedules


def test_onecycle_and_cosine_shapes():
    total = 100
    onecycle = [lr_factor(s, total, "onecycle", 0.3) for s in range(total + 1)]
    assert onecycle[0] == pytest.approx(1 / 25) and max(onecycle) == pytest.approx(1.0)
    assert int(np.argmax(onecycle)) == 30 and onecycle[-1] < 1e-4
    cosine = [lr_factor(s, total, "cosine", 0.1) for s in range(total)]
    assert cosine[0] < 0.2 and max(cosine) == pytest.approx(1.0, abs=0.01) and cosine[-1] < 0.02
    assert all(lr_factor(s, total, "constant", 0.1) == 1.0 for s in range(total))


def test_backbone_group_waits_for_the_unfreeze():
    (settings,) = resolve_settings({}, {"epochs": 4, "freeze_epochs": 2, "lr": 1e-3, "backbone_lr": 1e-4,
                                        "schedule": "cosine", "warmup": 0.0})
    model = torch.nn.Module()
    model.backbone, model.head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(param_groups(model, settings))
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch=5)
    seen = []
    for _ in range(20):
        seen.append({g["role"]: g["lr"] for g in optimizer.param_groups})
        optimizer.step()
        scheduler.step()
    assert all(s["backbone"] == 0 for s in seen[:10]) and seen[10]["backbone"] == pytest.approx(1e-4)
    assert seen[0]["head"] == pytest.approx(1e-3) and seen[10]["head"] < 1e-3
    decay = {g["role"]: g["weight_decay"] for g in optimizer.param_groups if g["params"][0].ndim == 1}
    assert decay == {"backbone": 0.0, "head": 0.0}  # biases are not decayed


def test_the_backbone_learns_slower_after_a_freeze_unless_told_otherwise():
    (plain,) = resolve_settings({}, {"lr": 1e-3})
    (frozen,) = resolve_settings({}, {"lr": 1e-3, "freeze_epochs": 1})
    (told,) = resolve_settings({}, {"lr": 1e-3, "freeze_epochs": 1, "backbone_lr": 5e-4})
    assert (plain.body_lr, frozen.body_lr, told.body_lr) == (1e-3, pytest.approx(1e-4), 5e-4)


# ---------------------------------------------------------------- checkpoints and device


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(5)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "rng": rng_state(generator)})

    def draw():
        return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.standard_normal(),
                random.random(), torch.rand(2, generator=generator).tolist())

    first = draw()
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    set_rng_state(payload["rng"], generator)
    assert draw() == first


def test_checkpoint_errors(tmp_path):
    with pytest.raises(KitError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "half.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(KitError, match="half.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "half.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(KitError, match="not a kit checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("garbage")
    with pytest.raises(KitError, match=r"text.pt: not a readable checkpoint \(not a torch checkpoint file\)$"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"model": object()}, tmp_path / "pickled.pt")
    with pytest.raises(KitError, match="Python objects that a safe .weights-only. load refuses"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_device_choice_on_a_cpu_machine():
    cpu = pick_device("cpu")
    assert cpu.type == "cpu" and amp_dtype(cpu, "auto") is None and amp_dtype(cpu, "bf16") == torch.bfloat16
    runtime = make_runtime("cpu", "auto")
    assert runtime.dtype is None and not runtime.pin_memory and not runtime.channels_last and runtime.is_main
    with pytest.raises(KitError, match="not a torch device"):
        pick_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(KitError, match="CUDA is not available"):
            pick_device("cuda")
        assert pick_device("auto").type in ("cpu", "mps")
