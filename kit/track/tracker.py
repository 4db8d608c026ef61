"""The Tracker interface the training loop calls.

TensorBoard always writes (it is cheap: see BENCHMARKS.md); MLflow joins with `--track mlflow`. A fold that dies
before `finish` is closed at exit with status FAILED (MLflow) so no run is left RUNNING forever; one stopped by
the time budget or a signal (saved, to be resumed) is closed KILLED, and `--resume` reopens it.
"""
from __future__ import annotations

import atexit
from collections.abc import Sequence

import numpy as np

TRACKS = ("none", "mlflow")  # train.track / blend.track: what records besides TensorBoard
_OPEN: list[Tracker] = []


class Tracker:
    """Does nothing: the tracker of ranks other than 0, and the base of every real one."""

    def start(self, loaders, trainee, settings) -> None:
        """Once, when the fold starts from its first epoch (not on --resume)."""

    def epoch(self, row: dict, improved: bool, optimizer=None) -> None:
        """After each epoch: its history.csv row; `improved`: it is the best so far."""

    def best(self, epoch: int, per_class: dict[str, np.ndarray], class_names: Sequence[str]) -> None:
        """After the last epoch: the per-class metric of the best epoch's predictions (at 0.5 and tuned)."""

    def artifacts(self, run) -> None:
        """After the fold's files are written (config.yaml, history.csv, curves)."""

    def close(self, status: str = "FINISHED") -> None:
        """FINISHED; FAILED for a fold that died; KILLED for one stopped and saved (it resumes)."""

    def finish(self, result, split):
        """The end of a fold: the best epoch's per-class metric, the artifacts, close. Returns `result`."""
        metric = self.metric
        per_class = best_per_class(metric, split.val_targets, result.out_dir, self.class_names)
        if per_class:
            self.best(result.best_epoch, per_class, self.class_names)
        self.artifacts(result.out_dir)
        self.close("FINISHED")
        return result

    metric = None
    class_names: Sequence[str] = ()


class Trackers(Tracker):
    """Several trackers called as one."""

    def __init__(self, trackers: list[Tracker], metric, class_names):
        self.trackers, self.metric, self.class_names = trackers, metric, list(class_names)
        _OPEN.append(self)

    def start(self, loaders, trainee, settings) -> None:
        for tracker in self.trackers:
            tracker.start(loaders, trainee, settings)

    def epoch(self, row: dict, improved: bool, optimizer=None) -> None:
        for tracker in self.trackers:
            tracker.epoch(row, improved, optimizer)

    def best(self, epoch, per_class, class_names) -> None:
        for tracker in self.trackers:
            tracker.best(epoch, per_class, class_names)

    def artifacts(self, run) -> None:
        for tracker in self.trackers:
            tracker.artifacts(run)

    def close(self, status: str = "FINISHED") -> None:
        for tracker in self.trackers:
            tracker.close(status)
        if self in _OPEN:
            _OPEN.remove(self)


def close_open_trackers(status: str = "FAILED") -> None:
    """Close every tracker of a fold that did not finish (called at exit, and by `kit tune` after a failed trial)."""
    for tracker in list(_OPEN):
        tracker.close(status)


atexit.register(close_open_trackers)


def learning_rates(optimizer) -> dict[str, float]:
    """{role: lr} of the first parameter group of each role (head, backbone)."""
    rates = {}
    for group in getattr(optimizer, "param_groups", []):
        rates.setdefault(group.get("role", "all"), float(group["lr"]))
    return rates


def best_per_class(metric, truth: np.ndarray, run_dir, class_names) -> dict[str, np.ndarray]:
    """{'at_0.5': per-class values, 'tuned': ...} of the fold's oof.csv (the best epoch's weights, with TTA) for
    F-scores; {'probabilities': ...} for probability metrics (AUC, AP, log loss); {} without a per-class view."""
    from pathlib import Path

    from kit import io

    oof_path = Path(run_dir) / "oof.csv"
    if not hasattr(metric, "per_class") or not oof_path.is_file():
        return {}
    oof = io.read_csv(oof_path)
    probabilities = oof.drop(columns=oof.columns[0]).to_numpy(dtype=np.float64)
    if probabilities.shape != np.shape(truth):
        return {}
    if not getattr(metric, "needs_thresholds", True):  # a probability metric (AUC, log loss): no thresholds
        return {"probabilities": np.asarray(metric.per_class(truth, probabilities), dtype=np.float64)}
    thresholds, _ = metric.best_thresholds(truth, probabilities)
    return {"at_0.5": metric.per_class(truth, probabilities >= 0.5),
            "tuned": metric.per_class(truth, probabilities >= thresholds)}


