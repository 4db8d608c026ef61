"""`kit weights MODEL... --out DIR`: timm models' pretrained weights as files, for machines without internet
(a Kaggle competition notebook): run it where the hub can be reached, upload DIR as a dataset, attach it.

    DIR/<model>/model.safetensors     the weights timm loads for `pretrained=True` (through huggingface_hub)
    DIR/<model>/pretrained_cfg.json   timm's pretrained_cfg of them (first_conv, classifier, mean, std, ...)
    DIR/weights.json                  what is in DIR (marks it: a training kernel's KIT_WEIGHTS)
    DIR/dataset-metadata.json         what `kaggle` uploads it as

`kit train --pretrained auto` finds `<model>/model.safetensors` in $KIT_WEIGHTS and in every attached
`/kaggle/input/*/` (kit.train.pretrained), and timm adapts the first conv to the competition's channels as it
does for its own downloads.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from kit.deploy.bundle import METADATA, dataset_metadata, human
from kit.errors import KitError
from kit.io import sha256_file, write_text
from kit.kaggle.publish import check_ref

MARKER = "weights.json"
WEIGHTS_FILE = "model.safetensors"
CFG_FILE = "pretrained_cfg.json"


def download_weights(models: Sequence[str], out: str | os.PathLike, *, ref: str | None = None,
                     title: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Write each model's pretrained weights and cfg into `out` (see the module docstring); models already in
    `out` are kept and listed."""
    import timm
    from safetensors.torch import save_file

    if not models:
        raise KitError("give the timm models whose weights to download: kit weights resnet34 ... --out DIR")
    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / MARKER).is_file() or not any(out.iterdir()))):
        raise KitError(f"{out}: exists and is not a kit weights folder (no {MARKER}); give a new folder")
    ref = ref or f"{os.environ.get('KAGGLE_USERNAME') or 'INSERT_OWNER'}/timm-weights"
    check_ref(ref, "dataset")
    for name in models:
        if name.startswith("smp:") or not timm.is_model(name):
            raise KitError(f"{name}: not a timm model name (see timm.list_models()); kit weights downloads timm's")
        if not timm.models.get_pretrained_cfg(name):
            raise KitError(f"{name}: timm has no pretrained weights for it (give a tagged name from "
                           "timm.list_pretrained())")
    out.mkdir(parents=True, exist_ok=True)
    listing = json.loads((out / MARKER).read_text(encoding="utf-8")) if (out / MARKER).is_file() else {"models": {}}
    for name in models:
        log(f"{name}: downloading its pretrained weights through timm")
        try:
            model = timm.create_model(name, pretrained=True)
        except KitError:
            raise
        except Exception as err:  # huggingface_hub and urllib raise many types
            raise KitError(f"{name}: cannot download its pretrained weights ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:200] if str(err) else ''}); kit weights needs the hub "
                           "(unset HF_HUB_OFFLINE)") from None
        staging = Path(tempfile.mkdtemp(prefix=f".{_folder(name)}.", suffix=".tmp", dir=out))
        try:
            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(staging / WEIGHTS_FILE))
            cfg = dict(model.pretrained_cfg)
            write_text(staging / CFG_FILE, json.dumps(cfg, indent=2, default=list) + "\n")
            target = out / _folder(name)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        file = target / WEIGHTS_FILE
        listing["models"][name] = {"folder": _folder(name), "file": f"{_folder(name)}/{WEIGHTS_FILE}",
                                   "bytes": file.stat().st_size, "sha256": sha256_file(file),
                                   "hf_hub_id": cfg.get("hf_hub_id") or "", "tag": cfg.get("tag") or ""}
        log(f"{name}: {file} ({human(file.stat().st_size)})")
    write_text(out / MARKER, json.dumps(listing, indent=2) + "\n")
    write_text(out / METADATA, json.dumps(dataset_metadata(ref, title or f"timm weights {ref.split('/')[1]}"),
                                          indent=2) + "\n")
    return out


def _folder(name: str) -> str:
    """A model's folder: its timm name (a tagged name keeps its tag: resnet34.a1_in1k)."""
    return name.replace("/", "_")


def upload_weights(path: str | os.PathLike, ref: str, *, public: bool = False, wait: float | None = None,
                   log: Callable[[str], None] = print, policy=None) -> str:
    """Upload a `kit weights` folder as dataset `ref` (created, or a new version), and wait until it is ready."""
    from kit.kaggle.client import KaggleSession
    from kit.kaggle.publish import DATASET_WAIT, upload_dataset, wait_dataset_ready

    path = Path(path)
    if not (path / MARKER).is_file():
        raise KitError(f"{path}: not a kit weights folder (no {MARKER}); write it with kit weights MODEL --out DIR")
    check_ref(ref, "dataset")
    metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    if metadata.get("id") != ref:
        write_text(path / METADATA, json.dumps({**metadata, "id": ref}, indent=2) + "\n")
    session = KaggleSession("", policy, echo=log)
    outcome = upload_dataset(session, path, ref, "kit weights", public, log)
    wait_dataset_ready(session, ref, DATASET_WAIT if wait is None else wait, echo=log)
    return outcome
