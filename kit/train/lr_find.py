"""`kit lr-find`: the learning-rate range test (Smith, 2017; as fastai's lr_find).

A throwaway copy of the run's model trains for a few hundred batches of the run's own data, loader,
augmentation, mixing, loss and freeze setting, with the learning rate rising exponentially from `start_lr`
to `end_lr`; the test stops early once the smoothed loss is `diverge` times its minimum. Two suggestions
are read off the smoothed loss: where it falls fastest (steepest descent, per unit of log lr), and one tenth
of the lr where it is lowest. Nothing is written but the PNG: no run folder, no checkpoint.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kit import io
from kit.data.reading import CompetitionData
from kit.errors import KitError
from kit.settings import Settings
from kit.train.loop import _current_lr

SMOOTHING = 0.98  # beta of the loss's exponential moving average (bias-corrected) over 200+ steps; fewer
# steps average over fewer (1 - 4/steps), or the average lags the rising lr by much of the range
# `kit train` settings the range test cannot use: it sets its own lr and validates nothing.
NOT_USED = ("epochs", "schedule", "warmup", "tta", "patience", "monitor", "ema", "swa")
SKIP_START = 0.1  # share of the first steps (the moving average's noisy start) left out of steepest descent


class _Done(Exception):
    """Raised from inside the training step when the test has seen enough."""


@dataclass
class LrFindResult:
    lrs: np.ndarray  # the head's learning rate at each recorded batch
    losses: np.ndarray  # the training loss of each batch
    smoothed: np.ndarray  # its bias-corrected exponential moving average
    steepest: float  # lr where the smoothed loss falls fastest (before its minimum)
    minimum: float  # lr where the smoothed loss is lowest
    start_lr: float
    end_lr: float
    plot: Path | None = None

    @property
    def suggestion(self) -> float:
        """The suggested --lr: a tenth of the lr at the lowest smoothed loss (the more robust of the two
        readings on noisy small-data curves; `steepest` is the bolder one), kept inside the tested range."""
        return float(np.clip(self.minimum / 10, self.lrs[0], self.lrs[-1]))

    @property
    def fell(self) -> bool:
        """Whether the loss fell at all: its lowest point lies past the first steps."""
        return self.minimum > self.lrs[min(len(self.lrs) - 1, int(SKIP_START * len(self.lrs)))]

    def summary(self) -> str:
        line = (f"suggested --lr {self.suggestion:.2e} (minimum {self.minimum:.2e} / 10); steepest descent at "
                f"{self.steepest:.2e}; {len(self.lrs)} steps from {self.lrs[0]:.1e} to {self.lrs[-1]:.1e}")
        if not self.fell:
            line += ("\nwarning: the loss was lowest in the first steps and never fell; the suggestion means little "
                     "(try a higher --start-lr, more --steps, or --no-prior-bias to see the head learn)")
        return line


class _RangeRecorder:
    """Wraps the run's loss: records each batch's loss and the lr it was taken at, and ends the test."""

    def __init__(self, loss_fn, optimizer, steps: int, diverge: float):
        self.loss_fn, self.optimizer, self.steps, self.diverge = loss_fn, optimizer, steps, diverge
        self.lrs, self.losses, self.smoothed = [], [], []
        self.beta = float(np.clip(1 - 4 / steps, 0.8, SMOOTHING))
        self._average = 0.0

    def __call__(self, logits, targets):
        loss = self.loss_fn(logits, targets)
        value = float(loss.detach())
        self.lrs.append(_current_lr(self.optimizer))
        self.losses.append(value)
        if not math.isfinite(value):
            raise _Done
        self._average = self.beta * self._average + (1 - self.beta) * value
        self.smoothed.append(self._average / (1 - self.beta ** len(self.losses)))
        warm = len(self.smoothed) > max(10, SKIP_START * self.steps)
        if len(self.losses) >= self.steps or warm and self.smoothed[-1] > self.diverge * min(self.smoothed):
            raise _Done
        return loss


def suggestions(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(steepest descent lr, lr of the lowest smoothed loss). Steepest is looked for before the minimum, as
    the slope over a window of about a twentieth of the steps on each side (neighbouring steps are too noisy)."""
    lowest = int(np.nanargmin(smoothed))
    start = min(int(SKIP_START * len(smoothed)), lowest)
    if lowest - start < 2:
        return float(lrs[lowest]), float(lrs[lowest])
    log_lr = np.log10(lrs)
    half = max(1, len(smoothed) // 20)
    points = np.arange(start, lowest + 1)
    before, after = np.maximum(points - half, 0), np.minimum(points + half, lowest)
    slope = (smoothed[after] - smoothed[before]) / np.maximum(log_lr[after] - log_lr[before], 1e-12)
    return float(lrs[points[int(np.argmin(slope))]]), float(lrs[lowest])


def find_lr(settings: Settings, data: CompetitionData, start_lr: float = 1e-7, end_lr: float = 10.0,
            steps: int = 200, diverge: float = 4.0, out: str | Path | None = None, runtime=None,
            log: Callable[[str], None] = print) -> LrFindResult:
    """Run the range test for `settings` (its model, fold, data, loader, augmentation, loss, freeze) and
    plot it to `out` (default: lr-find-<run name>-fold<k>.png in the working folder). The backbone's lr
    keeps its ratio to the head's (--backbone-lr); with --freeze-epochs the backbone stays frozen, as in
    the run's first epochs. Returns the curve and the suggestions."""
    from kit.train.distributed import make_runtime
    from kit.train.init import init_weights
    from kit.train.loop import (
        fold_split,
        load_init,
        make_loaders,
        make_trainee,
        normalisation,
        open_fold_stores,
        seed_epoch,
        set_prior_bias,
        train_one_epoch,
    )
    from kit.train.models import build_model

    if not 0 < start_lr < end_lr:
        raise KitError(f"lr-find: need 0 < start lr < end lr, got {start_lr:g} and {end_lr:g}")
    if steps < 10:
        raise KitError(f"lr-find: need at least 10 steps, got {steps}")
    out = Path(out) if out is not None else Path(f"lr-find-{settings.run_name}-fold{settings.fold}.png")
    runtime = runtime or make_runtime(settings.device, settings.amp, settings.sync_bn)
    split = fold_split(data, settings.folds, settings.fold)
    init = init_weights(settings.init, settings.fold, settings.model, data.spec, split.val_ids) \
        if settings.init else None
    model, note = build_model(settings.replace(pretrained="none") if init else settings, data.spec)
    if init is not None:  # a second stage: the earlier run's fold, as `kit train --init` starts it
        load_init(model, init, settings.init)
        note = init.note
        if settings.mean is None and init.mean is not None:
            settings = settings.replace(mean=init.mean, std=init.std)
    train_store, val_store = open_fold_stores(data, settings, split)
    mean, std = normalisation(settings, None, train_store, data.spec.num_channels)
    settings = settings.replace(mean=mean, std=std, ema=0.0, swa=0)  # averaged copies play no part here
    if settings.prior_bias and init is None:
        set_prior_bias(model, split.train_targets)
    model = runtime.prepare(model)
    loaders = make_loaders(settings, split, train_store, val_store, runtime)
    total = math.ceil(steps / settings.accumulate)  # optimizer steps over the test
    trainee = make_trainee(model, settings, split, total, runtime)
    optimizer = trainee.optimizer
    for group in optimizer.param_groups:  # each group starts at start_lr scaled as its peak is to the head's
        group["lr"] = group["initial_lr"] = start_lr * group["initial_lr"] / settings.head_lr
    growth = (end_lr / start_lr) ** (1 / max(total - 1, 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: growth ** min(step, total - 1))
    recorder = _RangeRecorder(trainee.loss_fn, optimizer, steps, diverge)
    frozen = settings.freeze_epochs > 0
    trainee.freeze(frozen, runtime)
    log(f"lr-find {settings.model} fold {settings.fold}: {len(split.train_ids)} train images, {settings.size}px, "
        f"{runtime.describe()}; {note}; lr {start_lr:.1e} -> {end_lr:.1e} over {steps} batches"
        + (" (backbone frozen, as in --freeze-epochs)" if frozen else ""))
    try:
        for epoch in range(steps):  # as many passes over the loader as the steps need
            seed_epoch(settings.seed, epoch, loaders.generator, loaders.transform, runtime.rank, trainee.mixer)
            train_one_epoch(model, loaders.train, optimizer, scheduler, recorder, runtime, trainee.scaler,
                            mean, std, settings.accumulate, settings.clip_grad, None, frozen, trainee.wrapped,
                            f"lr-find epoch {epoch + 1}", settings.progress, trainee.mixer,
                            to_input=loaders.to_input)
    except _Done:
        pass
    if len(recorder.smoothed) < 3:
        raise KitError(f"lr-find: the loss was not finite from the first steps (lr {start_lr:.1e}); "
                       f"try a lower start lr")
    lrs = np.asarray(recorder.lrs[:len(recorder.smoothed)])
    smoothed = np.asarray(recorder.smoothed)
    steepest, minimum = suggestions(lrs, smoothed)
    result = LrFindResult(lrs, np.asarray(recorder.losses[:len(smoothed)]), smoothed, steepest, minimum,
                          start_lr, end_lr)
    result.plot = plot_lr_find(result, out, f"{settings.model} fold {settings.fold}")
    return result


def plot_lr_find(result: LrFindResult, out: str | Path, title: str = "") -> Path:
    """Smoothed loss against lr (log scale), the raw losses faint, both suggestions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result.lrs, result.losses, color="0.8", linewidth=0.8, label="loss per batch")
    ax.plot(result.lrs, result.smoothed, color="C0", linewidth=2, label="smoothed loss")
    for lr, colour, name in ((result.steepest, "C2", "steepest descent"),
                             (result.suggestion, "C3", "minimum / 10 (suggested)")):
        y = float(np.interp(np.log(lr), np.log(result.lrs), result.smoothed))
        ax.axvline(lr, color=colour, linestyle="--", linewidth=1)
        ax.plot([lr], [y], "o", color=colour, label=f"{name}: {lr:.1e}")
    ax.set_xscale("log")
    low = float(np.nanmin(result.smoothed))
    high = float(np.nanmax(result.smoothed[:int(np.nanargmin(result.smoothed)) + 1]))  # the start: cut the blow-up
    margin = 0.15 * (high - low) or 0.1 * abs(low) or 0.1
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel("learning rate (head)")
    ax.set_ylabel("training loss")
    ax.set_title(f"lr range test {title}".strip())
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
