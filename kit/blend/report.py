"""What `kit blend` shows and writes: terminal tables, the JSON report, the PNG, the checked submission."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.blend.result import BlendResult, Scores
from kit.blend.state import state_entry, write_arrays
from kit.data.submission import write_submission
from kit.io import atomic_path
from kit.layout import submission_files
from kit.score.metrics import Metric, parse_metric

RAREST = 5
MANY_CLASSES = 40  # above this, per-class charts show the best and worst classes plus a histogram of all
SHOWN = 15  # best and worst classes each, when there are many


def metric_of(result: BlendResult) -> Metric:
    return result.spec.scorer


def summary_table(result: BlendResult) -> str:
    """Each member's OOF score and the blend's (the competition's metric): at 0.5, tuned, cross-validated."""
    members = [(name, result.member_scores[name].summary(), float(weight))
               for name, weight in zip(result.members, result.weights)]
    method = f"{result.method}, {result.stacker}" if result.stacker else result.method
    return format_summary(members, f"blend ({method})", result.scores.summary(), metric_of(result).name)


def score_heads(metric, keys: Sequence[str]) -> list[tuple[str, str]]:
    """(key, column head) of the scores a blend reports: at_0.5 / tuned / cv for an F-score (F1@0.5, ...), oof /
    calibrated / cv for a probability metric."""
    f_head = f"{metric.label.split()[-1]}@0.5" if metric.needs_thresholds else ""
    heads = {"at_0.5": f_head, "tuned": "tuned", "oof": "oof", "calibrated": "calib.", "cv": "cv"}
    return [(key, heads[key]) for key in heads if key in keys]


def score_legend(metric) -> str:
    """What the summary table's columns mean, for the line above it."""
    if metric.needs_thresholds:
        return "tuned = thresholds fit on all OOF rows, cv = fit on the other folds"
    return ("oof = weights fit on all OOF rows, calib. = after the temperatures fit on them, cv = both fit on the "
            "other folds" + ("; lower is better" if not metric.higher_is_better else ""))


def format_summary(members: Sequence[tuple[str, dict, float]], blend_label: str, blend: dict,
                   metric: str = "macro_f1") -> str:
    """The summary table from plain values: (name, {at_0.5, tuned, cv} or {oof, calibrated, cv}, weight) per
    member, then the blend."""
    width = max(len("member"), *(len(name) for name, _, _ in members), len(blend_label))
    heads = score_heads(parse_metric(metric), list(blend))
    lines = [f"{'member':<{width}}  " + "  ".join(f"{head:>7}" for _, head in heads) + f"  {'weight':>6}"]
    for name, values, weight in members:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{values.get(key, float('nan')):7.4f}" for key, _ in heads)
                     + f"  {weight:6.3f}")
    lines.append(f"{blend_label:<{width}}  " + "  ".join(f"{blend[key]:7.4f}" for key, _ in heads))
    return "\n".join(lines)


def shown_classes(tuned: Sequence[float], support: Sequence[int], count: int = SHOWN) -> list[int]:
    """All classes, or with many of them the `count` worst and `count` best by tuned F (among classes with OOF
    positives), worst first."""
    tuned, support = np.asarray(tuned, dtype=np.float64), np.asarray(support)
    if len(tuned) <= MANY_CLASSES:
        return list(range(len(tuned)))
    present = np.flatnonzero(support > 0)
    ordered = present[np.argsort(tuned[present], kind="stable")]
    picked = list(ordered[:count]) + [c for c in ordered[-count:] if c not in ordered[:count]]
    return [int(c) for c in picked]


