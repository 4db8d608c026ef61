"""The model factory: timm names and smp encoders behind one interface, the pooled head, offline weights."""
from __future__ import annotations

import pytest
import safetensors.torch
import timm
import torch
from timm.models import adapt_input_conv

from kit.errors import KitError
from kit.train.models import Classifier, check_model_name, create_model

IN_CHANS, NUM_CLASSES = 4, 7


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_vit", "smp:resnet18", "smp:tu-test_resnet"])
def test_every_source_gives_a_classifier_with_the_spec_shape(name):
    model, note = create_model(name, IN_CHANS, NUM_CLASSES, pretrained="none", img_size=64)
    assert isinstance(model, Classifier) and "random" in note
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, IN_CHANS, 64, 64))
    assert out.shape == (2, NUM_CLASSES)


def test_head_concatenates_average_and_max_pooling():
    model, _ = create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained="none", dropout=0.0)
    features = model.backbone.num_features
    assert model.head.fc.in_features == 2 * features
    x = torch.randn(3, features, 2, 2)
    expected = model.head.fc(torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1))
    assert torch.allclose(model.head(x), expected, atol=1e-6)
    avg, _ = create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained="none", pool="avg")
    assert avg.head.fc.in_features == features


@pytest.mark.parametrize("name", ["resnet_nope", "smp:not_an_encoder", "smp:tu-nope"])
def test_unknown_model_is_one_clear_error(name):
    with pytest.raises(KitError, match="unknown model"):
        check_model_name(name)
    with pytest.raises(KitError, match="unknown model"):
        create_model(name, IN_CHANS, NUM_CLASSES, pretrained="none")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_file_derives_the_first_conv_from_the_3_channel_weights(tmp_path, suffix):
    torch.manual_seed(0)
    source = timm.create_model("test_resnet", pretrained=False)  # 3 channels, 1000 classes
    state = source.state_dict()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    model, note = create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained=path)
    assert str(path) in note
    first_conv = source.pretrained_cfg["first_conv"] + ".weight"
    loaded = model.backbone.state_dict()[first_conv]
    assert loaded.shape[1] == IN_CHANS
    assert torch.allclose(loaded, adapt_input_conv(IN_CHANS, state[first_conv]))
    # the rest of the backbone is the file's, not a random init
    other = "layer1.0.conv1.weight"
    assert torch.equal(model.backbone.state_dict()[other], state[other])


def test_pretrained_file_for_an_smp_encoder(tmp_path):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    encoder = smp.encoders.get_encoder("resnet18", in_channels=3, weights=None)
    state = encoder.state_dict()
    state["fc.weight"] = torch.zeros(1000, 512)  # an ImageNet checkpoint's classifier is ignored
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model, note = create_model("smp:resnet18", IN_CHANS, NUM_CLASSES, pretrained=path)
    conv = model.backbone.encoder.conv1.weight
    assert conv.shape[1] == IN_CHANS
    assert torch.allclose(conv[:, 3], state["conv1.weight"][:, 0] * 3 / 4)  # smp cycles channels, rescales


def test_pretrained_file_that_does_not_fit_is_one_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), path)
    with pytest.raises(KitError, match="cannot load as weights of test_resnet"):
        create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained=path)
    with pytest.raises(KitError, match="file not found"):
        create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained=tmp_path / "missing.pth")


def test_auto_uses_timms_local_cache_and_never_the_network(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WEIGHTS", raising=False)
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))

    def no_network(*args, **kwargs):
        raise AssertionError("went to the hub")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", no_network)
    monkeypatch.setattr("timm.models._hub.hf_hub_download", no_network)
    model, note = create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained="auto")
    assert note.startswith("random init: no pretrained weights for test_resnet in $KIT_WEIGHTS, an attached Kaggle "
                           "input or the local cache")

    # put the weights where the Hugging Face cache keeps them: auto finds and uses them
    torch.manual_seed(1)
    state = timm.create_model("test_resnet").state_dict()
    snapshot = tmp_path / "hf" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    safetensors.torch.save_file(state, str(snapshot / "model.safetensors"))
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc")
    model, note = create_model("test_resnet", IN_CHANS, NUM_CLASSES, pretrained="auto")
    assert "local cache" in note and "model.safetensors" in note
    assert torch.equal(model.backbone.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
