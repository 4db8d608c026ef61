"""Blending methods over stacked member predictions (members x rows x classes).

`mean`; `rank` (average of per-class ranks, mapped back onto the probability scale); `weighted`
(non-negative weights summing to 1 that minimise the OOF binary cross-entropy); `hill` (greedy forward
selection with replacement on tuned macro F1, Caruana et al. 2004); `stack` (a second-level model per class
over every member's probabilities of every class, `kit.blend.stack`).

A method's fit is what `Blender.fit` returns: member weights for the weighted means, a
`kit.blend.stack.Stacker` for `stack`; `Blender.member_weights(fit)` gives the weights shown for either.

Re-applying a fit to new test predictions (`kit infer`): `Blender.state(weights)` exports the fit as a
`kit.blend.state.FittedBlend` (JSON + numeric arrays), and `apply(state, member_test)` combines new
members x rows x classes probabilities exactly as `Blender.test` did. A new method adds its name to METHODS,
its fit to `Blender`, its export to `Blender.state` and its `apply` function to APPLY.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kit.blend.stack import STACKERS, Stacker, fit_stacker
from kit.blend.state import FittedBlend, pack_ragged, unpack_ragged
from kit.errors import KitError, check_name
from kit.score.metrics import Metric, parse_metric

METHODS = ("mean", "rank", "weighted", "hill", "stack")


def check_method(method: str) -> None:
    """An unknown blend method is an error listing METHODS."""
    check_name(method, METHODS, "blend method")


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


Knots = list[tuple[np.ndarray, np.ndarray]]  # per class: (distinct scores, their mid-rank positions)


def to_ranks(oof: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each member's scores -> their mid-rank among that member's OOF scores of the class, in (0, 1).

    Test scores are placed among the OOF ones (interpolating between neighbours), so both share one scale."""
    oof_ranks = np.empty_like(oof)
    member_knots = []
    for m in range(oof.shape[0]):
        knots = []
        for c in range(oof.shape[2]):
            values, positions, oof_ranks[m, :, c] = rank_knots(oof[m, :, c])
            knots.append((values, positions))
        member_knots.append(knots)
    return oof_ranks, test_ranks(test, member_knots)


def test_ranks(test: np.ndarray, member_knots: list[Knots]) -> np.ndarray:
    """New scores (members x rows x classes) placed among each member's OOF scores: see `to_ranks`."""
    ranks = np.empty(test.shape, dtype=np.float64)
    for m, knots in enumerate(member_knots):
        for c, (values, positions) in enumerate(knots):
            ranks[m, :, c] = interpolate(test[m, :, c], values, positions)
    return ranks


def from_ranks(ranks: np.ndarray, knots: Knots) -> np.ndarray:
    """Mid-ranks -> the scores at those ranks of a reference (the mean blend's OOF scores), so that a rank
    blend is on the probability scale: 0.5, the global threshold and no-empty keep their meaning, and a rank
    blend of one model gives back that model's scores."""
    return np.stack([interpolate(ranks[:, c], positions, values) for c, (values, positions) in enumerate(knots)],
                    axis=1)


