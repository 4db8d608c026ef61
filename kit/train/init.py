"""`kit train --init runs/<name>`: a second training stage that starts each fold from the same fold's `best.pt`
of an earlier kit run (backbone and head), as HPA's winners fine-tuned at larger sizes.

Refused unless the earlier run fits: the same competition spec (classes, channels), the same model, and the
same fold, judged by its Ids (the earlier run's oof.csv must hold exactly this fold's validation Ids): an
earlier run made on other folds has trained on some of this fold's validation images, whose labels would then
leak into its validation score.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from kit import io
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.layout import FoldRun, fold_dir_name
from kit.train.checkpoint import load_checkpoint

SPEC_KEYS = ("classes", "channels")  # what the weights depend on; file names and slugs may differ


@dataclass
class InitWeights:
    """The earlier run's fold: its best weights, their normalisation and where they came from."""

    model: dict
    mean: list[float] | None
    std: list[float] | None
    note: str


def init_weights(init: str | Path, fold: int, model_name: str, spec: CompetitionSpec, val_ids: list[str]) -> InitWeights:
    """Read and check `<init>/fold<fold>/best.pt` for a run of `model_name` validating on `val_ids`."""
    run = FoldRun(Path(init) / fold_dir_name(fold))
    if not Path(init).is_dir():
        raise KitError(f"--init {init}: run folder not found (expected runs/<name> of an earlier `kit train`)")
    if not run.best.is_file():
        raise KitError(f"--init {init}: {run.best} not found (the earlier run has no fold {fold}, or it has not "
                       "finished an epoch)")
    checkpoint = load_checkpoint(run.best)
    theirs = checkpoint.get("spec") or {}
    ours = spec.to_dict()
    differ = [key for key in SPEC_KEYS if list(theirs.get(key, [])) != list(ours[key])]
    if differ:
        raise KitError(f"--init {init}: {run.best} was trained for another competition spec ({', '.join(differ)} "
                       f"differ: {len(theirs.get('classes', []))} classes, channels {theirs.get('channels')})")
    earlier = (checkpoint.get("settings") or {}).get("model")
    if earlier != model_name:
        raise KitError(f"--init {init}: {run.best} holds a {earlier} model, not {model_name}")
    if not run.oof.is_file():
        raise KitError(f"--init {init}: {run.oof} not found: the earlier run's fold {fold} Ids cannot be checked "
                       "(let it finish, or --resume it)")
    earlier_ids = set(io.read_csv(run.oof, "predictions file", usecols=[spec.id_column],
                                  dtype={spec.id_column: str})[spec.id_column])
    now = set(val_ids)
    if earlier_ids != now:
        leaked = len(now - earlier_ids)
        raise KitError(f"--init {init}: fold {fold} of that run validated on other Ids ({len(earlier_ids)} Ids, "
                       f"{len(earlier_ids & now)} shared with this fold's {len(now)}; it trained on {leaked} of "
                       "this fold's validation images): made on other folds, so it is refused")
    settings = checkpoint.get("settings") or {}
    return InitWeights(checkpoint["model"], settings.get("mean"), settings.get("std"),
                       f"weights from {run.best} (epoch {checkpoint.get('epoch')} of an earlier run)")


def load_init(model: torch.nn.Module, init: InitWeights, source) -> None:
    """The earlier run's weights into the new model (same architecture, head included)."""
    try:
        model.load_state_dict(init.model)
    except RuntimeError as err:
        raise KitError(f"--init {source}: its weights do not fit this model "
                       f"({str(err).splitlines()[-1].strip()[:200]}); keep --pool and the model as they were") from None
