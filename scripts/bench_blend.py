"""`kit blend` benchmarks at HPA's size (31,072 OOF x 28 classes, 11,702 test rows, 5 folds).

1. The exact per-class threshold search against a 100-point grid calling sklearn.metrics.f1_score, in one
   run: the exact search must be >= 50x faster and never lower in F1 on any class.
2. The steps of `blend_runs` for 10 members: gather and check the files, blend (mean) and score every
   member and the blend (at 0.5, tuned, cross-validated), write the validated CSV + JSON + PNG.
3. Each method's blend alone (fit on all OOF + refit and scored in every fold), 10 members.

Usage: python scripts/bench_blend.py
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from kit.blend.blending import Blender, blend_members, evaluate
from kit.blend.gather import gather
from kit.blend.report import write_outputs
from kit.data.spec import HPA, HPA_CLASS_COUNTS, HPA_TRAIN_SIZE
from kit.score.metrics import best_thresholds

N_TEST = 11702
K = 5
MEMBERS = 10


def synthetic(rng: np.random.Generator, members: int):
    """HPA-shaped labels and `members` models of varied skill whose errors are partly shared."""
    rates = np.array(HPA_CLASS_COUNTS) / HPA_TRAIN_SIZE
    truth = rng.random((HPA_TRAIN_SIZE, HPA.num_classes)) < rates
    folds = rng.permutation(np.arange(HPA_TRAIN_SIZE) % K)
    shared = rng.normal(size=truth.shape)
    shared_test = rng.normal(size=(N_TEST, HPA.num_classes))
    test_truth = rng.random((N_TEST, HPA.num_classes)) < rates
    logit_bias = np.log(rates / (1 - rates))
    oof, test = [], []
    for m in range(members):
        skill = 0.8 + 0.8 * m / max(members - 1, 1)
        for labels, common, out in ((truth, shared, oof), (test_truth, shared_test, test)):
            logits = logit_bias + skill * (labels - 0.5) * 2 + common + rng.normal(size=labels.shape)
            out.append(1 / (1 + np.exp(-logits)))
    return truth, folds, np.stack(oof), np.stack(test)


def timed(function, *args, repeats: int = 1, **kwargs):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, value


def grid_search(truth: np.ndarray, probabilities: np.ndarray, points: int = 100) -> np.ndarray:
    """The baseline: per-class best F1 over a 100-point grid, one scikit-learn call per grid point."""
    grid = np.linspace(0.005, 0.995, points)
    scores = [f1_score(truth, probabilities >= t, average=None, zero_division=0) for t in grid]
    return np.max(scores, axis=0)


def bench_thresholds(truth, probabilities) -> None:
    exact_seconds, (_, exact_f1) = timed(best_thresholds, truth, probabilities, repeats=5)
    grid_seconds, grid_f1 = timed(grid_search, truth, probabilities)
    worst = float((exact_f1 - grid_f1).min())
    print(f"threshold search, {truth.shape[0]:,} x {truth.shape[1]}: exact {exact_seconds * 1000:.0f} ms "
          f"(target < 1 s); 100-point sklearn grid {grid_seconds:.2f} s; speed-up {grid_seconds / exact_seconds:.0f}x "
          "(target >= 50x)")
    print(f"  macro F1 exact {exact_f1.mean():.4f} vs grid {grid_f1.mean():.4f}; "
          f"smallest per-class gain exact - grid {worst:+.4f} (must be >= 0)")
    assert grid_seconds / exact_seconds >= 50 and worst >= 0


def bench_methods(truth, folds, oof, test) -> None:
    for method in ("mean", "rank", "weighted", "hill"):
        fit_seconds, _ = timed(lambda: Blender(method, oof, test).fit(truth))  # noqa: B023
        seconds, evaluation = timed(lambda: evaluate(Blender(method, oof, test), truth, folds))  # noqa: B023
        macro = evaluation.scores.summary()
        print(f"  {method:<8} blend alone: fit {fit_seconds:4.1f} s, fit + refit in {K} folds and score "
              f"{seconds:5.1f} s; macro F1 at 0.5 {macro['at_0.5']:.4f}, tuned {macro['tuned']:.4f}, "
              f"cv {macro['cv']:.4f}")


def write_runs(root: Path, ids, test_ids, folds, oof, test, members: int) -> None:
    """One model's files written once, then copied: to_csv is the slow part and gathering is what is timed."""
    first = root / "runs" / "m0"
    for fold in range(K):
        folder = first / f"fold{fold}"
        folder.mkdir(parents=True)
        rows = folds == fold
        frame = pd.DataFrame(oof[rows], columns=HPA.classes)
        frame.insert(0, "Id", ids[rows])
        frame.to_csv(folder / "oof.csv", index=False, float_format="%.5f")
        if fold == 0:
            frame = pd.DataFrame(test, columns=HPA.classes)
            frame.insert(0, "Id", test_ids)
            frame.to_csv(folder / "test.csv", index=False, float_format="%.5f")
        else:
            shutil.copy(first / "fold0" / "test.csv", folder / "test.csv")
    for m in range(1, members):
        shutil.copytree(first, root / "runs" / f"m{m}")


def bench_end_to_end(truth, folds, oof, test) -> None:
    """The steps of `blend_runs`, timed one by one: gather from files, blend and score, write."""
    ids = np.array([f"tr{i:05d}" for i in range(len(truth))])
    test_ids = [f"te{i:05d}" for i in range(test.shape[1])]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_runs(root, ids, test_ids, folds, oof[0], test[0], MEMBERS)
        frame = pd.DataFrame({"Id": ids, "fold": folds})
        pd.DataFrame({"Id": test_ids, "Predicted": "0"}).to_csv(root / "sample_submission.csv", index=False)
        gather_seconds, (members, _) = timed(gather, [root / "runs"], HPA, frame, test_ids)
        for member, member_oof, member_test in zip(members, oof, test):  # the same files, different models
            member.oof, member.test = member_oof, member_test
        blend_seconds, result = timed(blend_members, members, truth, folds, HPA, "mean")
        write_seconds, _ = timed(write_outputs, result, root / "out", "bench", test_ids, root / "sample_submission.csv")
    best_member = max(s.summary()["cv"] for s in result.member_scores.values())
    total = gather_seconds + blend_seconds + write_seconds
    print(f"{MEMBERS} members from files: gather + checks {gather_seconds:.1f} s, mean blend with every member and "
          f"the blend scored at 0.5, tuned and cross-validated {blend_seconds:.1f} s (target < 10 s), "
          f"CSV (validated) + JSON + PNG {write_seconds:.1f} s; total {total:.1f} s")
    print(f"  best member cv {best_member:.4f}, mean blend cv {result.scores.summary()['cv']:.4f}")


def main() -> None:
    print(f"{len(os.sched_getaffinity(0))} cores")
    rng = np.random.default_rng(0)
    truth, folds, oof, test = synthetic(rng, MEMBERS)
    bench_thresholds(truth, oof.mean(axis=0))
    bench_end_to_end(truth, folds, oof, test)
    bench_methods(truth, folds, oof, test)


if __name__ == "__main__":
    main()
