"""Predictions: probabilities (sigmoid, or softmax for `task: multiclass`), TTA-averaged, in batches without gradients; `kit predict RUN_DIR`.

`oof.csv` and `test.csv` have the columns `Id` + the spec's class names, in class order.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit import io
from kit.data.cache import open_store
from kit.data.loader import ImageDataset, make_loader, to_model_input
from kit.data.prefetch import prefetched
from kit.data.reading import CompetitionData
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.layout import BEST_CHECKPOINT, SPLITS, FoldRun
from kit.train.batch_tta import batch_tta_probabilities
from kit.train.device import Runtime, pick_device, run_precision
from kit.train.distributed import make_runtime
from kit.train.task import probabilities


@torch.inference_mode()
def predict_batches(model: torch.nn.Module, loader, runtime: Runtime, mean: Sequence[float], std: Sequence[float],
                    tta: str = "none", loss_fn=None) -> tuple[np.ndarray, float | None]:
    """(N x C probabilities, mean loss or None). With `loss_fn` (validation) the loss is on the plain view.

    `loader` reads this process's shard (`eval_loader`); the result holds every process's rows, in order."""
    model.eval()
    outputs, loss_sum, count = [], torch.zeros((), device=runtime.device), 0
    normalise = functools.partial(to_model_input, device=runtime.device, mean=mean, std=std,
                                  channels_last=runtime.channels_last)
    for images, targets in prefetched(loader, runtime.device):
        images = images.to(runtime.device, non_blocking=True)  # uint8: the TTA views are made from it there
        with runtime.autocast():
            if loss_fn is not None:
                logits = model(normalise(images)).float()
                loss_sum += loss_fn(logits, targets.to(runtime.device, non_blocking=True)) * len(images)
                probs = probabilities(model, logits) if tta == "none" else batch_tta_probabilities(model, images, tta, normalise)
            else:
                probs = batch_tta_probabilities(model, images, tta, normalise)
        outputs.append(probs.float().cpu())
        count += len(images)
    probs = runtime.gather_rows(torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), np.float32))
    if loss_fn is None:
        return probs, None
    total = runtime.reduce_sum(count)
    return probs, runtime.reduce_sum(loss_sum.item()) / total if total else None


def eval_loader(dataset, runtime: Runtime, batch_size: int, workers: int | None = None):
    """Batches of this process's shard of `dataset`, in order (all of it in a single process)."""
    return make_loader(dataset, batch_size, sampler=runtime.eval_sampler(len(dataset)),
                       workers=runtime.default_workers() if workers is None else workers,
                       pin_memory=runtime.pin_memory)


def predict_store(model: torch.nn.Module, store, runtime: Runtime, mean, std, tta: str = "d4",
                  batch_size: int = 32, workers: int | None = None) -> np.ndarray:
    """Probabilities for every sample of an ImageStore (see `kit.data.reading.open_store`), in its order."""
    return predict_batches(model, eval_loader(ImageDataset(store), runtime, batch_size, workers), runtime,
                           mean, std, tta)[0]


def probability_frame(ids: Sequence[str], probs: np.ndarray, spec: CompetitionSpec) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(probs, dtype=np.float64), columns=list(spec.classes))
    frame.insert(0, spec.id_column, list(ids))
    return frame


def write_predictions(model, data: CompetitionData, out_dir: Path, oof_ids: Sequence[str] | None, settings,
                      runtime: Runtime, tta: str | None = None, splits: Sequence[str] = SPLITS,
                      batch_size: int | None = None, workers: int | None = None, log=print,
                      oof_data: CompetitionData | None = None) -> dict[str, Path]:
    """Write `oof.csv` (the fold's validation Ids, read from `oof_data` if given) and `test.csv` (every test Id)
    into `out_dir`."""
    tta = tta or settings.tta
    batch_size = batch_size or settings.batch_size
    workers = settings.workers if workers is None else workers
    predicted = {}
    for split in splits:  # every split first, so that a failure leaves the files as they were
        if split == "oof":
            ids, store = oof_ids, open_store(oof_data or data, "train", settings.size, oof_ids)
        else:
            ids = data.test_ids()
            store = open_store(data, "test", settings.size, ids)
        probs = predict_store(model, store, runtime, settings.mean, settings.std, tta, batch_size, workers)
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            raise KitError(f"{FoldRun(Path(out_dir)).predictions(split)}: not written: the model predicts NaN for Id "
                           f"{ids[bad[0]]} ({len(bad)} of {len(ids)} Ids); are the checkpoint's weights finite?")
        predicted[split] = ids, probs, store.description
    written = {}
    if runtime.is_main:
        for split, (ids, probs, description) in predicted.items():
            written[split] = io.write_csv(probability_frame(ids, probs, data.spec), FoldRun(Path(out_dir)).predictions(split))
            log(f"wrote {written[split]} ({len(ids)} Ids, TTA {tta}; {description})")
    return written


