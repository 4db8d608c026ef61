"""Turning blended scores into labels: per-class, global or ratio thresholds, and the no-empty rule.

A sample is positive for class c when its score is >= thresholds[c] (the rule of `kit.score.metrics`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.errors import KitError, check_name
from kit.score.metrics import Metric, parse_metric

MODES = ("per-class", "global", "ratio")


def check_mode(mode: str) -> None:
    """An unknown threshold mode is an error listing MODES."""
    check_name(mode, MODES, "threshold mode")


@dataclass
class ThresholdFit:
    """The thresholds of one fit, and which classes fell back to the global threshold."""

    thresholds: np.ndarray
    global_threshold: float | None  # computed only where used (global mode, or a class falling back)
    mode: str
    fallback: list[int] = field(default_factory=list)


def rate_thresholds(scores: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per class, the threshold at which the share of `scores` predicted positive is `rates[c]` (rounded to
    whole samples; ties at the cut may add a few more). Thresholds sit midway between kept and dropped scores."""
    scores = np.sort(np.asarray(scores, dtype=np.float64), axis=0)[::-1]  # descending, per column
    n, num_classes = scores.shape
    keep = np.clip(np.rint(np.asarray(rates, dtype=np.float64) * n).astype(np.int64), 0, n)
    columns = np.arange(num_classes)
    last_kept = scores[np.maximum(keep - 1, 0), columns]
    first_dropped = scores[np.minimum(keep, n - 1), columns]
    thresholds = np.where(keep >= n, scores[-1], (last_kept + first_dropped) / 2.0)
    return np.where(keep <= 0, np.nextafter(scores[0], np.inf), thresholds)


def fit_thresholds(truth: np.ndarray, scores: np.ndarray, mode: str = "per-class", min_positives: int = 5,
                   target_scores: np.ndarray | None = None, metric: Metric | str | None = None,
                   prior: np.ndarray | None = None) -> ThresholdFit:
    """Fit thresholds on labelled scores (OOF) for `metric` (macro F1 by default). `per-class`: the search of
    `Metric.best_thresholds` (exact per class for macro averaging, coordinate ascent from the best global
    threshold for micro and samples). `ratio` mode needs `target_scores` (the test predictions): each class's
    threshold makes its predicted rate on them match its rate in `truth`, or its rate in `prior` (one rate per
    class, NaN where the prior says nothing; see `read_prior`). In `per-class` and `ratio` mode, classes with
    fewer than `min_positives` positives in `truth` use the global threshold, unless the prior gives their rate."""
    check_mode(mode)
    metric = parse_metric(metric)
    truth = np.asarray(truth, dtype=bool)
    few = truth.sum(axis=0) < min_positives
    rates = truth.mean(axis=0)
    if prior is not None and mode == "ratio":
        prior = np.asarray(prior, dtype=np.float64)
        given = ~np.isnan(prior)
        rates = np.where(given, prior, rates)
        few &= ~given
    # micro and samples searches start from the global threshold, so it is needed there whatever `few` says
    needs_global = mode == "global" or few.any() or (mode == "per-class" and metric.average != "macro")
    global_threshold = metric.best_global_threshold(truth, scores)[0] if needs_global else None
    if mode == "global":
        return ThresholdFit(np.full(truth.shape[1], global_threshold), global_threshold, mode)
    if mode == "per-class":
        thresholds, _ = metric.best_thresholds(truth, scores, fixed=few, start=global_threshold)
    else:
        if target_scores is None:
            raise KitError("ratio thresholds need the test predictions to match rates on")
        thresholds = rate_thresholds(target_scores, rates)
    if not few.any():
        return ThresholdFit(thresholds, global_threshold if mode == "per-class" else None, mode)
    thresholds = np.where(few, global_threshold, thresholds)
    return ThresholdFit(thresholds, global_threshold, mode, [int(c) for c in np.flatnonzero(few)])


def read_prior(path: str | os.PathLike, classes: Sequence[str]) -> np.ndarray:
    """A prior of test positive rates: a CSV of `class,rate` rows (a header line is optional), the class by
    name or index. Returns one rate per class, NaN for the classes the file leaves out (they keep their
    train rate). An unknown or repeated class, or a rate that is not a number in [0, 1], is an error."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: prior file not found")
    index_of = {name: c for c, name in enumerate(classes)}
    rates = np.full(len(classes), np.nan)
    seen: dict[int, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as err:
        raise KitError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    for line, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise KitError(f"{path}: line {line}: expected 2 fields (class, rate), found {len(row)}")
        name, text = row[0].strip(), row[1].strip()
        try:
            rate = float(text)
        except ValueError:
            if line == 1:
                continue  # the header
            raise KitError(f"{path}: line {line}: class {name!r}: rate {text!r} is not a number") from None
        if name in index_of:
            c = index_of[name]
        elif name.isdigit() and int(name) < len(classes):
            c = int(name)
        else:
            raise KitError(f"{path}: line {line}: {name!r} is not a class of the competition (a name, or an index "
                           f"0..{len(classes) - 1})")
        if not 0.0 <= rate <= 1.0:  # NaN fails too
            raise KitError(f"{path}: line {line}: class {classes[c]!r}: rate {text} is outside [0, 1]")
        if c in seen:
            raise KitError(f"{path}: line {line}: class {classes[c]!r} was already given on line {seen[c]}")
        seen[c] = line
        rates[c] = rate
    if not seen:
        raise KitError(f"{path}: no class,rate rows")
    return rates


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray | float, no_empty: bool = True) -> np.ndarray:
    """Scores -> a 0/1 matrix; with `no_empty`, a row with no class at or above its threshold gets its
    highest-scoring class."""
    scores = np.asarray(scores)
    predicted = scores >= np.asarray(thresholds)
    if no_empty:
        empty = np.flatnonzero(~predicted.any(axis=1))
        predicted[empty, np.argmax(scores[empty], axis=1)] = True
    return predicted
