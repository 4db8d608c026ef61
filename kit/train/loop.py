"""`kit train`: one model on one fold -> runs/<name>/fold<k>/ (history.csv, last.pt, best.pt, oof.csv, test.csv,
config.yaml; the paths come from kit.layout).

`train_fold(settings, data)` is the whole run, told as its steps: resume or start (`resume_point`), measure the
channel statistics (`normalisation`), the epoch loop (`run_epoch`, `save_epoch`), then predict with the best
weights (`predict_with_best`). What changes from epoch to epoch is a `FoldState`; the model and what trains it
are a `Trainee`. `train_one_epoch` is the inner loop. Everything hardware- or
process-specific goes through a `kit.train.device.Runtime`, so a DDP layer passes its own.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kit import io
from kit.data.cache import open_store
from kit.data.loader import to_model_input
from kit.data.reading import CompetitionData, ImageStore
from kit.errors import KitError
from kit.layout import SPLITS, FoldRun
from kit.score.metrics import Metric
from kit.settings import Settings, run_config
from kit.track import open_tracker
from kit.train import task as scoring
from kit.train.budget import Budget, EpochTally, TrainingStopped, fold_hooks, last_payload, resume_note
from kit.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from kit.train.device import Runtime
from kit.train.distributed import make_runtime
from kit.train.init import InitWeights, init_weights, load_init  # noqa: F401 (load_init: kit.train.loop's API)
from kit.train.loaders import Loaders, make_loaders, train_path
from kit.train.losses import make_loss
from kit.train.mixing import BatchMixer, make_mixer
from kit.train.models import Classifier, build_model
from kit.train.predict import predict_batches, write_predictions
from kit.train.schedule import lr_factor, make_scheduler  # noqa: F401 (lr_factor: kit.train.loop's API)
from kit.train.split import FoldSplit, fold_numbers, fold_split  # noqa: F401 (kit.train.loop's API)
from kit.train.swa import WeightAverage
from kit.train.task import Monitor, history_columns  # history_columns: imported from here by callers

__all__ = ["FoldResult", "FoldState", "history_columns", "train_fold", "train_runs"]


STATS_IMAGES = 256  # training images read to measure the per-channel mean and std
CHECK_EVERY = 10  # steps between reads of the running loss (each read waits for the GPU)


@dataclass
class FoldResult:
    out_dir: Path
    best_epoch: int
    best_score: float
    history: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)


class NonFiniteLoss(KitError):
    pass


# ---------------------------------------------------------------- data


def channel_stats(store: ImageStore, limit: int = STATS_IMAGES) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1) over up to `limit` images spread evenly over the store."""
    picks = np.unique(np.linspace(0, len(store) - 1, min(limit, len(store))).astype(int))
    total = total_sq = None
    pixels = 0
    for index in picks:
        image = store.read(int(index)).astype(np.float64) / 255.0
        flat = image.reshape(-1, image.shape[-1])
        total = flat.sum(0) if total is None else total + flat.sum(0)
        total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
        pixels += len(flat)
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-6))
    return [round(float(v), 5) for v in mean], [round(float(v), 5) for v in std]


# ---------------------------------------------------------------- model and optimisation


def set_prior_bias(model: Classifier, targets: np.ndarray) -> None:
    """Start each class's logit at its prior (`kit.train.task.prior_bias`), so rare classes begin near it."""
    with torch.no_grad():
        model.head.fc.bias.copy_(torch.as_tensor(scoring.prior_bias(targets, model.task), dtype=model.head.fc.bias.dtype))


def param_groups(model: Classifier, settings: Settings) -> list[dict]:
    """Backbone and head groups (each split by timm into decay / no decay), tagged with their role."""
    from timm.optim import param_groups_weight_decay

    groups = []
    for role, module, lr in (("backbone", model.backbone, settings.body_lr), ("head", model.head, settings.head_lr)):
        for group in param_groups_weight_decay(module, settings.weight_decay):
            groups.append({**group, "lr": lr, "role": role})
    return groups


