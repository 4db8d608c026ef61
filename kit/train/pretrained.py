"""Where `--pretrained auto` finds weights without the network: a `kit weights` folder before timm's caches.

Looked for, in order: `$KIT_WEIGHTS/<model>/model.safetensors`, then the same in every attached Kaggle input
(`<root>/input/<slug>/<model>/`, and `<root>/input/datasets/<owner>/<slug>/<model>/` where Kaggle mounts
datasets so; `<root>` is `/kaggle`, or $KIT_KAGGLE_ROOT). Only named folders are looked at, never a listing of
a competition's image folders, and nothing here asks a hub (an offline hub lookup retries for about 30 s).
"""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_ENV = "KIT_WEIGHTS"
ROOT_ENV = "KIT_KAGGLE_ROOT"  # kit.deploy.notebook.ROOT_ENV
KAGGLE_ROOT = "/kaggle"
WEIGHTS_FILE = "model.safetensors"  # kit.deploy.weights.WEIGHTS_FILE


def weight_folders() -> list[Path]:
    """The folders that may hold `<model>/model.safetensors`, in the order they are searched."""
    folders = []
    if os.environ.get(WEIGHTS_ENV):
        folders.append(Path(os.environ[WEIGHTS_ENV]))
    inputs = Path(os.environ.get(ROOT_ENV) or KAGGLE_ROOT) / "input"
    try:
        attached = sorted(p for p in inputs.iterdir() if p.is_dir()) if inputs.is_dir() else []
    except OSError:
        attached = []
    for folder in attached:
        if folder.name == "datasets":  # input/datasets/<owner>/<slug>
            folders += sorted(slug for owner in folder.iterdir() if owner.is_dir() for slug in owner.iterdir()
                              if slug.is_dir())
        else:
            folders.append(folder)
    return folders


def offline_weights(name: str) -> Path | None:
    """`<folder>/<name>/model.safetensors` in the first of `weight_folders()` that holds it, else None."""
    for folder in weight_folders():
        candidate = folder / name.replace("/", "_") / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    return None
