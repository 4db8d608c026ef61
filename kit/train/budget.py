"""Training within a time budget: `--time-limit`, `--checkpoint-every`, SIGTERM/SIGINT, and mid-epoch resume.

A Kaggle session ends at its limit wherever the run is. With `--time-limit 8h30m` the run measures what a
training step, an epoch's end (validation, SWA, checkpoint) and the final prediction cost, and before each
optimizer step asks whether the step (and the epoch's end, when it is next) still fits, keeping room to write
`last.pt`. When it does not, it writes an exact mid-epoch `last.pt` and stops with `STOPPED_EXIT_CODE` and the
line `stopped at epoch E/N (step S) after T to stay within --time-limit; run the same command with --resume`.
Prediction (OOF + test TTA) is never cut short: it starts only if the estimate (a timed forward pass over a
few validation batches, times the images and TTA views) fits in what is left, else the run stops there and
`--resume` predicts; a limit too short for the prediction alone is refused before training.

SIGTERM and SIGINT (Kaggle's end of session, Ctrl-C) set a flag; the next optimizer step boundary saves and
stops the same way. `--checkpoint-every 10m` saves a mid-epoch `last.pt` (atomically) at step boundaries.

Exact resume. Checkpoints are taken only at optimizer-step boundaries (no half-accumulated gradients). A
mid-epoch `last.pt` holds `partial` = {batches consumed, the running loss sum and count}. Resuming replays the
epoch's start as `kit.train.loop.seed_epoch` makes it (the shuffling and the workers' seeds depend only on seed,
epoch and rank), then *reads* the consumed batches without training on them, and draws their mixup/cutmix
parameters, so every augmentation and mixing draw after that is the one an uninterrupted run makes; the global
random generators come back as they were at the save. Reading costs the loading time of those batches (not
their forward and backward passes). Under DDP every rank agrees to stop (the decision is all-reduced).
"""
from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import time
from collections.abc import Callable

from kit.errors import KitError

