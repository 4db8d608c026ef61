"""`kit blend --method stack` against the mean blend, cross-validated (the honest score), on two kinds of members.

HPA-shaped labels (28 classes with HPA's long tail), 5 folds, `members` models of varied skill whose errors
are partly shared:

- independent: every class is drawn on its own and every member sees every class (the stacker has nothing to
  learn that a mean does not already have);
- correlated: classes co-occur by construction (class 2k+1 is present exactly when class 2k or class 2k+2
  is) and the members barely see the odd classes: a per-class model over every class's scores can read them
  off the even ones, a mean cannot.

Prints the cross-validated macro F1 of the mean blend, the logistic and the boosting stacker, and the seconds
each blend takes (all fits, nested CV included), the mean blend being the baseline of the same run.

Usage: python scripts/bench_stack.py [--rows 10000] [--members 5] [--stackers logistic,boosting]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from kit.blend.blending import blend_members
from kit.blend.gather import Member
from kit.data.spec import HPA, HPA_CLASS_COUNTS, HPA_TRAIN_SIZE

K = 5


def labels(rng: np.random.Generator, rows: int, correlated: bool) -> np.ndarray:
    rates = np.array(HPA_CLASS_COUNTS) / HPA_TRAIN_SIZE
    truth = rng.random((rows, HPA.num_classes)) < rates
    if correlated:
        for odd in range(1, HPA.num_classes - 1, 2):
            truth[:, odd] = truth[:, odd - 1] | truth[:, odd + 1]
    empty = ~truth.any(axis=1)
    truth[empty, 0] = True  # every sample has a label, as in HPA
    return truth


def members(rng: np.random.Generator, rows: int, count: int, correlated: bool):
    truth, test_truth = labels(rng, rows, correlated), labels(rng, rows // 3, correlated)
    rates = np.clip(truth.mean(axis=0), 1e-3, 1 - 1e-3)
    bias = np.log(rates / (1 - rates))
    seen = np.ones(HPA.num_classes)
    if correlated:
        seen[1:-1:2] = 0.1  # the odd classes are barely visible to the members
    found = []
    for m in range(count):
        skill = (0.8 + 0.8 * m / max(count - 1, 1)) * seen
        shared = rng.normal(size=truth.shape), rng.normal(size=test_truth.shape)
        oof, test = ((1 / (1 + np.exp(-(bias + skill * (t - 0.5) * 2 + s + rng.normal(size=t.shape)))))
                     for t, s in zip((truth, test_truth), shared))
        found.append(Member(f"m{m}", f"runs/m{m}", oof, test))
    return found, truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--stackers", default="logistic,boosting", help="comma-separated: logistic, boosting")
    args = parser.parse_args()
    print(f"{args.rows} OOF rows x {HPA.num_classes} classes, {args.members} members, {K} folds")
    print(f"{'members':<12} {'blend':<18} {'cv macro F1':>11} {'tuned':>7} {'seconds':>8} {'x mean':>7}")
    for correlated in (False, True):
        rng = np.random.default_rng(0)
        found, truth = members(rng, args.rows, args.members, correlated)
        folds = rng.permutation(np.arange(args.rows) % K)
        baseline = None
        for method, stacker in [("mean", "logistic")] + [("stack", s) for s in args.stackers.split(",")]:
            start = time.perf_counter()
            result = blend_members(found, truth, folds, HPA, method=method, stacker=stacker)
            seconds = time.perf_counter() - start
            baseline = baseline or seconds
            label = method if method == "mean" else f"stack {stacker}"
            macro = result.scores.macro()
            print(f"{'correlated' if correlated else 'independent':<12} {label:<18} {macro['cv']:11.4f} "
                  f"{macro['tuned']:7.4f} {seconds:8.1f} {seconds / baseline:7.1f}")


if __name__ == "__main__":
    main()