def optimise_weights(stack: np.ndarray, truth: np.ndarray, metric=None,
                     class_weights: np.ndarray | None = None) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the cross-entropy of the weighted mean: binary over every
    cell (each cell weighted by its class's weight: RSNA's weighted log loss itself), or of the true class for a
    multi-class log loss (`metric.calibration == "softmax"`; a mean of distributions is one).

    The loss is convex in the weights, so SLSQP on the simplex finds the optimum; for metrics without a useful
    gradient (F-scores, AUC, AP, accuracy) cross-entropy stands in (`hill` optimises those themselves)."""
    from scipy.optimize import minimize

    count = len(stack)
    if count == 1:
        return np.ones(1)
    truth = np.asarray(truth, dtype=bool)
    eps = 1e-7
    if metric is not None and metric.calibration == "softmax":
        columns = stack[:, np.arange(truth.shape[0]), truth.argmax(axis=1)].T  # rows x members: p(true class)
        cell_weights = np.ones(len(columns))
        positive = np.ones(len(columns), dtype=bool)
    else:
        columns = stack.reshape(count, -1).T
        positive = truth.reshape(-1)
        cell_weights = (np.ones(truth.shape) if class_weights is None
                        else np.broadcast_to(np.asarray(class_weights, dtype=np.float64), truth.shape)).reshape(-1)
    sign = np.where(positive, 1.0, -1.0)
    cell_weights = cell_weights / cell_weights.mean()

    def loss(weights):
        blend = np.clip(columns @ weights, eps, 1 - eps)
        likelihood = np.where(positive, blend, 1.0 - blend)  # of the true label
        gradient = columns.T @ (-sign * cell_weights / likelihood) / len(likelihood)
        return -np.mean(cell_weights * np.log(likelihood)), gradient

    result = minimize(loss, np.full(count, 1.0 / count), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * count,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(count)}])
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


def hill_climb(stack: np.ndarray, truth: np.ndarray, max_steps: int = HILL_MAX_STEPS,
               metric: Metric | str | None = None, class_weights: np.ndarray | None = None) -> np.ndarray:
    """Caruana's forward selection with replacement: start from the best single model, then repeatedly add
    (again, if it helps) the model whose addition most raises the competition's metric (macro F1 by default)
    on the OOF rows; weights are the counts.

    The objective is the metric at tuned thresholds: exact per-class thresholds for macro averaging; for micro
    and samples averaging the best global threshold, since the per-class coordinate ascent for every candidate
    at every step would cost minutes per step at iMet's size (1,103 classes). A metric of the probabilities
    (AUC, log loss, ...) is climbed itself, in its direction, with the competition's class weights."""
    metric = parse_metric(metric)

    def objective(truth: np.ndarray, scores: np.ndarray) -> float:
        if not metric.needs_thresholds:
            return metric.objective(metric.score_probabilities(truth, scores, class_weights))
        if metric.average == "macro":
            return metric.tuned(truth, scores)
        return metric.best_global_threshold(truth, scores)[1]

    count = len(stack)
    # Class-major copies: the per-class searches read classes x rows, so the transposed views below are free.
    stack = np.ascontiguousarray(stack.transpose(0, 2, 1))
    truth = np.ascontiguousarray(np.asarray(truth, dtype=bool).T).T
    counts = np.zeros(count, dtype=np.int64)
    singles = [objective(truth, member.T) for member in stack]
    first = int(np.argmax(singles))
    counts[first], total, current = 1, stack[first].copy(), singles[first]
    for _ in range(max_steps if count > 1 else 0):
        # The mean, not the sum: a global threshold is on the probability scale.
        candidates = [objective(truth, (total + member).T / (counts.sum() + 1)) for member in stack]
        best = int(np.argmax(candidates))
        if candidates[best] <= current:
            break
        counts[best] += 1
        total += stack[best]
        current = candidates[best]
    return counts / counts.sum()