def set_frozen(model: Classifier, frozen: bool) -> None:
    """Freeze the backbone (no gradients); `train_one_epoch` also keeps it in eval mode so its norm
    statistics stay as they are."""
    for param in model.backbone.parameters():
        param.requires_grad_(not frozen)


def seed_epoch(seed: int, epoch: int, generator: torch.Generator, transform, rank: int = 0,
               mixer: BatchMixer | None = None) -> None:
    """Each epoch's shuffling, augmentation and mixing depend only on (seed, epoch, rank): resumed runs replay
    them exactly, and the processes of a DDP run augment differently."""
    epoch_seed = (seed * 1_000_003 + epoch + rank * 7_919) % 2**63
    generator.manual_seed(epoch_seed)
    if transform is not None:
        transform.set_random_seed(epoch_seed % 2**32)
    if mixer is not None:
        mixer.reseed(epoch_seed)


# ---------------------------------------------------------------- the loop


def train_one_epoch(model: Classifier, loader, optimizer, scheduler, loss_fn, runtime: Runtime, scaler,
                    mean, std, accumulate: int = 1, clip_grad: float = 0.0, ema=None, frozen: bool = False,
                    wrapped: torch.nn.Module | None = None, desc: str = "", progress: bool = True,
                    mixer: BatchMixer | None = None, budget: Budget | None = None,
                    to_input: Callable | None = None) -> float:
    """One pass over `loader`; returns the mean training loss. `model` is the bare model, `wrapped` what the
    step calls (DDP's wrapper, or the model itself); `to_input` makes a batch's images the model's input
    (`Loaders.to_input`; default: normalised by mean/std); `mixer` makes the mixup/cutmix/smoothed batches. A
    non-finite loss raises NonFiniteLoss. `budget` may stop the epoch at a step boundary (kit.train.budget)."""
    wrapped = wrapped or model
    model.train()
    if frozen:
        model.backbone.eval()
    steps = len(loader)
    tally = budget.epoch(steps, accumulate, mixer, runtime.device, to_input) if budget else \
        EpochTally(None, steps, accumulate, mixer, runtime.device, None, to_input)
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not (progress and runtime.is_main))
    for i, (images, targets) in tally.batches(bar):
        images = to_input(images) if to_input else to_model_input(images, runtime.device, mean, std,
                                                                  runtime.channels_last)
        targets = targets.to(runtime.device, non_blocking=True)
        if mixer is not None:
            images, targets = mixer(images, targets)
        step_now = (i + 1) % accumulate == 0 or i + 1 == steps
        with runtime.no_sync(wrapped, sync=step_now):
            with runtime.autocast():
                logits = wrapped(images)
            loss = loss_fn(logits, targets)
            scaler.scale(loss / accumulate).backward()
        if step_now:
            if clip_grad:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            if ema is not None:
                ema.update(model)
        tally.add(loss.detach(), len(images))
        if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps:
            running = runtime.reduce_mean(tally.mean())  # so that every process stops together
            if not math.isfinite(running):
                raise NonFiniteLoss(f"{desc}: the training loss became {running} by step {i + 1}")
            bar.set_postfix(loss=f"{running:.4f}")
    return runtime.reduce_mean(tally.mean())


def _current_lr(optimizer, role: str = "head") -> float:
    return next(g["lr"] for g in optimizer.param_groups if g["role"] == role)


# ---------------------------------------------------------------- the state of one fold


