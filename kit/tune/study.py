"""The Optuna study behind `kit tune`.

Each trial is `kit train` with the base settings (the `train:` section) and the sampled values of `tune.space`,
on each fold of `tune.folds`, written to runs/tune/<study>/trial<N>/fold<k>/. Its objective is the mean over those
folds of the best monitored value (`train.monitor`); the monitor and the metric decide the direction (val_loss
and lower-is-better metrics minimise, F-scores maximise).

Pruning: a trial reports its monitored value after every epoch at step `i * epochs + epoch` (i: the position of the
fold in `tune.folds`), so every fold's epochs are compared only with the same fold's epochs of other trials, and a
cross-validated trial can be stopped on any of its folds.

The study lives in `tune.storage` (SQLite by default): a `kit tune` run again, or several at once on one storage,
add trials to the same study until it holds `tune.trials` finished (complete or pruned) ones. Trials of a process
that was killed stay RUNNING in the storage and do not count; with an RDB storage Optuna's heartbeat marks them
failed after a minute.
"""
from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kit.errors import KitError
from kit.settings import Settings
from kit.settings.tune import Dimension

HEARTBEAT_SECONDS = 30


@dataclass
class TuneOutcome:
    study: str
    direction: str
    trials: int  # finished trials in the study (complete + pruned)
    pruned: int
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    train_section: str = ""  # the best trial as a train: section, ready to paste
    plots: dict[str, Path] = field(default_factory=dict)
    folder: Path | None = None


def direction_of(settings: Settings, metric) -> str:
    """minimize for val_loss and for metrics where lower is better; maximize otherwise."""
    if settings.monitor == "val_loss":
        return "minimize"
    return "maximize" if getattr(metric, "higher_is_better", True) else "minimize"


def make_sampler(name: str, seed: int | None):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed) if name == "random" else optuna.samplers.TPESampler(seed=seed)


def make_pruner(values: dict, direction: str):
    import optuna

    if values["pruner"] == "none":
        return optuna.pruners.NopPruner()
    if values["pruner"] == "threshold":
        bound = values["prune_threshold"]
        return optuna.pruners.ThresholdPruner(lower=bound) if direction == "maximize" \
            else optuna.pruners.ThresholdPruner(upper=bound)
    return optuna.pruners.MedianPruner(n_startup_trials=values["startup_trials"])


def storage_of(url: str):
    """An RDBStorage with a heartbeat (a killed process's trials become FAIL, not RUNNING forever)."""
    import optuna

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the heartbeat is an ExperimentalWarning of Optuna's
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                                                  grace_period=2 * HEARTBEAT_SECONDS)
        except Exception as err:  # a bad URL, an unreachable server, or another process making the tables now
            if "already exists" in str(err) and attempt < 4:
                time.sleep(1 + attempt)
                continue
            raise KitError(f"tune.storage {url!r}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def open_study(values: dict, study_name: str, direction: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage_of(values["storage"]), load_if_exists=True,
                                direction=direction, sampler=make_sampler(values["sampler"], values["seed"]),
                                pruner=make_pruner(values, direction))
    if study.direction.name.lower() != direction:
        raise KitError(f"study {study_name!r} in {values['storage']} was made to {study.direction.name.lower()}, "
                       f"this one would {direction}: choose another --study")
    return study


