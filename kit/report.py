"""`kit report`: pictures for people. Learning curves of a run (from history.csv), every fold of a model at
a glance, and the per-class chart of a blend (from its JSON), each as a PNG readable at a glance."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from kit import io
from kit.errors import KitError
from kit.layout import FoldRun, fold_dir_name, fold_dirs
from kit.score.metrics import Metric, history_metric, parse_metric

# history.csv's columns besides the metric's own (val_<metric> at 0.5 and val_<metric>_tuned, e.g. val_samples_f2;
# val_<metric> alone for a metric without thresholds, e.g. val_logloss)
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "seconds")
BLEND_KEYS = ("name", "method", "threshold_mode", "classes", "members", "blend")


def read_history(path: str | os.PathLike) -> tuple[pd.DataFrame, Metric]:
    """A run's history.csv and the metric its validation columns are named after."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no history.csv (is this a run folder of `kit train`?)")
    history = io.read_csv(path)
    if {"val_f1", "val_f1_tuned"} <= set(history.columns):  # written before the columns named the metric
        history = history.rename(columns={"val_f1": "val_macro_f1", "val_f1_tuned": "val_macro_f1_tuned"})
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise KitError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    metric = history_metric(list(history.columns), str(path))
    if history.empty:
        raise KitError(f"{path}: no epochs recorded yet")
    return history, metric


def monitored(history: pd.DataFrame, metric) -> pd.Series:
    """The metric's column that picks best.pt: at tuned thresholds for an F-score, the metric itself for a
    probability metric (it has no `_tuned` twin)."""
    return history[metric.column + "_tuned" if metric.needs_thresholds else metric.column]


def metric_limits(metric) -> dict:
    """The y range of a metric's axis: [0, 1] for scores, free (from 0) for losses."""
    return {"ylim": (0, 1)} if metric.higher_is_better else {"ylim": (0, None)}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, out: Path) -> Path:
    with io.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    _pyplot().close(figure)
    return out


