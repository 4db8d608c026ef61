"""Blending methods over stacked member predictions (members x rows x classes).

`mean`; `rank` (average of per-class ranks, mapped back onto the probability scale); `weighted`
(non-negative weights summing to 1 that minimise the OOF binary cross-entropy); `hill` (greedy forward
selection with replacement on tuned macro F1, Caruana et al. 2004).
"""
from __future__ import annotations

import numpy as np

from kit.errors import KitError
from kit.score.metrics import best_thresholds

METHODS = ("mean", "rank", "weighted", "hill")
HILL_MAX_STEPS = 25  # additions after the best single model; the climb stops earlier once nothing improves


def interpolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp, with the queries sorted first: binary searches in order are several times faster."""
    order = np.argsort(x)
    out = np.empty(len(x))
    out[order] = np.interp(x[order], xp, fp)
    return out


def rank_knots(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of one column of scores, their mid-rank positions in (0, 1) (the knots of the
    empirical distribution function, interpolated linearly between them), and each score's position."""
    n = len(scores)
    order = np.argsort(scores)
    ordered = scores[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    counts = np.diff(np.append(starts, n))
    positions = (starts + (counts - 1) / 2.0 + 0.5) / n
    ranks = np.empty(n)
    ranks[order] = np.repeat(positions, counts)
    return ordered[starts], positions, ranks


def to_ranks(oof: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each member's scores -> their mid-rank among that member's OOF scores of the class, in (0, 1).

    Test scores are placed among the OOF ones (interpolating between neighbours), so both share one scale."""
    oof_ranks, test_ranks = np.empty_like(oof), np.empty_like(test)
    for m in range(oof.shape[0]):
        for c in range(oof.shape[2]):
            values, positions, oof_ranks[m, :, c] = rank_knots(oof[m, :, c])
            test_ranks[m, :, c] = interpolate(test[m, :, c], values, positions)
    return oof_ranks, test_ranks


def from_ranks(ranks: np.ndarray, knots: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Mid-ranks -> the scores at those ranks of a reference (the mean blend's OOF scores), so that a rank
    blend is on the probability scale: 0.5, the global threshold and no-empty keep their meaning, and a rank
    blend of one model gives back that model's scores."""
    return np.stack([interpolate(ranks[:, c], positions, values) for c, (values, positions) in enumerate(knots)],
                    axis=1)


def optimise_weights(stack: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the binary cross-entropy of the weighted mean.

    The loss is convex in the weights, so SLSQP on the simplex finds the optimum; cross-entropy stands in
    for macro F1, which has no useful gradient (`hill` optimises F1 itself)."""
    from scipy.optimize import minimize

    count = len(stack)
    if count == 1:
        return np.ones(1)
    columns = stack.reshape(count, -1).T
    positive = np.asarray(truth, dtype=bool).reshape(-1)
    sign = np.where(positive, 1.0, -1.0)
    eps = 1e-7

    def loss(weights):
        blend = np.clip(columns @ weights, eps, 1 - eps)
        likelihood = np.where(positive, blend, 1.0 - blend)  # of the true label
        gradient = columns.T @ (-sign / likelihood) / len(likelihood)
        return -np.mean(np.log(likelihood)), gradient

    result = minimize(loss, np.full(count, 1.0 / count), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * count,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(count)}])
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


def tuned_macro_f1(truth: np.ndarray, scores: np.ndarray) -> float:
    return float(best_thresholds(truth, scores)[1].mean())


def hill_climb(stack: np.ndarray, truth: np.ndarray, max_steps: int = HILL_MAX_STEPS) -> np.ndarray:
    """Caruana's forward selection with replacement: start from the best single model, then repeatedly add
    (again, if it helps) the model whose addition most raises tuned macro F1; weights are the counts."""
    count = len(stack)
    # Class-major copies: best_thresholds works on classes x rows, so the transposed views below are free.
    stack = np.ascontiguousarray(stack.transpose(0, 2, 1))
    truth = np.ascontiguousarray(np.asarray(truth, dtype=bool).T).T
    counts = np.zeros(count, dtype=np.int64)
    singles = [tuned_macro_f1(truth, member.T) for member in stack]
    first = int(np.argmax(singles))
    counts[first], total, current = 1, stack[first].copy(), singles[first]
    for _ in range(max_steps if count > 1 else 0):
        # F1 depends on the order of the scores only, so the sum stands in for the mean.
        candidates = [tuned_macro_f1(truth, (total + member).T) for member in stack]
        best = int(np.argmax(candidates))
        if candidates[best] <= current:
            break
        counts[best] += 1
        total += stack[best]
        current = candidates[best]
    return counts / counts.sum()


class Blender:
    """One method over stacked member predictions (members x rows x classes)."""

    def __init__(self, method: str, oof: np.ndarray, test: np.ndarray):
        if method not in METHODS:
            raise KitError(f"unknown blend method {method!r}: expected one of {', '.join(METHODS)}")
        self.method = method
        self.reference = None
        if method == "rank":
            mean = oof.mean(axis=0)
            self.reference = [rank_knots(mean[:, c])[:2] for c in range(mean.shape[1])]
            oof, test = to_ranks(oof, test)
        self.oof_stack, self.test_stack = oof, test

    @property
    def fitted(self) -> bool:
        """Whether the weights are learned from labels (and so must be cross-validated)."""
        return self.method in ("weighted", "hill") and len(self.oof_stack) > 1

    def fit(self, truth: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Weights fit on `rows` of the OOF predictions (all by default)."""
        stack = self.oof_stack if rows is None else self.oof_stack[:, rows]
        if self.method == "weighted":
            return optimise_weights(stack, truth)
        if self.method == "hill":
            return hill_climb(stack, truth)
        return np.full(len(stack), 1.0 / len(stack))

    def combine(self, stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
        blended = np.tensordot(weights, stack, axes=1)
        return blended if self.reference is None else from_ranks(blended, self.reference)

    def oof(self, weights: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.combine(self.oof_stack if rows is None else self.oof_stack[:, rows], weights)

    def test(self, weights: np.ndarray) -> np.ndarray:
        return self.combine(self.test_stack, weights)