def class_table(result: BlendResult) -> str:
    """The blend per class: support, threshold and OOF F-beta at 0.5, tuned and cross-validated (with many
    classes, the worst and best; every class is in the JSON)."""
    classes, scores = result.spec.classes, result.scores
    if not metric_of(result).needs_thresholds:
        return probability_class_table(result)
    shown = shown_classes(scores.tuned, result.support)
    width = max(len("class"), *(len(classes[c]) for c in shown))
    head = f"{metric_of(result).label.split()[-1]}@0.5"
    lines = [f"{'#':>3}  {'class':<{width}}  {'n':>6}  {'thresh':>6}  {head:>7}  {'tuned':>7}  {'cv':>7}"]
    for i, c in enumerate(shown):
        if len(shown) < len(classes) and i == min(SHOWN, len(shown) // 2):
            lines.append(f"... {len(classes) - len(shown)} more classes (every class is in the JSON); the best:")
        note = "  global (few positives)" if c in scores.fit.fallback else ""
        lines.append(f"{c:>3}  {classes[c]:<{width}}  {int(result.support[c]):>6}  {scores.fit.thresholds[c]:6.3f}  "
                     f"{scores.at_05[c]:7.4f}  {scores.tuned[c]:7.4f}  {scores.cv[c]:7.4f}{note}")
    return "\n".join(lines)


def probability_class_table(result: BlendResult) -> str:
    """Per class for a probability metric: support and the metric's term (AUC, log loss, ...) in-sample,
    calibrated and cross-validated; classes the metric leaves out are marked."""
    classes, metric, overall = result.spec.classes, metric_of(result), result.scores.overall
    values = {"oof": result.scores.at_05, "calibrated": result.scores.tuned, "cv": result.scores.cv}
    heads = score_heads(metric, list(overall))
    shown = shown_classes(np.nan_to_num(metric.objective(np.asarray(result.scores.cv)), nan=-np.inf), result.support)
    width = max(len("class"), *(len(classes[c]) for c in shown))
    lines = [f"{'#':>3}  {'class':<{width}}  {'n':>6}  " + "  ".join(f"{head:>7}" for _, head in heads)]
    left_out = set(metric.left_out(result.truth))
    for c in shown:
        note = "  left out (no positive or no negative)" if c in left_out else ""
        lines.append(f"{c:>3}  {classes[c]:<{width}}  {int(result.support[c]):>6}  "
                     + "  ".join(f"{values[key][c]:7.4f}" for key, _ in heads) + note)
    return "\n".join(lines)


def left_out_note(result: BlendResult) -> str | None:
    """Which classes the metric leaves out of its mean (AUC of a class with no positive or no negative)."""
    left = metric_of(result).left_out(result.truth)
    if not left:
        return None
    named = ", ".join(f"{c} {result.spec.classes[c]}" for c in left[:20]) + (", ..." if len(left) > 20 else "")
    return (f"{metric_of(result).name} leaves out {len(left)} class(es) with no positive or no negative OOF row: "
            f"{named}")


def fallback_note(result: BlendResult) -> str | None:
    fit = result.scores.fit
    if not fit.fallback:
        return None
    named = ", ".join(f"{c} {result.spec.classes[c]} ({int(result.support[c])})" for c in fit.fallback[:20])
    named += f", and {len(fit.fallback) - 20} more" if len(fit.fallback) > 20 else ""
    return (f"classes with fewer than {result.min_positives} OOF positives use the global threshold "
            f"{fit.global_threshold:.3f}: {named}")


def fold_weights_table(result: BlendResult) -> str | None:
    """For fitted methods, the weights refit in each fold: how stable the choice of members is."""
    if not result.fold_weights:
        return None
    width = max(len("weights"), *(len(name) for name in result.members))
    folds = sorted(result.fold_weights)
    lines = [f"{'weights':<{width}}  {'all':>6}  " + "  ".join(f"{f'fold{f}':>6}" for f in folds)]
    for m, name in enumerate(result.members):
        lines.append(f"{name:<{width}}  {result.weights[m]:6.3f}  "
                     + "  ".join(f"{result.fold_weights[f][m]:6.3f}" for f in folds))
    return "\n".join(lines)


def _rounded(values: np.ndarray) -> list[float | None]:
    """JSON numbers, None for NaN (a class the metric cannot score)."""
    return [None if np.isnan(v) else round(float(v), 6) for v in np.asarray(values, dtype=np.float64)]


def _scores_dict(scores: Scores) -> dict:
    score = {key: None if np.isnan(value) else round(float(value), 6) for key, value in scores.summary().items()}
    if scores.fit.mode == "none":  # a probability metric: no thresholds
        per_class = {"oof": _rounded(scores.at_05), "cv": _rounded(scores.cv)}
        if "calibrated" in score:
            per_class["calibrated"] = _rounded(scores.tuned)
        return {"score": score, "per_class": per_class}
    return {
        "score": score,
        "per_class": {"at_0.5": _rounded(scores.at_05), "tuned": _rounded(scores.tuned), "cv": _rounded(scores.cv),
                      "thresholds": [float(t) for t in scores.fit.thresholds]},
    }


def report_dict(result: BlendResult, name: str, files: dict[str, Path]) -> dict:
    classes = list(result.spec.classes)
    blend = _scores_dict(result.scores)
    blend["per_class"]["support"] = [int(n) for n in result.support]
    blend["per_class"]["test_positive_rate"] = _rounded(result.predicted.mean(axis=0))
    return {
        "name": name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": result.command,
        "method": result.method,
        "stacker": result.stacker,
        "prior": None if result.prior is None else {
            cls: float(rate) for cls, rate in zip(classes, result.prior) if not np.isnan(rate)},
        "threshold_mode": result.threshold_mode,
        "min_positives": result.min_positives,
        "no_empty": result.no_empty,
        "metric": metric_of(result).name,
        "classes": classes,
        "competition": result.spec.to_dict(),
        "members": [
            {"name": member, "path": str(path), "folds": list(result.folds), "weight": float(weight),
             **_scores_dict(result.member_scores[member])}
            for member, path, weight in zip(result.members, result.member_paths, result.weights)
        ],
        "left_out": [{"name": member, "reason": reason} for member, reason in result.left_out],
        "weights": {member: float(weight) for member, weight in zip(result.members, result.weights)},
        "fold_weights": {str(fold): {m: float(w) for m, w in zip(result.members, weights)}
                         for fold, weights in result.fold_weights.items()},
        "thresholds": ({cls: float(t) for cls, t in zip(classes, result.thresholds)}
                       if metric_of(result).needs_thresholds else None),
        "calibration": None if result.calibration is None else result.calibration.to_dict(),
        "left_out_classes": [classes[c] for c in metric_of(result).left_out(result.truth)],
        "global_threshold": result.scores.fit.global_threshold,
        "train_rates": [float(r) for r in result.train_rates],
        "state": (state_entry(result.state, files["npz"].name if "npz" in files else None)
                  if result.state is not None else None),
        "fallback_classes": [classes[c] for c in result.scores.fit.fallback],
        "blend": blend,
        "duplicates": None if result.twins is None else result.twins.to_dict(),
        "submission": {"file": str(files["csv"]), "rows": int(len(result.predicted)),
                       "empty_rows": int((~result.predicted.any(axis=1)).sum())},
        "files": {kind: str(path) for kind, path in files.items()},
    }


def rarest_classes(support: np.ndarray, count: int = RAREST) -> list[int]:
    """The `count` classes with the fewest OOF positives, among those with at least one."""
    present = [int(c) for c in np.argsort(support, kind="stable") if support[c] > 0]
    return present[:count]


def per_class_axes(figure, classes: int, rows: int = 1, ratios: Sequence[float] = ()) -> list:
    """The axes of a per-class figure: the chart, a histogram below it when there are many classes, and `rows`
    more panels (height `ratios`)."""
    many = classes > MANY_CLASSES
    heights = [3, 1.6][: 1 + many] + list(ratios)
    axes = figure.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    return list(axes) if many else [axes[0], None, *axes[1:]]


def per_class_width(classes: int) -> float:
    """A figure width that keeps each class's label readable (at most 2 x SHOWN classes are labelled)."""
    return max(10.0, 0.42 * min(classes, 2 * SHOWN if classes > MANY_CLASSES else classes) + 4)


def draw_per_class(axes, classes: Sequence[str], support: Sequence[int], members: dict[str, Sequence[float]],
                   blend_tuned: Sequence[float], blend_cv: Sequence[float], method: str, threshold_mode: str,
                   metric: str = "macro_f1", overall: float | None = None, hist_axes=None) -> None:
    """Per-class OOF F-beta on `axes`: the blend's (bars tuned, ticks cross-validated) and each member's (dots);
    the dashed line is the blend's metric, tuned (`overall`; the mean per-class value by default). With more
    than MANY_CLASSES classes only the SHOWN worst and best are drawn, and `hist_axes` gets a histogram of every
    class's value. Takes plain values so a blend JSON can be drawn again without the OOF predictions."""
    scorer = parse_metric(metric)
    f_name = scorer.label.split()[-1]  # F1, F2
    overall = float(np.mean(blend_tuned)) if overall is None else float(overall)
    shown = shown_classes(blend_tuned, support)
    if hist_axes is not None and len(shown) < len(classes):
        draw_class_histogram(hist_axes, blend_tuned, blend_cv, support, f_name)

    def pick(values):
        return np.asarray(values, dtype=np.float64)[shown]

    x = np.arange(len(shown))
    axes.bar(x, pick(blend_tuned), color="#a6c8e6", label=f"blend ({method}), tuned")
    axes.axhline(overall, color="#3b75af", linestyle="--", linewidth=1,
                 label=f"blend {scorer.label}, tuned ({overall:.3f})")
    axes.plot(x, pick(blend_cv), "_", color="black", markersize=12, markeredgewidth=2, label="blend, cross-validated")
    for i, (member, tuned) in enumerate(members.items()):
        offset = (i - (len(members) - 1) / 2) * min(0.6 / max(len(members), 1), 0.15)
        axes.plot(x + offset, pick(tuned), "o", markersize=4, alpha=0.8, label=member)
    axes.set_xticks(x, [f"{c} {classes[c]} (n={int(support[c])})" for c in shown], rotation=70, ha="right", fontsize=7)
    axes.set_xlim(-0.7, len(shown) - 0.3)
    axes.set_ylim(0, 1.25)  # headroom for the legend
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_ylabel(f"OOF {f_name} at tuned thresholds")
    which = (f"the {len(shown) // 2 if len(shown) <= 2 * SHOWN else SHOWN} worst and best of {len(classes)} classes"
             if len(shown) < len(classes) else "members and the blend")
    axes.set_title(f"Per-class OOF {f_name}: {which} ({threshold_mode} thresholds)")
    if len(shown) < len(classes) and len(shown) > SHOWN:
        axes.axvline(SHOWN - 0.5, color="gray", linewidth=0.8, linestyle=":")
    handles, labels = axes.get_legend_handles_labels()
    order = [len(handles) - 1, *range(len(handles) - 1)]  # the bars (drawn first, listed last) first
    axes.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7,
                ncol=min(5, len(members) + 3), loc="upper right")
    axes.grid(axis="y", alpha=0.3)