STOPPED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again"; the Kaggle training kernel records it (CONTRACTS.md)
clock = time.monotonic  # every reading of time goes through here (tests replace it with a fake clock)
PROBE_BATCHES = 2  # validation batches timed before training to estimate the prediction's cost
PREDICT_SAFETY = 1.3  # the prediction estimate is scaled by this (and FIXED_SECONDS added): never cut short
FIXED_SECONDS = 5.0  # loading best.pt, opening the stores, writing the CSVs
RECENT_STEPS = 20  # step durations remembered; the longest of them is the next step's expected cost

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value, where: str = "--time-limit") -> float:
    """'8h30m', '45m', '90s', '1h5m30s' (or a plain number of seconds) -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        match = _DURATION.match(text)
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
        elif not text or match is None:
            raise KitError(f"{where}: {value!r} is not a duration; write it as 8h30m, 45m or 90s")
        else:
            hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if not math.isfinite(seconds) or seconds <= 0:
        raise KitError(f"{where}: {value!r} is not a positive duration; write it as 8h30m, 45m or 90s")
    return seconds


def check_duration(value, where: str) -> str:
    """A kit.yaml / option value kept as written (config.yaml shows '8h30m'), once it parses."""
    parse_duration(value, where)
    return str(value)


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s', 95 -> '1m35s', 42.4 -> '42s'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class TrainingStopped(Exception):
    """The run stopped itself (time limit or signal) after writing last.pt; `kit train` exits with `exit_code`."""

    exit_code = STOPPED_EXIT_CODE


def last_payload(meta: dict, state, trainee, generator, partial: dict | None = None, augmenter=None) -> dict:
    """What last.pt holds: `meta` (settings, spec, epoch), the FoldState, every trained part's state, the random
    generators (the batch augmenter's too, see kit.train.loaders.BatchPath), and for a mid-epoch checkpoint
    `partial` (see the module docstring)."""
    from kit.train.checkpoint import rng_state

    payload = {**meta, **state.to_dict(), **trainee.state_dicts(), "rng": rng_state(generator, augmenter)}
    return {**payload, "partial": partial} if partial is not None else payload


class Budget:
    """The clock of one `kit train` command (every run it makes shares it) and what stops it.

    `limit` / `checkpoint_every`: seconds or None. A Budget without either still stops on SIGTERM/SIGINT
    while `watch_signals()` is active."""

    def __init__(self, limit: float | None = None, checkpoint_every: float | None = None,
                 started: float | None = None):
        self.limit, self.checkpoint_every = limit, checkpoint_every
        self.started = clock() if started is None else started
        self.signalled: str | None = None
        self.recent_steps: list[float] = []
        self.epoch_end: float | None = None  # longest observed epoch end (validation, SWA, save)
        self.save_cost: float | None = None  # longest observed save of last.pt
        self.predict_cost = self.validate_cost = self.swa_cost = 0.0
        self.run = None  # set by begin(): what saves last.pt and describes where the run is
        self.predicting = False  # a signal while predicting stops at once (--resume predicts again)
        self.last_tick: float | None = None  # the end of the last step (or the start of the epoch)
        self.last_save = self.started

    @classmethod
    def from_settings(cls, settings, started: float | None = None) -> Budget:
        limit = parse_duration(settings.time_limit, "--time-limit") if settings.time_limit else None
        every = (parse_duration(settings.checkpoint_every, "--checkpoint-every")
                 if settings.checkpoint_every else None)
        return cls(limit, every, started)

    def elapsed(self) -> float:
        return clock() - self.started

    # ---- signals

    @contextlib.contextmanager
    def watch_signals(self):
        """While active, SIGTERM and SIGINT ask the run to save and stop at the next step boundary; a second
        one acts as it would have without kit (Ctrl-C twice interrupts at once)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, frame):
            if self.signalled:
                for sig, old in previous.items():
                    signal.signal(sig, old)
                signal.raise_signal(signum)
                return
            self.signalled = signal.Signals(signum).name
            if self.predicting:  # no step boundary comes; last.pt already holds the trained state
                self.stop(None)

        for sig in previous:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # ---- the run

    def begin(self, run: RunHooks) -> None:
        """Before the first epoch: measure (with a limit) what prediction will cost and refuse a limit too short."""
        self.run, self.predicting = run, False
        self.recent_steps, self.epoch_end, self.last_tick = [], None, None
        if self.limit is None:
            return
        load, forward = run.probe()
        views, images = run.tta_views, run.val_images + run.test_images
        self.predict_cost = (images * (load + views * forward)) * PREDICT_SAFETY + FIXED_SECONDS
        self.validate_cost = run.val_images * (load + forward) * PREDICT_SAFETY
        self.swa_cost = run.train_images * (load + forward) * PREDICT_SAFETY if run.swa else 0.0
        left = self.limit - self.elapsed()
        if self.predict_cost + self.margin() > left:
            raise KitError(
                f"--time-limit {format_duration(self.limit)}: predicting {run.val_images} out-of-fold and "
                f"{run.test_images} test images with TTA {run.tta} ({views} views) needs about "
                f"{format_duration(self.predict_cost)}, more than the {format_duration(left)} left; nothing was "
                f"trained. Raise --time-limit or use a lighter --tta")

    def margin(self) -> float:
        """Slack kept below the limit for what is not measured (logging, the process's exit)."""
        return 2.0 + (0.005 * self.limit if self.limit else 0.0)

    def epoch(self, steps: int, accumulate: int, mixer, device, to_input=None) -> EpochTally:
        """The tally of the epoch that starts now; it skips batches a mid-epoch checkpoint already consumed."""
        tally = EpochTally(self, steps, accumulate, mixer, device, self.run.take_partial() if self.run else None,
                           to_input)
        if self.run is not None and self.run.epochs_done and tally.skip == 0:
            self.tick_epoch_end()
            self.decide(tally, at_epoch_start=True)
        self.last_tick = clock()
        return tally

    def tick_epoch_end(self) -> None:
        if self.last_tick is not None:
            spent = clock() - self.last_tick
            self.epoch_end = spent if self.epoch_end is None else max(self.epoch_end, spent)

    def expected_epoch_end(self) -> float:
        estimate = self.validate_cost + (self.swa_cost if self.run is not None and self.run.swa_next else 0.0)
        return max(self.epoch_end or 0.0, estimate) + self.expected_save()

    def expected_save(self) -> float:
        return self.save_cost if self.save_cost is not None else 2.0

    def after_step(self, tally: EpochTally, batches: int) -> None:
        """At an optimizer-step boundary (`batches` of the epoch consumed)."""
        now = clock()
        self.recent_steps = (self.recent_steps + [now - self.last_tick])[-RECENT_STEPS:]
        self.last_tick = now
        self.decide(tally, batches=batches)
        if self.checkpoint_every and now - self.last_save >= self.checkpoint_every:
            self.save(tally, batches)

    def decide(self, tally: EpochTally, batches: int = 0, at_epoch_start: bool = False) -> None:
        """Stop (save, raise TrainingStopped) if a signal came or the next stretch of work would pass the limit."""
        reason = "signal" if self.signalled else None
        if reason is None and self.limit is not None:
            # what comes before the next decision: the epoch's end once its batches are done, else one more step
            step = max(self.recent_steps) if self.recent_steps else 0.0
            next_stretch = self.expected_epoch_end() if batches >= tally.steps else step
            need = next_stretch + self.expected_save() + self.margin()
            if self.elapsed() + need > self.limit:
                reason = "time"
        if self.run.agree(reason is not None):
            if not at_epoch_start:  # at an epoch's start the epoch-end last.pt is already exact
                self.save(tally, batches)
            self.stop(tally.optimizer_steps(batches) if not at_epoch_start else None)

    def save(self, tally: EpochTally, batches: int) -> None:
        started = clock()
        self.run.save(tally.partial(batches))
        self.last_save = clock()
        spent = self.last_save - started
        self.save_cost = spent if self.save_cost is None else max(self.save_cost, spent)

    def before_predict(self) -> None:
        """Prediction starts only if it fits in what is left; else stop (last.pt holds the trained state)."""
        reason = self.signalled or (self.limit is not None
                                    and self.elapsed() + self.predict_cost + self.margin() > self.limit)
        if self.run is not None and self.run.agree(bool(reason)):
            self.stop(None)
        self.predicting = True

    def stop(self, step: int | None) -> None:
        epoch, epochs, steps_per_epoch = self.run.position()
        if step is None:
            step = steps_per_epoch
        else:
            epoch += 1  # the epoch under way
        cause = f"on {self.signalled}" if self.signalled else "to stay within --time-limit"
        if not self.predicting:
            self.run.runtime.barrier()  # rank 0 has written last.pt before any process exits (torchrun ends them all)
        raise TrainingStopped(f"stopped at epoch {epoch}/{epochs} (step {step}) after "
                              f"{format_duration(self.elapsed())} {cause}; run the same command with --resume")


