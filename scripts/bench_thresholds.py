"""Threshold search for samples-averaged F2 (`Metric("samples", 2).best_thresholds`) at Planet's and iMet 2019's
scale, against a per-class grid that calls scikit-learn, in one run.

The baseline is what a Kaggler writes: start from the best global threshold of a 99-point grid (0.01..0.99),
then for each class in turn try every grid point and keep the one where
`sklearn.metrics.fbeta_score(truth, probs >= thresholds, beta=2, average="samples", zero_division=0)` is highest.

- Planet (40,479 x 17): the baseline is timed in full (the global grid plus one pass over the classes).
- iMet (109,237 x 1,103, about 4 positives per row): one scikit-learn call takes seconds, so the baseline's
  time is extrapolated from a few timed calls (99 + 1,103 x 99 calls per pass). Its *result* is computed by a
  vectorised equivalent (the same grid ascent, scored exactly with running per-row counts, repeated until no
  class moves) and checked by one scikit-learn call.

Both datasets are synthetic with the real shapes: Planet's tag frequencies (one weather tag per image, cloudy
alone), iMet's long tail of 1,103 attributes; scores are noisy, per class of varied quality, as a model's are.
Memory: tracemalloc's peak during the search (numpy's allocations are traced) and the process's peak RSS.

Usage: python scripts/bench_thresholds.py [--quick]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np
from sklearn.metrics import fbeta_score

from kit.data.presets import PLANET_TAG_COUNTS, PLANET_TAGS, PLANET_TRAIN_SIZE, PLANET_WEATHER
from kit.score.metrics import GLOBAL_GRID, Metric, fbeta_from_counts

METRIC = Metric("samples", 2.0)


def sklearn_score(truth, scores, thresholds) -> float:
    return float(fbeta_score(truth, scores >= thresholds, beta=2, average="samples", zero_division=0))


def planet_set(rng: np.random.Generator, n: int = PLANET_TRAIN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    counts = dict(zip(PLANET_TAGS, PLANET_TAG_COUNTS))
    weather = np.array([PLANET_TAGS.index(w) for w in PLANET_WEATHER])
    shares = np.array([counts[w] for w in PLANET_WEATHER], dtype=np.float64)
    truth = np.zeros((n, len(PLANET_TAGS)), bool)
    picked = weather[rng.choice(len(weather), size=n, p=shares / shares.sum())]
    truth[np.arange(n), picked] = True
    clear_of_clouds = PLANET_TRAIN_SIZE - counts["cloudy"]
    land = [c for c, tag in enumerate(PLANET_TAGS) if tag not in PLANET_WEATHER]
    rates = np.array([counts[PLANET_TAGS[c]] / clear_of_clouds for c in land])
    not_cloudy = picked != PLANET_TAGS.index("cloudy")
    truth[np.ix_(not_cloudy, land)] = rng.random((not_cloudy.sum(), len(land))) < rates
    return truth, model_scores(rng, truth)


def imet_set(rng: np.random.Generator, n: int = 109_237, classes: int = 1103) -> tuple[np.ndarray, np.ndarray]:
    """About 4 positives per row over a Zipf-like long tail of classes."""
    weights = 1.0 / np.arange(1, classes + 1) ** 0.8
    weights /= weights.sum()
    truth = np.zeros((n, classes), bool)
    count = np.clip(1 + rng.poisson(3.0, size=n), 1, 10)
    for k in range(1, 11):
        rows = np.flatnonzero(count == k)
        if len(rows):
            keys = np.log(rng.random((len(rows), classes))) / weights  # weighted sampling without repeats
            picks = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            truth[rows[:, None], picks] = True
    return truth, model_scores(rng, truth)


def model_scores(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    """Scores of a model of varied per-class skill: logit = skill * (2y - 1) + prior shift + noise."""
    n, classes = truth.shape
    rate = np.clip(truth.mean(axis=0), 1e-5, None)
    skill = rng.uniform(0.8, 3.0, classes)
    out = np.empty((n, classes))
    for start in range(0, n, 8192):  # in blocks: no N x C float64 temporaries beyond the output
        block = truth[start:start + 8192]
        logit = skill * (2.0 * block - 1.0) + np.log(rate / (1 - rate)) * 0.5 + rng.normal(0, 1.2, block.shape)
        out[start:start + 8192] = 1.0 / (1.0 + np.exp(-logit))
    return out


def grid_ascent(truth: np.ndarray, scores: np.ndarray, grid: np.ndarray, max_sweeps: int = 10) -> tuple[np.ndarray, int]:
    """The baseline's result without scikit-learn: from the best global grid threshold, each class in turn moved to
    the grid point that maximises samples F2 (strictly better only), until a pass moves nothing."""
    start, _ = METRIC.best_global_threshold(truth, scores, grid)
    thresholds = np.full(truth.shape[1], start)
    positives = truth.sum(axis=1)
    predicted = scores >= thresholds
    row_k, row_tp = predicted.sum(axis=1), (predicted & truth).sum(axis=1)
    del predicted
    scores_t, truth_t = np.ascontiguousarray(scores.T), np.ascontiguousarray(truth.T)  # column reads
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        moved = False
        for c in range(truth.shape[1]):
            column, hits = scores_t[c], truth_t[c]
            now = column >= thresholds[c]
            k0, tp0 = row_k - now, row_tp - (now & hits)
            base = fbeta_from_counts(tp0, positives, k0, 2.0)
            delta = fbeta_from_counts(tp0 + hits, positives, k0 + 1, 2.0) - base
            order = np.argsort(-column, kind="stable")
            gains = np.concatenate([[0.0], np.cumsum(delta[order])])
            kept_at = len(column) - np.searchsorted(np.sort(column), grid, side="left")
            values = gains[kept_at]
            current = gains[int(now.sum())]
            best = int(np.argmax(values))
            if values[best] > current + 1e-12:
                thresholds[c] = grid[best]
                after = column >= grid[best]
                row_k += after.astype(row_k.dtype) - now
                row_tp += (after & hits).astype(row_tp.dtype) - (now & hits)
                moved = True
        if not moved:
            break
    return thresholds, sweeps


def timed(func, *args):
    started = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - started, result


def sklearn_grid(truth, scores, grid, classes: list[int] | None = None, points: list[int] | None = None):
    """The baseline as written, with scikit-learn: returns (seconds, calls, thresholds)."""
    calls = 0
    started = time.perf_counter()
    global_scores = []
    for t in grid:
        global_scores.append(sklearn_score(truth, scores, t))
        calls += 1
    thresholds = np.full(truth.shape[1], grid[int(np.argmax(global_scores))])
    current = max(global_scores)
    for c in (range(truth.shape[1]) if classes is None else classes):
        for g in (range(len(grid)) if points is None else points):
            trial = thresholds.copy()
            trial[c] = grid[g]
            value = sklearn_score(truth, scores, trial)
            calls += 1
            if value > current:
                current, thresholds = value, trial
    return time.perf_counter() - started, calls, thresholds


def search(truth, scores) -> tuple[float, float, float, np.ndarray]:
    """Our search, timed: (seconds, tracemalloc's peak (bytes allocated beyond the inputs), the process's peak
    RSS in GiB so far (run before any scikit-learn call, whose own peak would mask it), thresholds)."""
    tracemalloc.start()
    seconds, (thresholds, _) = timed(METRIC.best_thresholds, truth, scores)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    return seconds, peak, rss, thresholds


def report(name: str, truth, scores, searched, grid_seconds: float, grid_note: str) -> None:
    seconds, peak, rss, thresholds = searched
    ours = sklearn_score(truth, scores, thresholds)
    global_t, global_score = METRIC.best_global_threshold(truth, scores)
    baseline_t, sweeps = grid_ascent(truth, scores, GLOBAL_GRID)
    baseline = sklearn_score(truth, scores, baseline_t)
    inputs = (scores.nbytes + truth.nbytes) / 2**30
    print(f"\n## {name}: {truth.shape[0]:,} x {truth.shape[1]:,}, {truth.sum(axis=1).mean():.2f} positives per row")
    print(f"kit search (samples_f2)      {seconds:8.2f} s   extra memory {peak / 2**30:.2f} GiB "
          f"(inputs {inputs:.2f} GiB, process peak RSS {rss:.2f} GiB)")
    print(f"per-class grid + sklearn     {grid_seconds:8.1f} s   ({grid_note})")
    print(f"speed-up                     {grid_seconds / seconds:8.0f}x")
    print(f"samples F2 (sklearn): global threshold {global_t:.2f}: {global_score:.5f}; per-class grid "
          f"({sweeps} passes to converge): {baseline:.5f}; kit: {ours:.5f}  (kit - grid = {ours - baseline:+.5f})")
    assert ours >= global_score - 1e-12, "the search ended below the global threshold"
    assert ours >= baseline - 1e-12, "the search ended below the per-class grid"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows (a smoke test of the script)")
    parser.add_argument("--only", choices=("planet", "imet"), help="one of the two scales")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1

    if args.only != "planet":  # first: the process's peak RSS is then that of iMet's search
        rng = np.random.default_rng(1)
        truth, scores = imet_set(rng, 109_237 // scale)
        searched = search(truth, scores)
        sample_calls = 3
        seconds, calls, _ = sklearn_grid(truth, scores, GLOBAL_GRID[:sample_calls], classes=[], points=[])
        per_call = seconds / calls
        total_calls = len(GLOBAL_GRID) * (1 + truth.shape[1])
        note = (f"extrapolated: {per_call:.2f} s per scikit-learn call (mean of {calls} timed) x {total_calls:,} "
                "calls for the global grid and one pass")
        report("iMet 2019", truth, scores, searched, per_call * total_calls, note)
        del truth, scores

    if args.only != "imet":
        rng = np.random.default_rng(0)
        truth, scores = planet_set(rng, PLANET_TRAIN_SIZE // scale)
        searched = search(truth, scores)
        grid_seconds, calls, grid_thresholds = sklearn_grid(truth, scores, GLOBAL_GRID)
        note = f"measured: {calls} scikit-learn calls, the global grid and one pass over the classes"
        report("Planet", truth, scores, searched, grid_seconds, note)
        print(f"(the timed one-pass sklearn grid itself scores {sklearn_score(truth, scores, grid_thresholds):.5f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