def draw_class_histogram(axes, tuned: Sequence[float], cv: Sequence[float], support: Sequence[int],
                         f_name: str = "F1") -> None:
    """How every class (with OOF positives) scores: histograms of per-class F, tuned and cross-validated."""
    present = np.asarray(support) > 0
    bins = np.linspace(0, 1, 21)
    axes.hist(np.asarray(tuned)[present], bins=bins, color="#a6c8e6", edgecolor="#3b75af", label="tuned")
    axes.hist(np.asarray(cv)[present], bins=bins, histtype="step", color="black", linewidth=1.2,
              label="cross-validated")
    axes.set_xlabel(f"per-class OOF {f_name}")
    axes.set_ylabel("classes")
    axes.set_title(f"Every class: {int(present.sum())} with OOF positives, {int((~present).sum())} without")
    axes.legend(fontsize=7)
    axes.grid(axis="y", alpha=0.3)


def draw(result: BlendResult, path: str | os.PathLike) -> None:
    """Per-class OOF F-beta of each member and of the blend (with many classes: the worst and best, and a
    histogram of all); F-beta versus threshold of the rarest classes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve

    classes, support, metric = result.spec.classes, result.support, metric_of(result)
    if not metric.needs_thresholds:
        return draw_probability_chart(result, path)
    many = len(classes) > MANY_CLASSES
    figure = Figure(figsize=(per_class_width(len(classes)), 13 if many else 10), layout="constrained")
    FigureCanvasAgg(figure)
    top, histogram, bottom = per_class_axes(figure, len(classes), ratios=[2])
    draw_per_class(top, classes, support, {m: result.member_scores[m].tuned for m in result.members},
                   result.scores.tuned, result.scores.cv, result.method, result.threshold_mode, metric.name,
                   result.scores.overall["tuned"], histogram)

    b2, f_name = metric.beta ** 2, metric.label.split()[-1]
    for c in rarest_classes(support):
        precision, recall, cuts = precision_recall_curve(result.truth[:, c], result.oof[:, c])
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.nan_to_num((1 + b2) * precision * recall / (b2 * precision + recall))
        line, = bottom.plot(cuts, f[:-1], linewidth=1.2, label=f"{c} {classes[c]} (n={int(support[c])})")
        bottom.axvline(result.thresholds[c], color=line.get_color(), linestyle="--", linewidth=0.8)
    bottom.set_xlabel("threshold on the blended OOF score (dashed: chosen)")
    bottom.set_ylabel(f"OOF {f_name}")
    bottom.set_ylim(0, 1.05)
    bottom.set_title(f"{f_name} versus threshold, the {RAREST} rarest classes")
    bottom.legend(fontsize=7)
    figure.savefig(path, format="png", dpi=100)


def draw_probability_chart(result: BlendResult, path: str | os.PathLike) -> None:
    """Per-class chart of a probability metric (its own term per class: AUC, log loss, ...), members and the
    blend, cross-validated; the axis runs in the metric's direction (lower log loss is better)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(per_class_width(len(result.spec.classes)), 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    members = {m: result.member_scores[m].cv for m in result.members}
    draw_probability_classes(figure.subplots(), result.spec.classes, result.support, members, result.scores.cv,
                             result.method, metric_of(result).name, result.scores.overall["cv"])
    figure.savefig(path, format="png", dpi=100)