@dataclass
class FoldState:
    """Where the run stands after each epoch; saved in last.pt (each field under its own key) for --resume."""

    epoch: int = 0  # epochs done
    best: float | None = None  # best --monitor value so far
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the last improvement
    stopped: bool = False  # early stop (--patience)
    history: list[dict] = field(default_factory=list)  # one history_columns() row per epoch

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> FoldState:
        return cls(**{f.name: checkpoint[f.name] for f in fields(cls)})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def record(self, row: dict, monitor: Monitor, patience: int, eligible: bool = True) -> bool:
        """Add an epoch's history row; returns whether it is the best so far by its column
        `monitor`. An epoch that is not `eligible` (before the SWA window) is neither best nor counted towards
        patience."""
        self.history.append(row)
        improved = eligible and monitor.better(row[monitor.column], self.best)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = row[monitor.column], row["epoch"], 0
        elif eligible:
            self.bad_epochs += 1
        self.epoch = row["epoch"]
        self.stopped = bool(patience) and self.bad_epochs >= patience
        return improved

    def history_frame(self, metric: Metric) -> pd.DataFrame:
        return pd.DataFrame(self.history, columns=history_columns(metric))


@dataclass
class Trainee:
    """The model and what trains it. `parts()` are what last.pt keeps the state of, by name."""

    model: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: object  # torch.amp.GradScaler (a disabled one where no scaling is needed)
    loss_fn: torch.nn.Module
    ema: object | None = None  # timm ModelEmaV3
    swa: WeightAverage | None = None
    mixer: BatchMixer | None = None  # mixup / cutmix / label smoothing of the training batches
    frozen: bool | None = None  # whether the backbone is frozen now (None: not set yet)
    wrapped: torch.nn.Module | None = None  # what the step calls: DDP's wrapper of `model`, or `model`

    @property
    def eval_model(self) -> torch.nn.Module:
        """What validates, predicts and goes into best.pt: the SWA average once it holds an epoch, else the
        EMA weights where there are some, else the model."""
        if self.averaged_epochs:
            return self.swa.module
        return self.ema.module if self.ema is not None else self.model

    @property
    def averaged_epochs(self) -> int:
        return self.swa.count if self.swa is not None else 0

    def may_be_best(self, epoch: int) -> bool:
        """With SWA only the averaged weights (epochs in its window) may become best.pt."""
        return self.swa is None or self.swa.in_window(epoch)

    def parts(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler,
                "ema": self.ema.module if self.ema is not None else None, "swa": self.swa}

    def state_dicts(self) -> dict:
        return {name: None if part is None else part.state_dict() for name, part in self.parts().items()}

    def load(self, checkpoint: dict) -> None:
        for name, part in self.parts().items():
            if part is not None and checkpoint.get(name) is not None:
                part.load_state_dict(checkpoint[name])

    def freeze(self, frozen: bool, runtime: Runtime) -> None:
        if frozen != self.frozen:
            set_frozen(self.model, frozen)
            self.wrapped, self.frozen = runtime.wrap(self.model), frozen  # DDP syncs what requires gradients now


# ---------------------------------------------------------------- the steps of train_fold


def resume_point(run: FoldRun, settings: Settings, resume: bool, say: Callable[[str], None]) -> dict | None:
    """The checkpoint to continue from (with --resume and a last.pt), else None: start from the first epoch."""
    if not resume:
        return None
    if not run.last.is_file():
        say(f"{run.last} not found: starting from the first epoch")
        return None
    checkpoint = load_checkpoint(run.last)
    changed = sorted(k for k, v in checkpoint.get("settings", {}).items()
                     if k not in ("mean", "std", "progress", "workers", "device", "time_limit", "checkpoint_every") and settings.values.get(k) != v)
    if changed:
        say(f"warning: settings differ from {run.last}: {', '.join(changed)} (using the new values)")
    return checkpoint


def open_fold_stores(data: CompetitionData, settings: Settings, split: FoldSplit) -> tuple[ImageStore, ImageStore]:
    """The train and validation images of the fold; every split (test too) is checked before training."""
    train_store = open_store(data, "train", settings.size, split.train_ids)
    val_store = open_store(data, "train", settings.size, split.val_ids)
    for store in (train_store, val_store, open_store(data, "test", settings.size, data.test_ids())):
        store.check()
    return train_store, val_store


