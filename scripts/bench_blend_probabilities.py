"""Probability metrics and the blend at RSNA Intracranial Hemorrhage 2019's scale: 752,803 images x 6 classes,
5 folds, 5 members of random but realistic OOF probabilities (RSNA's class rates, members of different strength
and over-confidence).

Measured in one run, each against scikit-learn on the same data, in CPU seconds of one thread:
- the metric: kit's weighted log loss and macro AUC (one vectorised call) against scikit-learn's `log_loss`
  (with RSNA's weights as sample weights) and one `roc_auc_score` per class;
- cross-validated hill-climbing weights on the weighted log loss (the fit on all rows and on each k-1 folds),
  and the same number of metric calls made through scikit-learn (timed on a sample of calls, scaled);
- temperature calibration fit on every OOF row and cross-validated (fit on k-1 folds, applied to the held-out).

    PYTHONPATH=. python scripts/bench_blend_probabilities.py [--rows 752803] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one thread: CPU seconds are then what a core spends

import numpy as np  # noqa: E402 (after the thread settings)

RSNA_CLASSES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
RSNA_RATES = (0.004, 0.048, 0.035, 0.047, 0.063, 0.143)
RSNA_WEIGHTS = np.array([1, 1, 1, 1, 1, 2.0])


def synthetic(rows: int, members: int = 5, folds: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.random((rows, len(RSNA_RATES))) < np.array(RSNA_RATES)
    truth[:, -1] |= truth[:, :-1].any(axis=1)  # `any` holds whenever a subtype does
    prior = np.log(truth.mean(axis=0) / (1 - truth.mean(axis=0)))
    oof = np.empty((members, rows, truth.shape[1]), dtype=np.float64)
    for m in range(members):
        separation, sharpen = 0.6 + 0.15 * m, 1.0 + 0.25 * m  # stronger members are also more over-confident
        z = np.where(truth, separation, -separation) + 1.5 * rng.normal(size=truth.shape)
        logit = sharpen * (2 * separation * z / 1.5**2 + prior)
        oof[m] = np.float32(1 / (1 + np.exp(-logit)))  # float32 as models write them: ties among the scores
    return truth, oof, np.arange(rows) % folds


def timed(function, repeat: int) -> tuple[float, object]:
    """The best of `repeat` calls, in CPU seconds of this process (the machine is shared: wall time measures the
    neighbours; every step here runs on one thread)."""
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.process_time()
        value = function()
        best = min(best, time.process_time() - start)
    return best, value


def main() -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    from kit.blend.calibration import apply_calibration, fit_calibration
    from kit.blend.methods import Blender
    from kit.blend.probability import evaluate_probabilities
    from kit.score.metrics import parse_metric

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=752_803)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    truth, oof, fold_of_row = synthetic(args.rows)
    logloss, auc = parse_metric("logloss"), parse_metric("macro_auc")
    blend = oof.mean(axis=0)
    print(f"{args.rows:,} rows x {truth.shape[1]} classes, {oof.shape[0]} members, 5 folds")

    def sklearn_logloss():
        clipped = np.clip(blend, 1e-15, 1 - 1e-15)
        return log_loss(truth.ravel(), clipped.ravel(), sample_weight=np.tile(RSNA_WEIGHTS, len(truth)))

    def sklearn_auc():
        return float(np.mean([roc_auc_score(truth[:, c], blend[:, c]) for c in range(truth.shape[1])]))

    rows = []
    for label, ours, theirs in (
        ("weighted log loss", lambda: logloss.score_probabilities(truth, blend, RSNA_WEIGHTS), sklearn_logloss),
        ("macro AUC", lambda: auc.score_probabilities(truth, blend), sklearn_auc),
    ):
        kit_s, kit_v = timed(ours, args.repeat)
        sk_s, sk_v = timed(theirs, args.repeat)
        assert abs(kit_v - sk_v) <= 1e-9 * abs(sk_v), (label, kit_v, sk_v)
        rows.append((label, kit_s, sk_s))
        print(f"{label:<20} kit {kit_s:7.3f} s   scikit-learn {sk_s:7.3f} s   x{sk_s / kit_s:5.1f}   value {kit_v:.6f}")

    # cross-validated hill climbing on the weighted log loss (6 fits: all rows, then each k-1 folds)
    calls = {"n": 0}

    class Counting(type(logloss)):
        def score_probabilities(self, *a, **k):
            calls["n"] += 1
            return super().score_probabilities(*a, **k)

    counting = Counting()
    start = time.process_time()
    evaluation = evaluate_probabilities(Blender("hill", oof, oof[:, :10], metric=counting, class_weights=RSNA_WEIGHTS),
                                        truth, fold_of_row, counting, RSNA_WEIGHTS, calibrate=False)
    hill_s = time.process_time() - start
    sk_per_call = rows[0][2]
    print(f"hill, cross-validated: {hill_s:.1f} s for {calls['n']} metric calls (oof {evaluation.scores.overall['oof']:.5f}, "
          f"cv {evaluation.scores.overall['cv']:.5f}); through scikit-learn's log_loss the calls alone would take "
          f"{calls['n'] * sk_per_call:.1f} s (x{calls['n'] * sk_per_call / hill_s:.1f})")

    # temperature calibration of the mean blend: on every row, and cross-validated
    def calibrate_cv():
        cv = np.empty_like(blend)
        for fold in np.unique(fold_of_row):
            held = fold_of_row == fold
            cv[held] = apply_calibration(fit_calibration(logloss, truth[~held], blend[~held]), blend[held])
        return cv

    fit_s, calibration = timed(lambda: fit_calibration(logloss, truth, blend), 1)
    cv_s, cv = timed(calibrate_cv, 1)
    before = logloss.score_probabilities(truth, blend, RSNA_WEIGHTS)
    after = logloss.score_probabilities(truth, cv, RSNA_WEIGHTS)
    print(f"calibration: fit on all rows {fit_s:.1f} s, cross-validated (5 fits) {cv_s:.1f} s; temperatures "
          f"{np.round(calibration.temperatures, 2).tolist()}; weighted log loss {before:.5f} -> {after:.5f} (cv)")


if __name__ == "__main__":
    main()
