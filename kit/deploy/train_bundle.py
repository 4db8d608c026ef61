"""`kit bundle OUT --train`: what a Kaggle training kernel needs besides the competition, as one dataset folder.

    OUT/bundle.json              marks OUT as a bundle; "kind": "train" (kit version, folds, wheels)
    OUT/dataset-metadata.json    what `kaggle` uploads it as
    OUT/kit.yaml                 the competition spec and the config's train: section (the same settings as here)
    OUT/folds/folds.csv          the folds the kernel trains on: the same as the local runs, so they blend
    OUT/wheels/                  kit's wheel and the dependency wheels a Kaggle image may lack

No members, no checkpoints. Built beside OUT and swapped in, as the inference bundle is.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from kit.config import Config
from kit.data.folds import read_folds
from kit.deploy.bundle import (
    MARKER,
    METADATA,
    Bundle,
    add_wheels,
    check_out,
    dataset_metadata,
    default_ref,
    folder_size,
    kit_version,
    staged,
)
from kit.io import write_text, write_yaml
from kit.kaggle.publish import check_ref

KIND = "train"
FOLDS_IN_BUNDLE = "folds/folds.csv"


def make_training_bundle(out: str | os.PathLike, config: Config, folds: str | os.PathLike, *, ref: str | None = None,
                         title: str | None = None, deps: Sequence[str] | None = None,
                         log: Callable[[str], None] = print) -> Bundle:
    """Write the training bundle `out` for the spec and train: section of `config` and the folds file `folds`."""
    out = Path(out)
    check_out(out)
    frame = read_folds(folds)
    ref = ref or default_ref(out)
    check_ref(ref, "dataset")
    with staged(out) as staging:
        (staging / "folds").mkdir()
        shutil.copy2(folds, staging / FOLDS_IN_BUNDLE)
        settings = {"competition": config.spec.to_dict()}
        if config.raw.get("train"):
            settings["train"] = config.section("train")
        write_yaml(staging / "kit.yaml", settings)
        wheels, deps = add_wheels(staging, deps, log)
        write_text(staging / METADATA, json.dumps(dataset_metadata(ref, title or f"kit train {ref.split('/')[1]}"),
                                                  indent=2) + "\n")
        sizes = {"wheels": folder_size(wheels), "folds": folder_size(staging / "folds"),
                 "spec": (staging / "kit.yaml").stat().st_size}
        folds_count = int(frame["fold"].nunique())
        write_text(staging / MARKER, json.dumps({
            "kit": kit_version(), "kind": KIND, "dataset": ref, "competition": config.spec.slug,
            "folds": FOLDS_IN_BUNDLE, "fold_count": folds_count, "ids": len(frame),
            "wheels": sorted(p.name for p in wheels.glob("*.whl")), "deps": deps, "sizes": sizes,
        }, indent=2) + "\n")
    log(f"folds: {folds} ({len(frame)} Ids, {folds_count} folds)")
    return Bundle(out, ref, "", sizes)
