"""The competition's metric and the threshold searches that maximise an F-score.

`parse_metric(name)` returns an F-score `Metric` for `<average>_f<beta>`, or a
`kit.score.probability.ProbabilityMetric` (macro_auc, macro_ap, logloss, accuracy, mlogloss); both answer
`needs_thresholds`, `higher_is_better`, `tasks`, `calibrates`, `better`, `column` and `history_columns`.

`parse_metric("samples_f2")` -> a `Metric` with `score(truth, predicted)`, `per_class(...)`, `at(...)` and the
threshold searches; every score the kit reports goes through one. Every value equals scikit-learn's
`fbeta_score(truth, predicted, beta=beta, average=average, zero_division=0)`.

A sample is predicted positive for class c when its probability is >= thresholds[c].
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kit.errors import KitError
from kit.score.probability import PROBABILITY_METRICS, ProbabilityMetric

AVERAGES = ("macro", "micro", "samples")
GRAMMAR = ("<average>_f<beta>, average macro, micro or samples and beta a positive number "
           "(macro_f1, samples_f2, micro_f1, macro_f0.5)")
DEFAULT_METRIC = "macro_f1"
GLOBAL_GRID = np.linspace(0.01, 0.99, 99)
MAX_SWEEPS = 10  # coordinate-ascent passes over the classes; it stops earlier once a pass gains nothing
_NAME = re.compile(r"(macro|micro|samples)_f([0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


# ---------------------------------------------------------------- counting


def fbeta_from_counts(true_positives, positives, predicted, beta: float) -> np.ndarray:
    """F-beta = (1 + b^2) TP / (b^2 P + K) elementwise; 0 where there is nothing true and nothing predicted
    (scikit-learn's `zero_division=0`)."""
    b2 = beta * beta
    true_positives = np.asarray(true_positives, dtype=np.float64)
    denominator = b2 * np.asarray(positives, dtype=np.float64) + np.asarray(predicted, dtype=np.float64)
    return np.divide((1.0 + b2) * true_positives, denominator, out=np.zeros(np.broadcast(true_positives,
                     denominator).shape), where=denominator > 0)


def fbeta_per_class(truth: np.ndarray, predicted: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """F-beta of each column of two N x C 0/1 matrices (0 for a class with nothing true and nothing predicted)."""
    truth = np.asarray(truth, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    return fbeta_from_counts((truth & predicted).sum(axis=0), truth.sum(axis=0), predicted.sum(axis=0), beta)


def f1_per_class(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return fbeta_per_class(truth, predicted, 1.0)


def binarize(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    return np.asarray(probabilities) >= np.asarray(thresholds)


def macro_f1(truth: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | float = 0.5) -> float:
    return float(f1_per_class(truth, binarize(probabilities, thresholds)).mean())


def _cut(upper: np.ndarray | float, lower: np.ndarray | float) -> np.ndarray:
    """A threshold keeping `upper` and dropping `lower` (upper > lower): their midpoint, or `upper` itself where
    the two are adjacent floats and the midpoint rounds onto `lower`."""
    middle = (np.asarray(upper, dtype=np.float64) + lower) / 2.0
    return np.where(middle > lower, middle, upper)


# ---------------------------------------------------------------- macro: each class on its own


def best_thresholds(truth: np.ndarray, probabilities: np.ndarray, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """For every class, the threshold that maximises that class's F-beta (hence the macro average), exactly.

    Written by hand because no library does this. Cutting the sorted scores of a class with K predicted
    positives, TP of them true, gives F = (1 + b^2) TP / (K + b^2 P). A best cut always keeps a positive as its
    lowest score (dropping trailing negatives only helps), so F is evaluated at each positive's score, with K
    and TP read off the class's sorted scores by binary search: one sort per class, no N x C temporaries. Tied
    scores are never split. Returns (thresholds, per-class F-beta); the threshold sits between the last score
    kept and the next one, the highest among equally good cuts.
    """
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(probabilities, dtype=np.float64)
    n, num_classes = scores.shape
    scores_t, truth_t = np.ascontiguousarray(scores.T), np.ascontiguousarray(truth.T)
    thresholds, best = np.empty(num_classes), np.zeros(num_classes)
    for c in range(num_classes):
        ascending = np.sort(scores_t[c])
        positives = np.sort(scores_t[c][truth_t[c]])
        if len(positives) == 0:  # no cut scores above 0: predict nothing
            thresholds[c] = np.nextafter(ascending[-1], np.inf)
            continue
        candidates = positives[::-1]  # from the highest score down, so argmax keeps the highest threshold
        predicted = n - np.searchsorted(ascending, candidates, side="left")
        true_positives = len(positives) - np.searchsorted(positives, candidates, side="left")
        values = fbeta_from_counts(true_positives, len(positives), predicted, beta)
        pick = int(np.argmax(values))
        kept, count = candidates[pick], predicted[pick]
        thresholds[c] = _cut(kept, ascending[n - count - 1]) if count < n else kept
        best[c] = values[pick]
    return thresholds, best


# ---------------------------------------------------------------- one threshold for every class


def _grid_counts(truth: np.ndarray, scores: np.ndarray, grid: np.ndarray, by_row: bool, block: int = 4096):
    """Predicted and true-positive counts at every grid threshold: per row (N x G) or per class (C x G).

    Each score is binned once by the grid points at or below it; the counts at grid point g are those of the
    bins above g (a reverse cumulative sum), so no N x C matrix is made per grid point."""
    n, num_classes = scores.shape
    bins = len(grid) + 1
    shape = (n if by_row else num_classes, len(grid))
    predicted, true_positives = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for start in range(0, n, block):
        part, hits = scores[start:start + block], truth[start:start + block]
        where = np.searchsorted(grid, part, side="right")  # s >= grid[g]  <=>  g < where
        groups = np.arange(len(part))[:, None] if by_row else np.arange(num_classes)[None, :]
        keys = (groups * bins + where).ravel()
        size = (len(part) if by_row else num_classes) * bins
        counts = np.bincount(keys, minlength=size).reshape(-1, bins)
        positive = np.bincount(keys, weights=hits.ravel(), minlength=size).reshape(-1, bins)
        above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]  # bins > g
        above_true = np.rint(np.cumsum(positive[:, ::-1], axis=1)[:, ::-1][:, 1:]).astype(np.int64)
        if by_row:
            predicted[start:start + len(part)], true_positives[start:start + len(part)] = above, above_true
        else:
            predicted += above
            true_positives += above_true
    return predicted, true_positives


# ---------------------------------------------------------------- the metric


@dataclass(frozen=True)
class Metric:
    """F-beta averaged over classes (`macro`), over all cells (`micro`) or over samples (`samples`)."""

    average: str = "macro"
    beta: float = 1.0

    # what callers ask instead of testing names (as `kit.score.probability.ProbabilityMetric` answers them)
    needs_thresholds = True
    higher_is_better = True
    tasks = ("multilabel", "multiclass")
    calibrates = False  # a monotone rescaling of the probabilities moves the tuned thresholds with it
    calibration = None

    worst = -float("inf")

    def better(self, value: float, than: float) -> bool:
        return bool(value > than)

    def objective(self, value: float) -> float:
        return value

    def left_out(self, truth: np.ndarray) -> list[int]:
        return []

    def score_probabilities(self, truth: np.ndarray, probabilities: np.ndarray, weights=None) -> float:
        """The metric at 0.5 (an F-score scores labels; see `at` and `tuned`)."""
        return self.at(truth, probabilities)

    @property
    def name(self) -> str:
        return f"{self.average}_f{self.beta:g}"

    @property
    def label(self) -> str:
        """For people: 'macro F1', 'samples F2'."""
        return f"{self.average} F{self.beta:g}"

    def __str__(self) -> str:
        return self.name

    @property
    def column(self) -> str:
        """history.csv's column of the metric at 0.5 (`val_macro_f1`); `column + "_tuned"` at tuned thresholds."""
        return f"val_{self.name}"

    @property
    def history_columns(self) -> list[str]:
        return [self.column, f"{self.column}_tuned"]

    # -- scores of 0/1 predictions

    def score(self, truth: np.ndarray, predicted: np.ndarray) -> float:
        """The metric of an N x C 0/1 prediction against the N x C truth."""
        truth = np.asarray(truth, dtype=bool)
        predicted = np.asarray(predicted, dtype=bool)
        if self.average == "macro":
            return float(fbeta_per_class(truth, predicted, self.beta).mean())
        hits = truth & predicted
        if self.average == "micro":
            return float(fbeta_from_counts(hits.sum(), truth.sum(), predicted.sum(), self.beta))
        return float(fbeta_from_counts(hits.sum(axis=1), truth.sum(axis=1), predicted.sum(axis=1), self.beta).mean())

    def per_class(self, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """F-beta of each class: the terms of the macro average; for micro and samples averaging a per-class
        view of the same predictions (the metric itself is not their mean)."""
        return fbeta_per_class(truth, predicted, self.beta)

    def at(self, truth: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | float = 0.5) -> float:
        return self.score(truth, binarize(probabilities, thresholds))

    # -- threshold searches

    def best_global_threshold(self, truth: np.ndarray, probabilities: np.ndarray,
                              grid: np.ndarray | None = None) -> tuple[float, float]:
        """The single threshold shared by all classes that maximises the metric over `grid` (0.01..0.99);
        (threshold, score), the lowest grid point among equally good ones."""
        grid = GLOBAL_GRID if grid is None else np.asarray(grid, dtype=np.float64)
        truth = np.asarray(truth, dtype=bool)
        scores = np.asarray(probabilities, dtype=np.float64)
        predicted, hits = _grid_counts(truth, scores, grid, by_row=self.average == "samples")
        if self.average == "macro":
            values = fbeta_from_counts(hits, truth.sum(axis=0)[:, None], predicted, self.beta).mean(axis=0)
        elif self.average == "micro":
            values = fbeta_from_counts(hits.sum(axis=0), truth.sum(), predicted.sum(axis=0), self.beta)
        else:
            values = fbeta_from_counts(hits, truth.sum(axis=1)[:, None], predicted, self.beta).mean(axis=0)
        best = int(np.argmax(values))
        return float(grid[best]), float(values[best])

    def best_thresholds(self, truth: np.ndarray, probabilities: np.ndarray, fixed: np.ndarray | None = None,
                        start: float | None = None, max_sweeps: int = MAX_SWEEPS) -> tuple[np.ndarray, float]:
        """Per-class thresholds maximising the metric on (truth, probabilities); returns (thresholds, score).

        macro: each class's exact best cut (classes do not interact). micro and samples: start from the best
        global threshold, then coordinate ascent: each class in turn moves to the cut that maximises the whole
        metric with the others held, re-scored exactly from running per-row (or total) counts; a move is made
        only if it scores higher, so the result never scores below the global threshold. `fixed` (a boolean
        mask) keeps those classes at the global threshold (e.g. classes with too few positives to tune);
        `start` is that global threshold when the caller has it already.
        """
        truth = np.asarray(truth, dtype=bool)
        scores = np.asarray(probabilities, dtype=np.float64)
        if self.average == "macro":
            thresholds, _ = best_thresholds(truth, scores, self.beta)
            if fixed is not None and np.any(fixed):
                start = self.best_global_threshold(truth, scores)[0] if start is None else start
                thresholds = np.where(fixed, start, thresholds)
            return thresholds, self.at(truth, scores, thresholds)
        start = self.best_global_threshold(truth, scores)[0] if start is None else start
        thresholds = np.full(scores.shape[1], start)
        tunable = np.ones(scores.shape[1], bool) if fixed is None else ~np.asarray(fixed, dtype=bool)
        thresholds = _coordinate_ascent(self, truth, scores, thresholds, tunable, max_sweeps)
        return thresholds, self.at(truth, scores, thresholds)

    def tuned(self, truth: np.ndarray, probabilities: np.ndarray) -> float:
        """The metric at the thresholds that maximise it on these very predictions (an in-sample score)."""
        return self.best_thresholds(truth, probabilities)[1]


def _coordinate_ascent(metric: Metric, truth: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                       tunable: np.ndarray, max_sweeps: int) -> np.ndarray:
    """Coordinate ascent on the per-class thresholds for micro or samples averaging (see `best_thresholds`).

    Written by hand because no library does it. For class c the other classes' predictions are held. With
    samples averaging, adding c to row i changes its F from f(TP_i, K_i) to f(TP_i + y_ic, K_i + 1) (K, TP: the
    row's predicted and true-positive counts without c). Over the rows sorted by c's score (descending),
    keeping the top k rows gains the cumulative sum of those changes, so every cut is scored at once, exactly;
    cuts inside tied scores are skipped. The per-row gains of adding a positive or a negative are kept up to
    date incrementally (only rows whose predictions move are recomputed), so a class costs a few passes over
    its column. Micro averaging does the same with totals.
    """
    n, num_classes = scores.shape
    beta, b2 = metric.beta, metric.beta ** 2
    samples = metric.average == "samples"
    thresholds = thresholds.copy()
    classes = [int(c) for c in np.argsort(-truth.sum(axis=0), kind="stable") if tunable[c]]
    # Class-major copies: each class's column is read many times, and strided reads of a row-major matrix
    # cost a cache miss per value.
    scores_t, truth_t = np.ascontiguousarray(scores.T), np.ascontiguousarray(truth.T)
    positives = truth.sum(axis=1) if samples else int(truth.sum())
    predicted = scores >= thresholds
    row_k = predicted.sum(axis=1).astype(np.int64)
    row_tp = (predicted & truth).sum(axis=1).astype(np.int64)
    del predicted

    def row_terms(rows=slice(None)):
        """Per row: its F now, and the change from adding one more predicted label, true or false."""
        k, tp, p = row_k[rows], row_tp[rows], positives[rows]
        now = fbeta_from_counts(tp, p, k, beta)
        return now, fbeta_from_counts(tp + 1, p, k + 1, beta) - now, fbeta_from_counts(tp, p, k + 1, beta) - now

    if samples:
        f_now, add_true, add_false = row_terms()
    orders: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    index_type = np.int32 if n < 2**31 else np.int64
    for _ in range(max_sweeps):
        moved = False
        for c in classes:
            column, hits = scores_t[c], truth_t[c]
            if c not in orders:
                order = np.argsort(-column).astype(index_type)  # ties in any order: cuts never split them
                descending = column[order]
                distinct = np.flatnonzero(descending[:-1] > descending[1:]) + 1
                # the cuts between distinct scores; None where every cut is one (no ties: most models' scores)
                cuts = None if len(distinct) == n - 1 else np.concatenate([[0], distinct, [n]]).astype(index_type)
                orders[c] = (order, cuts)
            order, cuts = orders[c]
            now = column >= thresholds[c]
            kept = int(np.count_nonzero(now))
            if samples:
                delta = np.where(hits, add_true, add_false)
                inside = np.flatnonzero(now)  # rows predicting c now: their change is from removing it
                k0, tp0, p = row_k[inside] - 1, row_tp[inside] - hits[inside], positives[inside]
                delta[inside] = f_now[inside] - fbeta_from_counts(tp0, p, k0, beta)
                gains = np.concatenate([[0.0], np.cumsum(delta[order])])
            else:
                k0, tp0 = int(row_k.sum()) - kept, int(row_tp.sum()) - int(np.count_nonzero(now & hits))
                tp = tp0 + np.concatenate([[0], np.cumsum(hits[order])])
                gains = (1.0 + b2) * tp / np.maximum(b2 * positives + k0 + np.arange(n + 1), 1e-300)
            best = int(np.argmax(gains)) if cuts is None else int(cuts[int(np.argmax(gains[cuts]))])
            if best == kept or gains[best] <= gains[kept] + 1e-12 * max(1.0, abs(gains[kept])):
                continue
            if best == 0:
                thresholds[c] = np.nextafter(column[order[0]], np.inf)
            elif best == n:
                thresholds[c] = column[order[n - 1]]
            else:
                thresholds[c] = float(_cut(column[order[best - 1]], column[order[best]]))
            after = column >= thresholds[c]
            changed = np.flatnonzero(after != now)
            row_k[changed] += np.where(after[changed], 1, -1)
            row_tp[changed] += np.where(after[changed], 1, -1) * hits[changed]
            if samples:
                f_now[changed], add_true[changed], add_false[changed] = row_terms(changed)
            moved = True
        if not moved:
            break
    return thresholds


def metric_names() -> str:
    """Every metric name parse_metric takes, for error messages."""
    return f"{GRAMMAR}, or one of {', '.join(PROBABILITY_METRICS)}"


def parse_metric(name, key: str = "competition.metric"):
    """'samples_f2' -> Metric('samples', 2.0); 'macro_auc' -> the ProbabilityMetric of that name; None -> macro
    F1. An unknown name is a KitError naming `key` and every valid name."""
    if isinstance(name, (Metric, ProbabilityMetric)):
        return name
    if name is None:
        name = DEFAULT_METRIC
    text = str(name).strip().lower()
    if text in PROBABILITY_METRICS:
        return PROBABILITY_METRICS[text]
    match = _NAME.fullmatch(text)
    beta = float(match.group(2)) if match else 0.0
    if not match or not np.isfinite(beta) or beta <= 0:
        raise KitError(f"{key}: unknown metric {name!r}; expected {metric_names()}")
    return Metric(match.group(1), beta)


def check_task(metric, task: str, key: str = "competition.metric") -> None:
    """A metric valid for one task only (accuracy, mlogloss: one class per image) refused for the other."""
    metric = parse_metric(metric, key)
    if task not in metric.tasks:
        raise KitError(f"{key}: {metric.name} scores one class per image, so it needs task: "
                       f"{' or '.join(metric.tasks)}, not task: {task}")


def history_metric(columns, where: str = "history.csv"):
    """The metric a history.csv was scored with: an F-score from its `val_<metric>` and `val_<metric>_tuned`
    columns, a probability metric from its `val_<metric>` column (it has no `_tuned` twin)."""
    columns = [str(column) for column in columns]
    for column in columns:
        if column.startswith("val_") and column.endswith("_tuned"):
            metric = column[len("val_"):-len("_tuned")]
            if _NAME.fullmatch(metric) and f"val_{metric}" in columns:
                return parse_metric(metric)
    for column in columns:
        if column.startswith("val_") and column[len("val_"):] in PROBABILITY_METRICS:
            return PROBABILITY_METRICS[column[len("val_"):]]
    raise KitError(f"{where}: line 1: no val_<metric> column of a known metric (val_macro_f1 with "
                   "val_macro_f1_tuned, or val_macro_auc, val_logloss, ...)")


def best_global_threshold(truth: np.ndarray, probabilities: np.ndarray, grid: np.ndarray | None = None) -> tuple[float, float]:
    """The single threshold that maximises macro F1 over `grid` (see `Metric.best_global_threshold`)."""
    return Metric().best_global_threshold(truth, probabilities, grid)