def load_run(run_dir: str | os.PathLike, checkpoint: str = BEST_CHECKPOINT):
    """(model with the checkpoint's weights, its Settings, its spec) from a run folder."""
    from kit.data.spec import spec_from_dict
    from kit.settings import Settings
    from kit.train.checkpoint import load_checkpoint
    from kit.train.models import build_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KitError(f"{run_dir}: run folder not found")
    path = FoldRun(run_dir).checkpoint(checkpoint)
    payload = load_checkpoint(path)
    if "settings" not in payload or "spec" not in payload:
        raise KitError(f"{path}: checkpoint has no settings; not written by kit train")
    settings = Settings(payload["settings"])
    spec = spec_from_dict(payload["spec"], path)
    model, _ = build_model(settings.replace(pretrained="none"), spec)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        reason = str(err).splitlines()[0]
        raise KitError(f"{path}: weights do not fit {settings.model} ({reason})") from None
    return model, settings, spec


def predict_run(run_dir: str | os.PathLike, data: CompetitionData | str | os.PathLike | None = None,
                tta: str | None = None,
                splits: Sequence[str] = SPLITS, out_dir: str | os.PathLike | None = None, device: str = "auto",
                batch_size: int | None = None, workers: int | None = None, checkpoint: str = BEST_CHECKPOINT,
                log=print) -> dict[str, Path]:
    """Redo a run's predictions from its checkpoint: new TTA, new data folder (test Ids from its sample
    submission), without training. `data`: a CompetitionData, a folder (read with the run's own spec), or None
    for the folder named in the run's config.yaml. The out-of-fold Ids are the run's `oof.csv` Ids, else its fold
    in folds.csv. Writes into `out_dir` (default: the run folder)."""
    from kit.data.folds import read_folds

    run_dir = Path(run_dir)
    model, settings, spec = load_run(run_dir, checkpoint)
    runtime = make_runtime(device, run_precision(pick_device(device), settings.amp))  # the run's own --amp
    trained_on = _trained_on(run_dir, spec)
    if data is None:
        if trained_on is None:
            raise KitError(f"{run_dir}: no config.yaml naming the data folder; give --data")
        data = trained_on
    elif not isinstance(data, CompetitionData):
        data = CompetitionData(Path(data), spec)
    elif data.spec.classes != spec.classes or data.spec.channels != spec.channels:
        raise KitError(f"{run_dir}: trained for {spec.num_classes} classes / {spec.num_channels} channels, "
                       f"the config describes {data.spec.num_classes} / {data.spec.num_channels}")
    data.check_root()
    oof_ids, oof_data = None, data
    if "oof" in splits:
        oof_path = FoldRun(run_dir).oof
        if oof_path.is_file():
            oof_ids = io.read_csv(oof_path, usecols=[spec.id_column], dtype=str)[spec.id_column].tolist()
        else:
            folds = read_folds(settings.folds)
            oof_ids = folds.loc[folds["fold"] == settings.fold, "Id"].tolist()
        oof_data = _holding(oof_ids, data, trained_on, run_dir)
    model = runtime.prepare(model)
    log(f"{run_dir}: {settings.model} fold {settings.fold}, {checkpoint}, {runtime.describe()}")
    return write_predictions(model, data, Path(out_dir or run_dir), oof_ids, settings, runtime, tta, splits,
                             batch_size, workers, log, oof_data=oof_data)


def _trained_on(run_dir: Path, spec: CompetitionSpec) -> CompetitionData | None:
    """The data (folder and external sources) the run's config.yaml names, if any."""
    from kit.config import load_config

    path = FoldRun(run_dir).config
    if not path.is_file():
        return None
    config = load_config(path)
    if not config.raw.get("data"):
        return None
    return replace(config.competition_data(config.base / str(config.raw["data"])), spec=spec)  # not $KIT_DATA


def _holding(ids: Sequence[str], data: CompetitionData, trained_on: CompetitionData | None,
             run_dir: Path) -> CompetitionData:
    """The folder whose train.csv holds the out-of-fold `ids`: `data` (e.g. a new test folder given with
    --data) if it does, else the one the run was trained on."""
    for candidate in (data, trained_on):
        if candidate is not None and (candidate.root / candidate.spec.train_csv).is_file() \
                and set(ids) <= set(candidate.train_labels()["Id"]):
            return candidate
    raise KitError(f"{run_dir}: the out-of-fold Ids are in the train.csv of neither {data.root} nor the folder the "
                   "run was trained on; give --split test to predict the test set only")
