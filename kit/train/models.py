"""The model factory: `create_model(name, ...)` over timm names and `smp:<encoder>`, one pooled multi-label head.

Every model is a `Classifier`: a backbone returning feature maps (or transformer tokens) and a `PooledHead`
(average and max pooling concatenated, dropout, linear). The backbone/head split gives freeze-then-unfreeze
and per-group learning rates.

Weights never come from a hub: from a file (`pretrained=PATH`, through timm's own adaptation of the first
conv to the competition's channel count), from a `kit weights` folder ($KIT_WEIGHTS, an attached Kaggle input:
kit.train.pretrained) or timm's local caches when they already hold them (`pretrained='auto'`), or random
(`'none'`). The returned note says which.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from kit.errors import KitError

SMP_PREFIX = "smp:"


class PooledHead(nn.Module):
    """Global pooling (timm's `SelectAdaptivePool2d`: catavgmax by default), dropout, linear."""

    def __init__(self, in_features: int, num_classes: int, pool: str = "catavgmax", dropout: float = 0.25,
                 input_fmt: str = "NCHW"):
        super().__init__()
        from timm.layers import SelectAdaptivePool2d

        self.input_fmt = input_fmt
        self.pool = SelectAdaptivePool2d(pool_type=pool, flatten=True, input_fmt=input_fmt)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features * self.pool.feat_mult(), num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 3:  # transformer tokens N x T x D: pool over the tokens
            features = features.unsqueeze(2) if self.input_fmt == "NHWC" else features.transpose(1, 2).unsqueeze(-1)
        return self.fc(self.drop(self.pool(features)))


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: PooledHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


class SmpBackbone(nn.Module):
    """A segmentation-models-pytorch encoder as a backbone: its deepest feature map."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[-1]


def check_model_name(name: str) -> None:
    """Raise KitError unless `name` is a timm model name or smp:<a segmentation-models-pytorch encoder>."""
    if name.startswith(SMP_PREFIX):
        from segmentation_models_pytorch.encoders import encoders

        encoder = name[len(SMP_PREFIX):]
        if encoder in encoders or (encoder.startswith("tu-") and _is_timm_model(encoder[3:])):
            return
        raise KitError(f"unknown model {name!r}: not a segmentation-models-pytorch encoder "
                       f"(see segmentation_models_pytorch.encoders.get_encoder_names())")
    if not _is_timm_model(name):
        raise KitError(f"unknown model {name!r}: not a timm model name (see timm.list_models()) nor smp:<encoder>")


def _is_timm_model(name: str) -> bool:
    import timm

    return timm.is_model(name)


def create_model(name: str, in_chans: int, num_classes: int, pretrained: str | os.PathLike | None = "auto",
                 pool: str = "catavgmax", dropout: float = 0.25, img_size: int | None = None,
                 drop_path: float = 0.0, drop_rate: float = 0.0) -> tuple[Classifier, str]:
    """Build `name` (a timm model name, or smp:<encoder>) for `in_chans` input channels and `num_classes`
    outputs. `pretrained`: a weight file, 'none'/None (random), or 'auto' (timm's local cache, else random).
    drop_path / drop_rate: timm's drop_path_rate (stochastic depth) and drop_rate (its own dropout), for the
    backbones that have them; a KitError names a backbone that does not.
    Returns (model, note saying which weights were used)."""
    pretrained = "none" if pretrained is None else str(pretrained)
    check_model_name(name)
    regularise = regulariser_kwargs(name, drop_path, drop_rate)
    if name.startswith(SMP_PREFIX):
        backbone, features, note = _smp_backbone(name[len(SMP_PREFIX):], in_chans, pretrained, regularise)
        fmt = "NCHW"
    else:
        backbone, note = _timm_backbone(name, in_chans, pretrained, img_size, regularise)
        features, fmt = backbone.num_features, getattr(backbone, "output_fmt", "NCHW")
        fmt = fmt if isinstance(fmt, str) else getattr(fmt, "value", "NCHW")
    from timm.layers import DropPath

    if drop_path and not any(isinstance(m, DropPath) for m in backbone.modules()):
        raise KitError(f"model {name!r} does not support drop_path: it took timm's drop_path_rate but has no "
                       f"stochastic-depth layer (use a backbone with residual blocks such as resnet, convnext, vit)")
    return Classifier(backbone, PooledHead(features, num_classes, pool, dropout, fmt)), note


def check_regularisers(name: str, drop_path: float = 0.0, drop_rate: float = 0.0) -> None:
    """KitError now, before any run starts, if `name` cannot take drop_path / drop_rate (builds it once, on CPU)."""
    if drop_path or drop_rate:
        create_model(name, 3, 1, "none", pool="avg", dropout=0.0, drop_path=drop_path, drop_rate=drop_rate)


def regulariser_kwargs(name: str, drop_path: float = 0.0, drop_rate: float = 0.0) -> dict:
    """timm keyword arguments for drop_path / drop_rate; KitError where `name`'s backbone cannot take them.

    smp's own encoders (torchvision-style resnets, ...) have neither; its tu-<timm name> encoders pass
    drop_path_rate to timm, but build features only, so timm's drop_rate (a head dropout in most models)
    would never run there."""
    kwargs = {}
    if drop_path:
        kwargs["drop_path_rate"] = drop_path
    if drop_rate:
        kwargs["drop_rate"] = drop_rate
    if not kwargs or not name.startswith(SMP_PREFIX):
        return kwargs
    encoder = name[len(SMP_PREFIX):]
    if not encoder.startswith("tu-"):
        raise KitError(f"model {name!r}: smp's own encoders support neither drop_path nor drop_rate; use the timm "
                       f"name {encoder!r} or smp:tu-{encoder} instead")
    if drop_rate:
        raise KitError(f"model {name!r}: drop_rate is timm's head dropout, which smp's feature encoders never run; "
                       f"use --dropout (the kit head's dropout) instead")
    return kwargs


def _pretrained_file(pretrained: str) -> Path | None:
    if pretrained in ("none", "auto"):
        return None
    path = Path(pretrained)
    if not path.is_file():
        raise KitError(f"--pretrained {pretrained}: file not found (give a weight file, 'none' or 'auto')")
    return path


def _timm_backbone(name: str, in_chans: int, pretrained: str, img_size: int | None,
                   regularise: dict | None = None) -> tuple[nn.Module, str]:
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as err:
        raise KitError(f"model {name!r}: {err}") from None
    kwargs = dict(in_chans=in_chans, num_classes=0, global_pool="", **(regularise or {}))
    if cfg is not None and cfg.fixed_input_size and img_size:
        kwargs["img_size"] = img_size
    file = _pretrained_file(pretrained)
    if file is not None:
        note = f"weights from {file}"
    elif pretrained == "auto":
        from kit.train.pretrained import offline_weights

        file = offline_weights(name)
        if file is not None:
            note = f"weights from {file} (a `kit weights` folder)"
        else:
            file = cached_timm_weights(cfg)
            note = f"weights from timm's local cache {file}" if file else (
                f"random init: no pretrained weights for {name} in $KIT_WEIGHTS, an attached Kaggle input or "
                "the local cache (give --pretrained FILE, or make them with `kit weights`)")
    else:
        note = "random init (--pretrained none)"
    if file is None:
        return _create_timm(name, regularise, pretrained=False, **kwargs), note
    kit_backbone = kit_checkpoint_backbone(file)
    if kit_backbone is not None:
        model = _create_timm(name, regularise, pretrained=False, **kwargs)
        load_exactly(model, kit_backbone, file, name)
        return model, (f"backbone weights from the kit checkpoint {file} (a new head; `--init runs/<name>` starts "
                       "each fold from a whole earlier run)")
    rng = torch.get_rng_state()
    reference = _create_timm(name, regularise, pretrained=False, **kwargs)  # what the same seed gives with no file
    torch.set_rng_state(rng)
    try:
        model = _create_timm(name, regularise, pretrained=True, pretrained_cfg_overlay=dict(file=str(file)), **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        raise KitError(f"{file}: cannot load as weights of {name} ({str(err).splitlines()[0][:200]})") from None
    check_filled(model, reference, file, name, lambda: _create_timm(name, regularise, pretrained=False, **kwargs))
    return model, note


def _create_timm(name: str, regularise: dict | None, **kwargs) -> nn.Module:
    import timm

    try:
        return timm.create_model(name, **kwargs)
    except TypeError as err:  # the model's constructor has no such argument
        if regularise and any(key in str(err) for key in regularise):
            names = " and ".join({"drop_path_rate": "drop_path", "drop_rate": "drop_rate"}[k] for k in regularise)
            raise KitError(f"model {name!r} does not support {names} (timm: {err})") from None
        raise


def kit_checkpoint_backbone(file: Path) -> dict[str, torch.Tensor] | None:
    """The backbone part of a kit checkpoint (`best.pt`, `last.pt`: a "model" state dict whose keys carry the
    `backbone.`/`head.` prefixes of `Classifier`), without its prefix; None for any other file."""
    if file.suffix == ".safetensors":
        return None
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, or one a safe load refuses: timm's loader says why
        return None
    model = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(model, dict) or not any(str(k).startswith("backbone.") for k in model):
        return None
    return {k[len("backbone."):]: v for k, v in model.items() if k.startswith("backbone.")}


def load_exactly(module: nn.Module, state: dict, file: Path, name: str) -> None:
    """Load `state` into `module`, every tensor of one into the other, or raise a KitError counting the gaps."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshapen:
        parts = [f"{len(missing)} of {len(own)} backbone tensors missing" + (f" (e.g. {missing[0]})" if missing else "")]
        if misshapen:
            k = misshapen[0]
            parts.append(f"{len(misshapen)} of another shape (e.g. {k}: {tuple(state[k].shape)} for "
                         f"{tuple(own[k].shape)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown to {name} (e.g. {unexpected[0]})")
        raise KitError(f"{file}: not weights of {name}: " + "; ".join(parts))
    module.load_state_dict(state)


def check_filled(model: nn.Module, reference: nn.Module, file: Path, name: str, another: Callable[[], nn.Module]) -> None:
    """After timm loaded `file`: every randomly initialised backbone parameter must have changed.

    timm skips keys it cannot match with only a warning. A parameter still equal to `reference` (the same model
    from the same seed, with no file) was not filled, unless it is one that every seed initialises alike (norm
    weights of 1, biases of 0: `another` builds a model from another seed to tell them apart)."""
    ours, before = dict(model.named_parameters()), dict(reference.named_parameters())
    same = [k for k, p in ours.items() if k in before and torch.equal(p, before[k])]
    if not same:
        return
    other = dict(another().named_parameters())
    unfilled = [k for k in same if not torch.equal(before[k], other[k])]
    if unfilled:
        raise KitError(f"{file}: left {len(unfilled)} of {len(ours)} backbone parameters of {name} unfilled "
                       f"(e.g. {unfilled[0]}): not weights of this model")


def cached_timm_weights(cfg) -> Path | None:
    """The weight file timm would download for this pretrained cfg, if a local cache already holds it.

    Looks only on disk (the Hugging Face cache, then torch hub's): offline hub lookups retry for about 30 s.
    """
    if cfg is None:
        return None
    if cfg.file and Path(cfg.file).is_file():
        return Path(cfg.file)
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            hit = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if path.is_file():
            return path
    return None


def _smp_backbone(encoder_name: str, in_chans: int, pretrained: str,
                  regularise: dict | None = None) -> tuple[nn.Module, int, str]:
    from segmentation_models_pytorch.encoders import get_encoder

    file = _pretrained_file(pretrained)
    if file is None:
        encoder = get_encoder(encoder_name, in_channels=in_chans, weights=None, **(regularise or {}))
        note = "random init (smp encoders take weights only from --pretrained FILE)" if pretrained == "auto" \
            else "random init (--pretrained none)"
        return SmpBackbone(encoder), encoder.out_channels[-1], note
    if encoder_name.startswith("tu-"):
        raise KitError(f"--pretrained FILE with smp:{encoder_name}: use the timm name {encoder_name[3:]} instead")
    from timm.models import load_state_dict

    encoder = get_encoder(encoder_name, in_channels=3, weights=None)
    try:
        state = load_state_dict(str(file), use_ema=True)
    except Exception as err:  # torch.load, safetensors and pickle raise many types
        raise KitError(f"{file}: cannot read weights ({str(err).splitlines()[0][:200]})") from None
    own = encoder.state_dict()
    state = {k: v for k, v in state.items() if k in own}  # drops the classifier of an ImageNet checkpoint
    missing = [k for k in own if k not in state]
    if missing:
        raise KitError(f"{file}: not weights of smp:{encoder_name} (missing {missing[0]} and {len(missing) - 1} more)")
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        raise KitError(f"{file}: does not fit smp:{encoder_name} ({str(err).splitlines()[-1].strip()[:200]})") from None
    encoder.set_in_channels(in_chans, pretrained=True)  # smp's first-conv adaptation, as timm does
    return SmpBackbone(encoder), encoder.out_channels[-1], f"weights from {file}"


def build_model(settings, spec) -> tuple[Classifier, str]:
    """The run's model, initialised from the run's seed (so the same settings give the same start)."""
    torch.manual_seed(settings.seed)
    return create_model(settings.model, spec.num_channels, spec.num_classes, settings.pretrained,
                        settings.pool, settings.dropout, img_size=settings.crop or settings.size,
                        drop_path=settings.drop_path, drop_rate=settings.drop_rate)
