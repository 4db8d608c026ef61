"""Checkpoints: written atomically, loadable with `torch.load(..., weights_only=True)`.

Only tensors, numbers, strings, lists and dicts go in, so random-number-generator states are converted
(numpy's and Python's to integer tensors) rather than pickled as objects.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from kit.errors import KitError
from kit.io import atomic_path

FORMAT = 1


def rng_state(generator: torch.Generator | None = None, augmenter=None) -> dict:
    """torch (CPU and every CUDA device), numpy, Python, an optional loader generator's states and the batch
    augmenter's (anything with `generator_state()`, e.g. kit.train.loaders.BatchPath)."""
    np_state = np.random.get_state(legacy=False)
    version, py_state, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    if hasattr(augmenter, "generator_state"):
        state["augmenter"] = augmenter.generator_state()
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None, augmenter=None) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": "MT19937",
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"],
    })
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])
    if hasattr(augmenter, "set_generator_state") and "augmenter" in state:
        augmenter.set_generator_state(state["augmenter"])


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a kit checkpoint safely (weights_only); a missing, truncated or foreign file is one clear line."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip, pickle and unpickler errors come in many types
        raise KitError(f"{path}: not a readable checkpoint ({_load_failure(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "model" not in payload:
        raise KitError(f"{path}: not a kit checkpoint (no model state)")
    return payload


def _load_failure(err: Exception) -> str:
    """The reason inside torch.load's long messages, which mostly advise loading untrusted files unsafely."""
    text = str(err).strip()
    if "Unsupported global" in text:
        return "it holds Python objects that a safe (weights-only) load refuses; not a kit checkpoint"
    if "WeightsUnpickler error" in text or "invalid load key" in text:
        return "not a torch checkpoint file"
    first = text.split(". ")[0] if text else type(err).__name__
    return first[:160]