class Blender:
    """One method over stacked member predictions (members x rows x classes)."""

    def __init__(self, method: str, oof: np.ndarray, test: np.ndarray, stacker: str = "logistic",
                 metric: Metric | str | None = None, class_weights: np.ndarray | None = None):
        check_method(method)
        check_name(stacker, STACKERS, "stacker")
        self.method = method
        self.metric = parse_metric(metric)  # what `hill` climbs and `weighted` minimises the cross-entropy for
        self.class_weights = class_weights
        self.stacker = stacker
        self.reference: Knots | None = None
        self.member_knots: list[Knots] = []
        if method == "rank":
            mean = oof.mean(axis=0)
            self.reference = [rank_knots(mean[:, c])[:2] for c in range(mean.shape[1])]
            self.member_knots = [[rank_knots(oof[m, :, c])[:2] for c in range(oof.shape[2])]
                                 for m in range(oof.shape[0])]
            oof, test = to_ranks(oof, test)
        self.oof_stack, self.test_stack = oof, test

    @property
    def fitted(self) -> bool:
        """Whether the fit is learned from labels (and so must be cross-validated)."""
        return self.method == "stack" or (self.method in ("weighted", "hill") and len(self.oof_stack) > 1)

    @property
    def cross_fits(self) -> bool:
        """Whether thresholds must be fit on cross-fitted scores: a stacker's scores on its own training rows
        are more confident than on new rows, so thresholds fit on them would not transfer."""
        return self.method == "stack"

    def fit(self, truth: np.ndarray, rows: np.ndarray | None = None):
        """The method's fit on `rows` of the OOF predictions (all by default): member weights, or a Stacker."""
        stack = self.oof_stack if rows is None else self.oof_stack[:, rows]
        if self.method == "stack":
            return fit_stacker(self.stacker, stack, truth)
        if self.method == "weighted":
            return optimise_weights(stack, truth, self.metric, self.class_weights)
        if self.method == "hill":
            return hill_climb(stack, truth, metric=self.metric, class_weights=self.class_weights)
        return np.full(len(stack), 1.0 / len(stack))

    def member_weights(self, fit) -> np.ndarray:
        """The weight of each member in a fit (a stacker's: each member's share of its use of the inputs)."""
        return fit.member_weights() if isinstance(fit, Stacker) else np.asarray(fit, dtype=np.float64)

    def cross_fitted(self, truth: np.ndarray, fold_of_row: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Scores of `rows` (a boolean mask; all by default), each fold's from a fit on the other folds among
        `rows`: the labels of a row never reach its own score."""
        rows = np.ones(len(fold_of_row), dtype=bool) if rows is None else rows
        scores = np.zeros((len(fold_of_row), self.oof_stack.shape[2]))
        for fold in np.unique(fold_of_row[rows]):
            held, train = rows & (fold_of_row == fold), rows & (fold_of_row != fold)
            if not train.any():
                raise KitError("cross-fitting a stacker needs at least 2 folds among the rows it is fit on")
            scores[held] = self.oof(self.fit(truth[train], rows=train), held)
        return scores[rows]

    def combine(self, stack: np.ndarray, weights) -> np.ndarray:
        if isinstance(weights, Stacker):
            return weights.predict(stack)
        blended = np.tensordot(weights, stack, axes=1)
        return blended if self.reference is None else from_ranks(blended, self.reference)

    def oof(self, weights: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return self.combine(self.oof_stack if rows is None else self.oof_stack[:, rows], weights)

    def test(self, weights: np.ndarray) -> np.ndarray:
        return self.combine(self.test_stack, weights)

    def state(self, weights) -> FittedBlend:
        """The fit that gave `weights` (on every OOF row), as data that `apply` takes to new test predictions."""
        state = FittedBlend(self.method, self.member_weights(weights))
        if isinstance(weights, Stacker):
            state.params, state.arrays = weights.to_state()
        if self.method == "rank":
            members = [knot for knots in self.member_knots for knot in knots]  # member-major, then class
            state.params = {"members": len(self.member_knots), "classes": len(self.reference)}
            for prefix, knots in (("member", members), ("reference", self.reference)):
                values, offsets = pack_ragged([v for v, _ in knots])
                state.arrays[f"{prefix}_values"], state.arrays[f"{prefix}_offsets"] = values, offsets
                state.arrays[f"{prefix}_positions"] = pack_ragged([p for _, p in knots])[0]
        return state


def _knots(arrays: dict[str, np.ndarray], prefix: str) -> Knots:
    offsets = arrays[f"{prefix}_offsets"]
    return list(zip(unpack_ragged(arrays[f"{prefix}_values"], offsets),
                    unpack_ragged(arrays[f"{prefix}_positions"], offsets)))


def apply_weighted(state: FittedBlend, member_test: np.ndarray) -> np.ndarray:
    return np.tensordot(state.weights, member_test, axes=1)


def apply_stack(state: FittedBlend, member_test: np.ndarray) -> np.ndarray:
    return Stacker.from_state(state.params, state.arrays).predict(member_test)


def apply_rank(state: FittedBlend, member_test: np.ndarray) -> np.ndarray:
    members, classes = int(state.params["members"]), int(state.params["classes"])
    flat = _knots(state.arrays, "member")
    member_knots = [flat[m * classes:(m + 1) * classes] for m in range(members)]
    ranks = test_ranks(member_test, member_knots)
    return from_ranks(np.tensordot(state.weights, ranks, axes=1), _knots(state.arrays, "reference"))


# How each method's fit is applied to new predictions: (state, members x rows x classes) -> rows x classes.
APPLY: dict[str, Callable[[FittedBlend, np.ndarray], np.ndarray]] = {
    "mean": apply_weighted, "weighted": apply_weighted, "hill": apply_weighted, "rank": apply_rank,
    "stack": apply_stack,
}


def apply(state: FittedBlend, member_test: np.ndarray) -> np.ndarray:
    """A saved fit on new member predictions (members x rows x classes, in the fit's member order): the blended
    rows x classes scores, on the scale the blend's thresholds were fit on."""
    if state.method not in APPLY:
        raise KitError(f"blend method {state.method!r} cannot be applied by this kit: expected one of "
                       f"{', '.join(APPLY)}")
    member_test = np.asarray(member_test, dtype=np.float64)
    if member_test.ndim != 3 or len(member_test) != len(state.weights):
        raise KitError(f"blend of {len(state.weights)} members applied to predictions of shape {member_test.shape}")
    return APPLY[state.method](state, member_test)