def _epoch_ticks(axis, epochs) -> None:
    """Whole epochs on the x axis (matplotlib would label a one-epoch run 0.96, 0.98, ...)."""
    from matplotlib.ticker import MaxNLocator

    epochs = sorted(set(int(e) for e in epochs))
    if len(epochs) <= 15:
        axis.set_xticks(epochs)
    else:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_learning_curves(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Loss, the validation metric (the competition's, e.g. macro F1) and learning rate per epoch of one run
    folder -> `<run_dir>/curves.png`."""
    plt = _pyplot()
    run_dir = Path(run_dir)
    history, metric = read_history(FoldRun(run_dir).history)
    tuned = monitored(history, metric)
    out = Path(out) if out else FoldRun(run_dir).curves
    title = " / ".join(run_dir.resolve().parts[-2:])
    figure, (loss_ax, f1_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    epochs = history["epoch"]
    loss_ax.plot(epochs, history["train_loss"], "o-", label="train")
    loss_ax.plot(epochs, history["val_loss"], "o-", label="validation")
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="loss")
    loss_ax.legend()
    if metric.needs_thresholds:
        f1_ax.plot(epochs, history[metric.column], "o-", label="at 0.5")
    f1_ax.plot(epochs, tuned, "o-", label="tuned thresholds" if metric.needs_thresholds else "validation")
    best = tuned.idxmax() if metric.higher_is_better else tuned.idxmin()
    f1_ax.plot(epochs[best], tuned[best], "*", color="black", markersize=12, zorder=3,
               label=f"best: {tuned[best]:.3f} (epoch {epochs[best]})")
    f1_ax.set(title=f"Validation {metric.label}", xlabel="epoch", ylabel=metric.label, **metric_limits(metric))
    f1_ax.legend()
    lr_ax.plot(epochs, history["lr"], "o-", color="tab:gray")
    lr_ax.set(title="Learning rate (end of epoch)", xlabel="epoch", ylabel="lr")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for axis in (loss_ax, f1_ax, lr_ax):
        axis.grid(alpha=0.3)
        _epoch_ticks(axis, epochs)
    epochs_text = "1 epoch" if len(history) == 1 else f"{len(history)} epochs"
    figure.suptitle(f"{title}: {epochs_text}, {history['seconds'].sum():.0f} s")
    figure.tight_layout()
    return _save(figure, out)


def fold_runs(model_dir: str | os.PathLike) -> dict[str, Path]:
    """The fold run folders (with a history.csv) of a runs/<model> folder, by name (fold0, fold1, ...)."""
    return {fold_dir_name(k): p for k, p in fold_dirs(model_dir).items() if FoldRun(p).history.is_file()}


def plot_folds(model_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Validation loss and metric (tuned) of every fold of one model -> `<model_dir>/folds.png`."""
    plt = _pyplot()
    model_dir = Path(model_dir)
    runs = fold_runs(model_dir)
    if not runs:
        raise KitError(f"{model_dir}: no fold folders with a history.csv")
    out = Path(out) if out else model_dir / "folds.png"
    figure, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    best, epochs, metrics = [], [], set()
    for name, run in runs.items():
        history, metric = read_history(FoldRun(run).history)
        tuned = monitored(history, metric)
        metrics.add(metric)
        top = float(tuned.max() if metric.higher_is_better else tuned.min())
        line, = loss_ax.plot(history["epoch"], history["val_loss"], "o-", markersize=3, label=name)
        f1_ax.plot(history["epoch"], tuned, "o-", markersize=3, color=line.get_color(),
                   label=f"{name} (best {top:.3f})")
        best.append(top)
        epochs.extend(history["epoch"])
    if len(metrics) > 1:
        raise KitError(f"{model_dir}: its folds were scored with different metrics "
                       f"({', '.join(sorted(m.name for m in metrics))})")
    loss_ax.set(title="Validation loss", xlabel="epoch", ylabel="loss")
    f1_ax.set(title=f"Validation {metric.label}" + (", tuned thresholds" if metric.needs_thresholds else ""),
              xlabel="epoch", ylabel=metric.label, **metric_limits(metric))
    for axis in (loss_ax, f1_ax):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        _epoch_ticks(axis, epochs)
    mean = sum(best) / len(best)
    figure.suptitle(f"{model_dir.resolve().name}: {len(runs)} folds, best validation {metric.name} {min(best):.3f} to "
                    f"{max(best):.3f} (mean {mean:.3f})")
    figure.tight_layout()
    return _save(figure, out)


def read_blend_report(path: str | os.PathLike) -> dict:
    """A `kit blend` JSON report, checked for what the chart needs."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise KitError(f"{path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise KitError(f"{path}: not valid JSON ({err})") from None
    missing = [key for key in BLEND_KEYS if not isinstance(report, dict) or key not in report]
    if missing:
        raise KitError(f"{path}: not a `kit blend` report (missing {', '.join(missing)})")
    try:
        report["metric"] = parse_metric(report.get("metric"), key=f"{path}: metric").name  # before metrics: macro F1
    except KitError as err:
        raise KitError(str(err)) from None
    for entry in [report["blend"], *report["members"]]:
        if isinstance(entry, dict) and "score" not in entry and "f1" in entry:
            entry["score"] = entry["f1"]  # written before the metric was the competition's (always macro F1)
    n = len(report["classes"])
    per_class = report["blend"].get("per_class", {})
    member_key = "tuned" if parse_metric(report["metric"]).needs_thresholds else "cv"  # no thresholds: cv only
    for key in (member_key, "cv", "support"):
        if len(per_class.get(key, ())) != n:
            raise KitError(f"{path}: blend.per_class.{key} should have {n} values, one per class")
    for member in report["members"]:
        if len(member.get("per_class", {}).get(member_key, ())) != n:
            raise KitError(f"{path}: member {member.get('name')!r}: per_class.{member_key} should have {n} values")
    return report


def blend_summary(report: dict) -> str:
    """The members' and the blend's OOF scores (the competition's metric at 0.5, tuned, cross-validated) from a
    blend JSON."""
    from kit.blend.report import format_summary

    members = [(m["name"], m["score"], m.get("weight", 0.0)) for m in report["members"]]
    return format_summary(members, f"blend ({report['method']})", report["blend"]["score"], report["metric"])


def plot_blend(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """The per-class chart of a blend JSON (class names, support, each member's and the blend's OOF F1)
    -> `<name>_per_class.png` beside it (`kit blend`'s own `<name>.png` also has the threshold curves)."""
    from kit.blend.report import MANY_CLASSES, draw_per_class, per_class_axes, per_class_width

    plt = _pyplot()
    path = Path(path)
    report = read_blend_report(path)
    out = Path(out) if out else path.with_name(f"{path.stem}_per_class.png")
    classes, blend, metric = report["classes"], report["blend"], parse_metric(report["metric"])
    if not metric.needs_thresholds:
        return plot_probability_blend(report, out)
    figure = plt.figure(figsize=(per_class_width(len(classes)), 9.5 if len(classes) > MANY_CLASSES else 6.5))
    axes, histogram = per_class_axes(figure, len(classes))[:2]
    score = blend["score"]
    draw_per_class(axes, classes, blend["per_class"]["support"],
                   {m["name"]: m["per_class"]["tuned"] for m in report["members"]},
                   blend["per_class"]["tuned"], blend["per_class"]["cv"], report["method"], report["threshold_mode"],
                   metric.name, score.get("tuned"), histogram)
    figure.suptitle(f"{report['name']}: blend of {len(report['members'])}, OOF {metric.label} {score['at_0.5']:.3f} "
                    f"at 0.5, {score['tuned']:.3f} tuned, {score['cv']:.3f} cross-validated", fontweight="bold")
    figure.tight_layout()
    return _save(figure, out)


def plot_probability_blend(report: dict, out: Path) -> Path:
    """The per-class chart of a blend scored on the probabilities: each class's AUC or log loss (cross-validated),
    the axis in the metric's direction."""
    from kit.blend.report import draw_probability_classes, per_class_width

    plt = _pyplot()
    classes, blend, metric = report["classes"], report["blend"], parse_metric(report["metric"])
    figure, axes = plt.subplots(figsize=(per_class_width(len(classes)), 6.5))
    score = blend["score"]
    draw_probability_classes(axes, classes, blend["per_class"]["support"],
                             {m["name"]: m["per_class"]["cv"] for m in report["members"]}, blend["per_class"]["cv"],
                             report["method"], metric.name, score.get("cv"))
    parts = [f"{score[key]:.4f} {label}" for key, label in (("oof", "in-sample"), ("calibrated", "calibrated"),
                                                             ("cv", "cross-validated")) if score.get(key) is not None]
    figure.suptitle(f"{report['name']}: blend of {len(report['members'])}, OOF {metric.label} " + ", ".join(parts),
                    fontweight="bold")
    figure.tight_layout()
    return _save(figure, out)


def report(paths, log: Callable[[str], None] = print) -> list[Path]:
    """PNGs for each path: a run folder (curves.png), a runs/<model> folder (curves of every fold and
    folds.png), a runs root (every model in it), or a blend JSON (<name>_per_class.png; its scores are
    logged too)."""
    written = []

    def wrote(out: Path) -> None:
        written.append(out)
        log(f"wrote {out}")

    for path in map(Path, paths):
        if not path.exists():
            raise KitError(f"{path}: not found")
        if path.is_file():
            if path.suffix != ".json":
                raise KitError(f"{path}: expected a run folder or a `kit blend` JSON report")
            wrote(plot_blend(path))
            summary = read_blend_report(path)
            log(f"{path}: OOF {parse_metric(summary['metric']).label}\n{blend_summary(summary)}")
        elif FoldRun(path).history.is_file():
            wrote(plot_learning_curves(path))
        else:
            models = [path] if fold_runs(path) else [p for p in sorted(path.iterdir()) if p.is_dir() and fold_runs(p)]
            if not models:
                raise KitError(f"{path}: no history.csv in it or in its folders (expected a run folder "
                               "runs/<model>/fold<k>, a runs/<model> folder or a runs root)")
            for model in models:
                for run in fold_runs(model).values():
                    wrote(plot_learning_curves(run))
                wrote(plot_folds(model))
    return written