def normalisation(settings: Settings, checkpoint: dict | None, train_store: ImageStore,
                  num_channels: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std: the resumed run's, else the settings', else measured on training images."""
    if checkpoint:
        mean, std = checkpoint["settings"]["mean"], checkpoint["settings"]["std"]
    elif settings.mean is not None and settings.std is not None:
        mean, std = settings.mean, settings.std
    else:
        mean, std = channel_stats(train_store)
    if len(mean) != num_channels or len(std) != num_channels:
        raise KitError(f"mean/std have {len(mean)}/{len(std)} values for {num_channels} channels")
    return mean, std


def make_trainee(model: Classifier, settings: Settings, split: FoldSplit, steps_per_epoch: int,
                 runtime: Runtime) -> Trainee:
    optimizer = torch.optim.AdamW(param_groups(model, settings), lr=settings.lr)
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch)
    scaler = runtime.grad_scaler()
    ema = None
    if settings.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=settings.ema)
    loss_fn = make_loss(settings.loss, split.train_targets, settings.pos_weight, settings.focal_gamma,
                        settings.pos_weight_max, task=getattr(model, "task", "multilabel")).to(runtime.device)
    swa = WeightAverage(model, settings.epochs, settings.swa) if settings.swa else None
    return Trainee(model, optimizer, scheduler, scaler, loss_fn, ema, swa,
                   make_mixer(settings, split.train_targets.shape[1]))


def start_or_resume(trainee: Trainee, checkpoint: dict | None, loaders: Loaders, run: FoldRun,
                    runtime: Runtime) -> FoldState:
    """The resumed run's weights, optimizer, schedule, state and random generators; or a clean folder."""
    if checkpoint:
        trainee.load(checkpoint)
        set_rng_state(checkpoint["rng"], loaders.generator, loaders.transform)
        return FoldState.from_checkpoint(checkpoint)
    if runtime.is_main:  # what an earlier run left must not stand in for this one's (nor mix with it)
        for path in (run.best, run.history, *(run.predictions(split) for split in SPLITS)):
            path.unlink(missing_ok=True)
    return FoldState()


def run_epoch(trainee: Trainee, loaders: Loaders, split: FoldSplit, settings: Settings, epoch: int,
              runtime: Runtime, run: FoldRun, metric: Metric, budget: Budget | None = None,
              weights: np.ndarray | None = None) -> dict:
    """Train one epoch, then validate; returns its history row, scored with the competition's `metric`
    (`kit.train.task.metric_scores`; `weights`: the spec's class weights)."""
    started = time.perf_counter()
    seed_epoch(settings.seed, epoch, loaders.generator, loaders.transform, runtime.rank, trainee.mixer)
    trainee.freeze(epoch < settings.freeze_epochs, runtime)
    runtime.set_epoch(loaders.sampler, epoch)
    desc = f"{settings.run_name} fold{settings.fold} epoch {epoch + 1}/{settings.epochs}"
    try:
        train_loss = train_one_epoch(trainee.model, loaders.train, trainee.optimizer, trainee.scheduler,
                                     trainee.loss_fn, runtime, trainee.scaler, settings.mean, settings.std,
                                     settings.accumulate, settings.clip_grad, trainee.ema, trainee.frozen,
                                     trainee.wrapped, desc, settings.progress, trainee.mixer, budget,
                                     loaders.to_input)
    except NonFiniteLoss as err:
        kept = f"{run.last} keeps epoch {epoch}" if epoch else "no checkpoint was written"
        raise NonFiniteLoss(f"{err}; stopped ({kept}). Try a lower --lr or --clip-grad 1") from None
    if trainee.swa is not None and trainee.swa.in_window(epoch + 1):
        trainee.swa.capture(trainee.model, (loaders.to_input(images) for images, _ in loaders.train))
    runtime.sync_buffers(trainee.eval_model)
    probs, val_loss = predict_batches(trainee.eval_model, loaders.val, runtime, settings.mean, settings.std, "none",
                                      trainee.loss_fn)
    return {
        "epoch": epoch + 1, "lr": _current_lr(trainee.optimizer), "train_loss": train_loss, "val_loss": val_loss,
        **scoring.metric_scores(metric, split.val_targets, probs, weights),
        "seconds": round(time.perf_counter() - started, 2),
    }


def save_epoch(run: FoldRun, trainee: Trainee, state: FoldState, improved: bool, settings: Settings,
               spec, loaders: Loaders) -> None:
    """best.pt (if the epoch improved), last.pt (everything --resume needs) and history.csv."""
    meta = {"settings": settings.to_dict(), "spec": spec.to_dict(), "epoch": state.epoch}
    if improved:
        save_checkpoint(run.best, {**meta, "model": trainee.eval_model.state_dict(), "metrics": state.history[-1]})
    save_checkpoint(run.last, last_payload(meta, state, trainee, loaders.generator, augmenter=loaders.transform))
    io.write_csv(state.history_frame(spec.scorer), run.history)


def epoch_line(row: dict, settings: Settings, improved: bool, frozen: bool, metric: Metric, averaged: int = 0) -> str:
    return (f"epoch {row['epoch']}/{settings.epochs}  lr {row['lr']:.2e}  train {row['train_loss']:.4f}  "
            f"val {row['val_loss']:.4f}  {scoring.metric_text(metric, row)}  {row['seconds']:.1f}s" + ("  *best" if improved else "") + ("  (frozen backbone)" if frozen else "")
            + (f"  (SWA of {averaged} epochs)" if averaged else ""))


def predict_with_best(run: FoldRun, trainee: Trainee, data: CompetitionData, split: FoldSplit, settings: Settings,
                      state: FoldState, runtime: Runtime, say: Callable[[str], None]) -> FoldResult:
    """Load best.pt into the model and write oof.csv and test.csv with TTA."""
    runtime.barrier()  # rank 0 has written best.pt
    monitor = scoring.monitor_for(settings.monitor, data.spec.scorer).column
    if not run.best.is_file():
        raise KitError(f"{run.best}: no epoch reached a finite {monitor}; nothing to predict with")
    trainee.model.load_state_dict(load_checkpoint(run.best)["model"])
    say(f"best epoch {state.best_epoch} ({monitor} {state.best:.4f}); predicting with TTA {settings.tta}")
    files = write_predictions(trainee.model, data, run.dir, split.val_ids, settings, runtime, log=say)
    return FoldResult(run.dir, state.best_epoch, state.best, state.history_frame(data.spec.scorer), files)


# ---------------------------------------------------------------- one fold, start to end


def train_fold(settings: Settings, data: CompetitionData, out_dir: str | Path | None = None, resume: bool = False,
               runtime: Runtime | None = None, log: Callable[[str], None] = print,
               on_epoch_end: Callable[[int, Classifier, dict], None] | None = None,
               budget: Budget | None = None) -> FoldResult:
    """Train `settings.model` on fold `settings.fold`, then write TTA predictions; see the module docstring.

    resume: continue from `out_dir/last.pt` if it exists (a run that already finished only predicts again).
    on_epoch_end(epoch, model, history_row) is called after each epoch's checkpoint is written.
    budget: the command's clock (--time-limit, --checkpoint-every, signals); by default one from `settings`.
    """
    run = FoldRun(Path(out_dir)) if out_dir is not None else settings.fold_run
    split = fold_split(data, settings.folds, settings.fold)
    data.test_ids()  # a missing or broken sample submission fails now, not after training
    runtime = runtime or make_runtime(settings.device, settings.amp, settings.sync_bn)
    say = log if runtime.is_main else (lambda _message: None)

    # resume or start: the model, the fold's images, the per-channel statistics
    checkpoint = resume_point(run, settings, resume, say)
    init = None if checkpoint or not settings.init else init_weights(settings.init, settings.fold, settings.model,
                                                                      data.spec, split.val_ids)
    model, note = build_model(settings.replace(pretrained="none") if checkpoint or init else settings, data.spec)
    if init is not None:
        load_init(model, init, settings.init)
        note = init.note
        if settings.mean is None and init.mean is not None:  # the weights expect inputs scaled as before
            settings = settings.replace(mean=init.mean, std=init.std)
    train_store, val_store = open_fold_stores(data, settings, split)
    mean, std = normalisation(settings, checkpoint, train_store, data.spec.num_channels)
    settings = settings.replace(mean=mean, std=std)
    if checkpoint:
        note = f"resuming from {run.last} (epoch {checkpoint['epoch']}{resume_note(checkpoint)})"
    elif settings.prior_bias and init is None:
        set_prior_bias(model, split.train_targets)
    path = train_path(settings, runtime, train_store)
    say(f"{settings.model} fold {settings.fold}: {len(split.train_ids)} train / {len(split.val_ids)} val images, "
        f"{settings.size}px ({train_store.description}), {runtime.describe()}, "
        f"{runtime.describe_workers(settings.workers)}; {note}; {path.note}")

    model = runtime.prepare(model)
    loaders = make_loaders(settings, split, train_store, val_store, runtime, path)
    trainee = make_trainee(model, settings, split, math.ceil(len(loaders.train) / settings.accumulate), runtime)
    state = start_or_resume(trainee, checkpoint, loaders, run, runtime)
    if runtime.is_main:
        io.write_yaml(run.config, run_config(settings, data))
    budget = budget or Budget.from_settings(settings)
    budget.begin(fold_hooks(run, trainee, state, settings, data, split, loaders, runtime, checkpoint))
    tracker = open_tracker(settings, run, data, runtime, loaders, trainee, checkpoint is not None, state.epoch)
    metric = data.spec.scorer  # the epoch loop, scored with the competition's metric
    monitor = scoring.monitor_for(settings.monitor, metric)
    try:
        while state.epoch < settings.epochs and not state.stopped:
            row = run_epoch(trainee, loaders, split, settings, state.epoch, runtime, run, metric, budget,
                            scoring.class_weights(data.spec))
            improved = state.record(row, monitor, settings.patience, trainee.may_be_best(row["epoch"]))
            if runtime.is_main:
                save_epoch(run, trainee, state, improved, settings, data.spec, loaders)
            tracker.epoch(row, improved, trainee.optimizer)  # TensorBoard (and MLflow with --track mlflow)
            say(epoch_line(row, settings, improved, trainee.frozen, metric, trainee.averaged_epochs))
            if on_epoch_end is not None:
                on_epoch_end(row["epoch"] - 1, trainee.model, row)
            if state.stopped:
                say(f"early stop: no better {monitor.column} for {settings.patience} epochs")

        budget.before_predict()  # predict with the best epoch's weights, if that fits in the time left
        result = predict_with_best(run, trainee, data, split, settings, state, runtime, say)
    except TrainingStopped:
        tracker.close("KILLED")  # stopped by --time-limit or a signal, saved: --resume reopens the same run
        raise
    return tracker.finish(result, split)


def check_runs(runs: list[Settings], data: CompetitionData, fold: str | int | None = None) -> None:
    """Checks made before any training starts, over every run (see kit.train.checks)."""
    from kit.train.checks import check_plan

    check_plan(runs, data, fold)
    for settings in runs:
        scoring.check_loss(scoring.task_of(data.spec), settings.loss, settings.pos_weight)


def train_runs(runs: list[Settings], data: CompetitionData, fold: str | int | None = None, resume: bool = False,
               log: Callable[[str], None] = print, started: float | None = None) -> list[FoldResult]:
    """Every model of `runs` on `fold` (a number, 'all', or None for each run's own), one after another.

    Every run's settings (kit.train.checks) and the data folder are checked before the first run starts.
    `started`: when the command began (kit.train.budget.clock), where --time-limit counts from."""
    budget = Budget.from_settings(runs[0], started)  # one clock for the whole command
    check_runs(runs, data, fold)
    plan = [settings.replace(fold=k) for settings in runs
            for k in fold_numbers(settings.fold if fold is None else fold, settings.folds)]
    with budget.watch_signals():
        return [train_fold(settings, data, resume=resume, log=log, budget=budget) for settings in plan]