class EpochTally:
    """One epoch's running loss (sum and count, on the device) and its batches, after any already consumed."""

    def __init__(self, budget: Budget | None, steps: int, accumulate: int, mixer, device, partial: dict | None,
                 to_input=None):
        import torch

        self.budget, self.steps, self.accumulate, self.mixer = budget, steps, accumulate, mixer
        self.to_input = to_input  # the batch path augments in the step: its draws are replayed with the batch
        self.total, self.count, self.skip = torch.zeros((), device=device), 0, 0
        if partial:
            self.skip, self.count = int(partial["batches"]), int(partial["count"])
            self.total = partial["total"].to(device)

    def add(self, loss, images: int) -> None:
        self.total += loss * images
        self.count += images

    def mean(self) -> float:
        return (self.total / max(self.count, 1)).item()

    def optimizer_steps(self, batches: int) -> int:
        return math.ceil(batches / self.accumulate)

    def partial(self, batches: int) -> dict:
        return {"batches": batches, "total": self.total.detach().cpu(), "count": self.count}

    def batches(self, loader):
        """(index, batch) of the batches still to train on; after each optimizer step, the budget decides."""
        for i, batch in enumerate(loader):
            if i < self.skip:  # consumed before the checkpoint: read (augmentation draws) and mixed, not trained
                images = self.to_input(batch[0]) if self.to_input is not None else batch[0].float()
                if self.mixer is not None:
                    self.mixer(images, batch[1])
                continue
            yield i, batch
            if self.budget is not None and ((i + 1) % self.accumulate == 0 or i + 1 == self.steps):
                self.budget.after_step(self, i + 1)