def suggest(trial, space: dict[str, Dimension]) -> dict:
    values = {}
    for name, dim in space.items():
        if dim.kind == "categorical":
            values[name] = trial.suggest_categorical(name, dim.choices)
        elif dim.kind == "int":
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
        else:
            values[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return values


def finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def study_folder(base: Settings, study_name: str) -> Path:
    """runs/tune/<study>/: each trial's runs (trial<N>/fold<k>/) and the plots."""
    return Path(base.runs) / "tune" / study_name


def objective_fn(base: Settings, data, space: dict[str, Dimension], folds: list[int], say: Callable[[str], None]):
    from kit.track import close_open_trackers
    from kit.train.loop import train_fold
    from kit.train.task import monitor_for

    monitor = monitor_for(base.monitor, data.spec.scorer).column

    def objective(trial):
        import optuna

        params = suggest(trial, space)
        settings = base.replace(**params, runs=str(study_folder(base, trial.study.study_name)),
                                name=f"trial{trial.number}", progress=False)
        shown = ", ".join(f"{k}={_show(v)}" for k, v in params.items())
        scores = []
        for position, fold in enumerate(folds):
            def report(epoch, _model, row, position=position, fold=fold):
                trial.report(float(row[monitor]), position * settings.epochs + epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"fold {fold} epoch {epoch + 1}: {monitor} {row[monitor]:.4f}")
            try:
                result = train_fold(settings.replace(fold=fold), data, log=lambda line: None, on_epoch_end=report)
            except optuna.TrialPruned as pruned:
                close_open_trackers("KILLED")
                say(f"trial {trial.number} ({shown}): pruned at {pruned}")
                raise
            except BaseException:
                close_open_trackers("FAILED")
                raise
            scores.append(float(result.best_score))
        trial.set_user_attr("fold_scores", dict(zip(map(str, folds), scores)))
        trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
        value = float(sum(scores) / len(scores))
        say(f"trial {trial.number} ({shown}): {monitor} {value:.4f}"
            + (f" (folds {', '.join(f'{s:.4f}' for s in scores)})" if len(scores) > 1 else ""))
        return value

    return objective


def _show(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def tune(base: Settings, data, values: dict, section: dict | None = None, device: str | None = None,
         say: Callable[[str], None] = print, report: bool = True, run_trials: bool = True) -> TuneOutcome:
    """Run trials of `values['space']` over `base` until the study holds `values['trials']` finished ones (or
    `values['timeout']` seconds pass); then (with `report`) the best trial and the plots. `section` is the config's
    `train:` section as written, which the printed best trial updates. `run_trials=False`: only the report."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from kit.train.loop import check_runs, fold_numbers

    space = values["space"] or {}
    if not space:
        raise KitError("tune.space: nothing to search; give train: settings with ranges or choices, e.g. "
                       "space: {lr: {low: 1.0e-4, high: 3.0e-3, log: true}}")
    if device is not None:
        base = base.replace(device=device)
    check_runs([base], data)
    folds = fold_numbers("all", base.folds) if values["folds"] == "all" else list(values["folds"])
    available = fold_numbers("all", base.folds)
    missing = [k for k in folds if k not in available]
    if missing:
        raise KitError(f"tune.folds: {base.folds} has no fold {', '.join(map(str, missing))} (it has "
                       f"{', '.join(map(str, available))})")
    for name, dim in space.items():  # every end of every range must make valid settings with the base
        for value in (dim.choices or [dim.low, dim.high]):
            base.replace(**{name: value})
    metric = data.spec.scorer
    direction = direction_of(base, metric)
    study_name = values["study"] or base.run_name
    study = open_study(values, study_name, direction)
    done = len(finished(study))
    if run_trials and done < values["trials"]:
        say(f"study {study_name!r} ({values['storage']}): {done} of {values['trials']} trials finished; "
            f"{direction} {'the mean of ' if len(folds) > 1 else ''}{base.monitor} on fold(s) "
            f"{', '.join(map(str, folds))}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for the heartbeat
            study.optimize(objective_fn(base, data, space, folds, say), timeout=values["timeout"],
                           callbacks=[MaxTrialsCallback(values["trials"], states=(TrialState.COMPLETE,
                                                                                  TrialState.PRUNED))],
                           catch=())
    outcome = TuneOutcome(study_name, direction, len(finished(study)),
                          len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
                          folder=study_folder(base, study_name))
    if report:
        summarise(study, outcome, section or {})
    return outcome


def summarise(study, outcome: TuneOutcome, section: dict) -> None:
    """The best trial (as a train: section) and Optuna's optimisation-history and parameter-importance plots."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return
    best = study.best_trial
    outcome.best_number, outcome.best_value, outcome.best_params = best.number, best.value, dict(best.params)
    outcome.train_section = yaml.safe_dump({"train": {**section, **best.params}}, sort_keys=False)
    outcome.plots = write_plots(study, outcome.folder, len(complete))


def write_plots(study, folder: Path, complete: int) -> dict[str, Path]:
    """history.png (optimisation history) and, from two complete trials on, importance.png (fANOVA), through
    optuna.visualization.matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    from kit import io

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    wanted = {"history": plots.plot_optimization_history}
    if complete >= 2 and len(study.best_trial.params) >= 1:
        wanted["importance"] = plots.plot_param_importances
    for name, plot in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as err:  # e.g. every trial sampled the same values
                warnings.warn(f"{name} plot not drawn: {err}", stacklevel=1)
                continue
        figure = (axes if not hasattr(axes, "figure") else axes.figure)
        figure.set_size_inches(9, 5)
        figure.tight_layout()
        out = folder / f"{name}.png"
        with io.atomic_path(out) as tmp:
            figure.savefig(tmp, dpi=110, format="png")
        plt.close(figure)
        written[name] = out
    return written
