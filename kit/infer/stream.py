"""Every fold model of an ensemble over a test set read once: each chunk of images is decoded once, resized
once per input size, and passed through every model (with its own normalisation, precision and TTA).

A hidden test set inside a Kaggle notebook is read once, straight from its files: no cache is looked up or
written, and the data folder may be read-only. A model sees the same batches as `kit train` / `kit predict`
gave it (the chunk is a multiple of every model's batch size where possible), so its probabilities are the
ones in its test.csv.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kit.data.loader import hwc_to_chw, to_model_input
from kit.data.reading import CompetitionData, DecodingStore, resize
from kit.errors import KitError
from kit.infer.ensemble import Ensemble
from kit.layout import BEST_CHECKPOINT
from kit.train.batch_tta import batch_tta_probabilities
from kit.train.device import Runtime, amp_dtype, check_amp, pick_device, run_precision

MAX_CHUNK = 1024  # images decoded at a time, at most (unless one model's batch is larger)


@dataclass
class FoldModel:
    member: int
    fold: int
    model: torch.nn.Module
    size: int
    batch_size: int
    mean: Sequence[float]
    std: Sequence[float]
    tta: str
    runtime: Runtime


def load_models(ensemble: Ensemble, device: str = "auto", log: Callable[[str], None] = print) -> list[FoldModel]:
    """Every member's fold checkpoints, on `device`, in the blend's member order and then fold order."""
    from kit.train.predict import load_run

    dev = pick_device(device)
    models = []
    for m, member in enumerate(ensemble.members):
        for fold in member.folds:
            model, settings, spec = load_run(member.fold_dir(fold), BEST_CHECKPOINT)
            if spec.classes != ensemble.spec.classes or spec.channels != ensemble.spec.channels:
                raise KitError(f"{member.fold_dir(fold) / BEST_CHECKPOINT}: trained for {spec.num_classes} classes / "
                               f"{spec.num_channels} channels, the blend {ensemble.source} has "
                               f"{ensemble.spec.num_classes} / {ensemble.spec.num_channels}")
            amp = run_precision(dev, settings.amp)
            check_amp(dev, amp)  # also picks cuDNN's kernels as training did (benchmark mode)
            runtime = Runtime(device=dev, dtype=amp_dtype(dev, amp), channels_last=dev.type == "cuda")
            model = runtime.prepare(model).eval()
            models.append(FoldModel(m, fold, model, settings.size, settings.batch_size, settings.mean, settings.std,
                                    settings.tta, runtime))
        log(f"{member.name}: {len(member.folds)} fold(s), {models[-1].size}px, TTA {models[-1].tta}, "
            f"{models[-1].runtime.describe()}")
    return models


class SizedImages(Dataset):
    """Each test image decoded once and resized to every size the models need: {size: C x H x W uint8}."""

    def __init__(self, store: DecodingStore, sizes: Sequence[int]):
        self.store, self.sizes = store, list(sizes)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> dict[int, torch.Tensor]:
        image = self.store.read(index)
        return {size: torch.from_numpy(hwc_to_chw(resize(image, size))) for size in self.sizes}


def _stack(items: list[dict[int, torch.Tensor]]) -> dict[int, torch.Tensor]:
    return {size: torch.stack([item[size] for item in items]) for size in items[0]}


def chunk_size(batch_sizes: Sequence[int]) -> int:
    """A multiple of every batch size (so each model's batches are the ones it predicted with before), if
    small enough; else the largest batch size."""
    common = math.lcm(*batch_sizes)
    if common <= MAX_CHUNK:
        return common * max(1, MAX_CHUNK // common // 4)
    return max(batch_sizes)


@torch.inference_mode()
def predict_models(models: Sequence[FoldModel], data: CompetitionData, ids: Sequence[str], workers: int = 0,
                   log: Callable[[str], None] = print) -> list[np.ndarray]:
    """Probabilities (rows x classes, float32, in `ids` order) of each model, reading every image once."""
    store = DecodingStore(ids, data.test_sources(), data.spec)
    store.check()
    sizes = sorted({m.size for m in models})
    chunk = chunk_size([m.batch_size for m in models])
    loader = DataLoader(SizedImages(store, sizes), batch_size=chunk, num_workers=workers, collate_fn=_stack,
                        pin_memory=models[0].runtime.device.type == "cuda")
    outputs = [np.zeros((len(ids), data.spec.num_classes), dtype=np.float32) for _ in models]
    done = 0
    for batch in loader:
        count = len(next(iter(batch.values())))
        for out, m in zip(outputs, models):
            images = batch[m.size]
            normalise = functools.partial(to_model_input, device=m.runtime.device, mean=m.mean, std=m.std,
                                          channels_last=m.runtime.channels_last)
            for start in range(0, count, m.batch_size):
                inputs = images[start:start + m.batch_size].to(m.runtime.device, non_blocking=True)  # uint8
                with m.runtime.autocast():  # every view of the batch made on the device, in one forward pass
                    probs = batch_tta_probabilities(m.model, inputs, m.tta, normalise)
                out[done + start:done + start + len(inputs)] = probs.float().cpu().numpy()
        done += count
        log(f"predicted {done}/{len(ids)} test images with {len(models)} model(s)")
    return outputs


def member_predictions(ensemble: Ensemble, models: Sequence[FoldModel], outputs: Sequence[np.ndarray]) -> np.ndarray:
    """members x rows x classes: each member's fold probabilities averaged, as `kit blend` averages test.csv."""
    rows, classes = outputs[0].shape
    stack = np.zeros((len(ensemble.members), rows, classes))
    for m, member in enumerate(ensemble.members):
        total = np.zeros((rows, classes))
        for fold in member.folds:
            index = next(i for i, fm in enumerate(models) if fm.member == m and fm.fold == fold)
            total += outputs[index].astype(np.float64)
        stack[m] = total / len(member.folds)
    return stack