def draw_probability_classes(axes, classes: Sequence[str], support: Sequence[int], members: dict[str, Sequence],
                             blend_cv: Sequence, method: str, metric: str, overall: float | None) -> None:
    """Bars: the blend's cross-validated per-class term; dots: each member's; dashed: the blend's metric. Takes
    plain values (NaN or None: a class left out) so a blend JSON can be drawn again (`kit report`)."""
    scorer = parse_metric(metric)

    def values(column) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in column], dtype=np.float64)

    blend = values(blend_cv)
    shown = shown_classes(np.nan_to_num(scorer.objective(blend), nan=-np.inf), support)
    x = np.arange(len(shown))
    axes.bar(x, blend[shown], color="#a6c8e6", label=f"blend ({method}), cross-validated")
    if overall is not None and np.isfinite(overall):
        axes.axhline(overall, color="#3b75af", linestyle="--", linewidth=1, label=f"blend {scorer.label} ({overall:.3f})")
    for i, (member, column) in enumerate(members.items()):
        offset = (i - (len(members) - 1) / 2) * min(0.6 / max(len(members), 1), 0.15)
        axes.plot(x + offset, values(column)[shown], "o", markersize=4, alpha=0.8, label=member)
    axes.set_xticks(x, [f"{c} {classes[c]} (n={int(support[c])})" for c in shown], rotation=70, ha="right", fontsize=7)
    better = "higher is better" if scorer.higher_is_better else "lower is better"
    axes.set_ylabel(f"OOF {scorer.label} per class ({better})")
    if scorer.higher_is_better:
        axes.set_ylim(0, 1.15)
    axes.set_title(f"Per-class OOF {scorer.label}, cross-validated ({better}; a gap: a class left out)")
    axes.legend(fontsize=7, loc="best")
    axes.grid(axis="y", alpha=0.3)


def write_outputs(result: BlendResult, out_dir: Path, name: str, sample_ids: Sequence[str],
                  sample_submission_path: str | os.PathLike, plot: bool = True) -> dict[str, Path]:
    """Write `<name>.csv` (validated before it is moved into place), `<name>.png`, `<name>.json` and, for a
    method whose fit has arrays (rank knots), `<name>.npz`: all or nothing."""
    kinds = ["csv", "json"] + (["png"] if plot else []) + (["npz"] if result.state is not None and result.state.arrays
                                                           else [])
    files = submission_files(out_dir, name, tuple(kinds))
    with contextlib.ExitStack() as stack:
        temporary = {kind: stack.enter_context(atomic_path(path)) for kind, path in files.items()}
        write_submission(temporary["csv"], sample_ids, result.spec, sample_submission_path, scores=result.test,
                         predicted=result.predicted)
        if plot:
            draw(result, temporary["png"])
        if "npz" in files:
            write_arrays(result.state, temporary["npz"])
        report = report_dict(result, name, files)
        temporary["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return files