class RunHooks:
    """What the budget needs from one fold's run (built by `kit.train.loop.train_fold`)."""

    def __init__(self, save: Callable[[dict], None], position: Callable[[], tuple[int, int, int]], runtime,
                 probe: Callable[[], tuple[float, float]], partial: dict | None, tta: str, tta_views: int,
                 images: tuple[int, int, int], swa_from: int | None, epochs_done: Callable[[], int]):
        self.save, self.position, self.runtime, self.probe = save, position, runtime, probe
        self._partial, self.tta, self.tta_views = partial, tta, tta_views
        self.train_images, self.val_images, self.test_images = images
        self.swa = swa_from is not None
        self._swa_from, self._epochs_done = swa_from, epochs_done

    @property
    def epochs_done(self) -> int:
        return self._epochs_done()

    @property
    def swa_next(self) -> bool:
        """Whether the epoch under way ends with an SWA capture (a pass over the training images)."""
        return self._swa_from is not None and self._epochs_done() + 1 >= self._swa_from

    def take_partial(self) -> dict | None:
        partial, self._partial = self._partial, None
        return partial

    def agree(self, stop: bool) -> bool:
        """Every process stops, or none: the decision is all-reduced under DDP."""
        if self.runtime.world_size == 1:
            return stop
        return self.runtime.reduce_sum(float(stop)) > 0


def probe_prediction(model, loader, runtime, mean, std, batches: int = PROBE_BATCHES) -> tuple[float, float]:
    """(seconds to load, seconds to forward) per image, timed over the first `batches` of `loader`; the random
    generators are left as they were (the probe must not change what training draws)."""
    import torch

    from kit.data.loader import to_model_input
    from kit.train.checkpoint import rng_state, set_rng_state

    saved, was_training = rng_state(), model.training
    load = forward = 0.0
    images_seen = 0
    model.eval()
    try:
        with torch.inference_mode():
            tick = clock()
            for index, (images, _) in enumerate(loader):
                loaded = clock()
                with runtime.autocast():
                    model(to_model_input(images, runtime.device, mean, std, runtime.channels_last)).float().cpu()
                done = clock()
                load, forward = load + loaded - tick, forward + done - loaded
                images_seen += len(images)
                tick = clock()
                if index + 1 >= batches:
                    break
    finally:
        model.train(was_training)
        set_rng_state(saved)
    return (load / images_seen, forward / images_seen) if images_seen else (0.0, 0.0)


def resume_note(checkpoint: dict) -> str:
    """', 5 of 10 batches into epoch 2' for a mid-epoch last.pt, '' for one written at an epoch's end."""
    partial = checkpoint.get("partial")
    return f", {partial['batches']} batches into epoch {checkpoint['epoch'] + 1}" if partial else ""


def fold_hooks(run, trainee, state, settings, data, split, loaders, runtime, checkpoint) -> RunHooks:
    """The budget's view of one fold's run in `kit.train.loop.train_fold` (its objects, duck-typed)."""
    from kit.train.checkpoint import save_checkpoint
    from kit.train.tta import views

    steps_per_epoch = math.ceil(len(loaders.train) / settings.accumulate)

    def save(partial: dict) -> None:
        if runtime.is_main:
            meta = {"settings": settings.to_dict(), "spec": data.spec.to_dict(), "epoch": state.epoch}
            save_checkpoint(run.last, last_payload(meta, state, trainee, loaders.generator, partial, loaders.transform))

    def probe() -> tuple[float, float]:
        return probe_prediction(trainee.model, loaders.val, runtime, settings.mean, settings.std)

    shards = runtime.world_size  # under DDP each process predicts its share
    images = (len(split.train_ids) // shards, math.ceil(len(split.val_ids) / shards),
              math.ceil(len(data.test_ids()) / shards))
    swa_from = trainee.swa.first_epoch if trainee.swa is not None else None
    return RunHooks(save, lambda: (state.epoch, settings.epochs, steps_per_epoch), runtime, probe,
                    checkpoint.get("partial") if checkpoint else None, settings.tta, len(views(settings.tta)),
                    images, swa_from, lambda: state.epoch)
