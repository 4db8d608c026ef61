"""Stacking (`kit blend --method stack`): a second-level model per class over every member's probability of
every class, so class c's model also sees the classes that co-occur with it.

Inputs are log-odds (probabilities clipped to [1e-6, 1 - 1e-6]), member-major: feature m * C + k is member
m's score of class k. `logistic` is scikit-learn's L2 LogisticRegression on standardised inputs (the
scaling is folded into the saved coefficients); `boosting` is scikit-learn's HistGradientBoostingClassifier.
A class with fewer than MIN_POSITIVES positives (or negatives) among the rows a stacker is fit on gets the
members' mean probability instead: a second-level model of five examples only memorises them.

Saved state (JSON + .npz, never pickle): the coefficients, or the boosted trees' node arrays. Written by hand
because scikit-learn exports fitted models only by pickle: `predict` here walks the same trees (feature,
threshold, `x <= threshold` goes left, NaN by `missing_go_to_left`) and equals `predict_proba` (tested).

The nesting (see `kit.blend.blending.evaluate`): the cross-validated score of fold f uses a stacker fit on
the other folds, with thresholds fit on scores that those folds' stackers gave without fold f either.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kit.errors import KitError

STACKERS = ("logistic", "boosting")
MIN_POSITIVES = 5
EPS = 1e-6
LOGISTIC = dict(C=1.0, max_iter=500)
# Small, strongly regularised trees: the second level sees few rows per fold and inputs that are already
# probabilities; deeper trees lost to the mean blend on independent classes in the tests.
BOOSTING = dict(max_iter=50, learning_rate=0.1, max_leaf_nodes=8, max_depth=3, min_samples_leaf=40,
                l2_regularization=1.0, early_stopping=False, random_state=0)
NODE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "value")


def features(stack: np.ndarray) -> np.ndarray:
    """members x rows x classes probabilities -> rows x (members * classes) log-odds, member-major."""
    p = np.clip(np.asarray(stack, dtype=np.float64), EPS, 1 - EPS)
    logits = np.log(p / (1 - p))
    return np.ascontiguousarray(logits.transpose(1, 0, 2).reshape(p.shape[1], -1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -500, 500)))


@dataclass
class Stacker:
    """A fitted second level: per class, a logistic model or boosted trees, or the members' mean (fallback)."""

    kind: str
    members: int
    classes: int
    fallback: np.ndarray  # bool per class
    coef: np.ndarray | None = None  # classes x features (logistic, on raw log-odds)
    intercept: np.ndarray | None = None  # classes
    baseline: np.ndarray | None = None  # classes (boosting: the raw score before the trees)
    trees: dict[str, np.ndarray] = field(default_factory=dict)  # node arrays of all trees, concatenated
    tree_offsets: np.ndarray | None = None  # node offsets of every tree
    class_trees: np.ndarray | None = None  # tree offsets of every class
    scale: np.ndarray | None = None  # logistic: the inputs' standard deviations (for member_weights only)

    def predict(self, stack: np.ndarray) -> np.ndarray:
        """members x rows x classes probabilities -> rows x classes stacked probabilities."""
        stack = np.asarray(stack, dtype=np.float64)
        if stack.ndim != 3 or stack.shape[0] != self.members or stack.shape[2] != self.classes:
            raise KitError(f"stacker of {self.members} members x {self.classes} classes applied to predictions of "
                           f"shape {stack.shape}")
        x = features(stack)
        out = stack.mean(axis=0)
        learned = np.flatnonzero(~self.fallback)
        if self.kind == "logistic":
            out[:, learned] = sigmoid(x @ self.coef[learned].T + self.intercept[learned])
        else:
            for c in learned:
                raw = np.full(len(x), self.baseline[c])
                for t in range(self.class_trees[c], self.class_trees[c + 1]):
                    raw += self._tree(x, self.tree_offsets[t], self.tree_offsets[t + 1])
                out[:, c] = sigmoid(raw)
        return out

    def _tree(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        nodes = {name: values[start:stop] for name, values in self.trees.items()}
        at = np.zeros(len(x), dtype=np.int64)
        rows = np.arange(len(x))
        while True:
            inner = ~nodes["is_leaf"][at].astype(bool)
            if not inner.any():
                return nodes["value"][at]
            value = x[rows[inner], nodes["feature_idx"][at[inner]]]
            left = np.where(np.isnan(value), nodes["missing_go_to_left"][at[inner]].astype(bool),
                            value <= nodes["num_threshold"][at[inner]])
            at[inner] = np.where(left, nodes["left"][at[inner]], nodes["right"][at[inner]])

    def member_weights(self) -> np.ndarray:
        """Each member's share of the stacker's use of its inputs, for display: the summed |coefficient| of its
        standardised inputs (logistic) or the count of splits on its inputs (boosting)."""
        if self.fallback.all():
            return np.full(self.members, 1.0 / self.members)
        learned = ~self.fallback
        if self.kind == "logistic":
            scale = self.scale if self.scale is not None else np.ones(self.coef.shape[1])
            use = np.abs(self.coef[learned] * scale).sum(axis=0)
        else:
            inner = ~self.trees["is_leaf"].astype(bool)
            node_class = np.searchsorted(self.class_trees, np.searchsorted(self.tree_offsets,
                                                                           np.arange(len(inner)), "right") - 1,
                                         "right") - 1
            keep = inner & learned[node_class]
            use = np.bincount(self.trees["feature_idx"][keep], minlength=self.members * self.classes).astype(float)
        per_member = use.reshape(self.members, self.classes).sum(axis=1)
        total = per_member.sum()
        return per_member / total if total > 0 else np.full(self.members, 1.0 / self.members)

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        params = {"stacker": self.kind, "members": self.members, "classes": self.classes,
                  "fallback_classes": [int(c) for c in np.flatnonzero(self.fallback)]}
        if self.kind == "logistic":
            arrays = {"coef": self.coef, "intercept": self.intercept}
        else:
            arrays = {"baseline": self.baseline, "tree_offsets": self.tree_offsets, "class_trees": self.class_trees,
                      **{f"node_{name}": self.trees[name] for name in NODE_FIELDS}}
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> Stacker:
        try:
            kind, members, classes = str(params["stacker"]), int(params["members"]), int(params["classes"])
            fallback = np.zeros(classes, dtype=bool)
            fallback[[int(c) for c in params["fallback_classes"]]] = True
            if kind == "logistic":
                return cls(kind, members, classes, fallback, coef=arrays["coef"], intercept=arrays["intercept"])
            if kind == "boosting":
                return cls(kind, members, classes, fallback, baseline=arrays["baseline"],
                           trees={name: arrays[f"node_{name}"] for name in NODE_FIELDS},
                           tree_offsets=arrays["tree_offsets"], class_trees=arrays["class_trees"])
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise KitError(f"stacked blend state is incomplete ({type(err).__name__}: {err})") from None
        raise KitError(f"stacked blend state: unknown stacker {kind!r} (expected one of {', '.join(STACKERS)})")


def fit_stacker(kind: str, stack: np.ndarray, truth: np.ndarray) -> Stacker:
    """Fit one second-level model per class on members x rows x classes probabilities and rows x classes labels."""
    if kind not in STACKERS:
        raise KitError(f"unknown stacker {kind!r}: expected one of {', '.join(STACKERS)}")
    truth = np.asarray(truth, dtype=bool)
    members, _, classes = stack.shape
    x = features(stack)
    positives = truth.sum(axis=0)
    fallback = (positives < MIN_POSITIVES) | (len(truth) - positives < MIN_POSITIVES)
    stacker = Stacker(kind, members, classes, fallback)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        stacker.coef = np.zeros((classes, x.shape[1]))
        stacker.intercept = np.zeros(classes)
        for c in np.flatnonzero(~fallback):
            model = LogisticRegression(**LOGISTIC).fit(z, truth[:, c])
            stacker.coef[c] = model.coef_[0] / scale  # back onto the raw log-odds
            stacker.intercept[c] = model.intercept_[0] - float(np.sum(model.coef_[0] * mean / scale))
        stacker.scale = scale
        return stacker
    from sklearn.ensemble import HistGradientBoostingClassifier

    nodes = {name: [] for name in NODE_FIELDS}
    tree_sizes, class_trees = [], [0]
    stacker.baseline = np.zeros(classes)
    for c in range(classes):
        if not fallback[c]:
            model = HistGradientBoostingClassifier(**BOOSTING).fit(x, truth[:, c])
            stacker.baseline[c] = float(np.ravel(model._baseline_prediction)[0])
            for iteration in model._predictors:
                tree = iteration[0].nodes
                for name in NODE_FIELDS:
                    nodes[name].append(np.asarray(tree[name]))
                tree_sizes.append(len(tree))
        class_trees.append(len(tree_sizes))
    dtypes = {"feature_idx": np.int64, "left": np.int64, "right": np.int64, "num_threshold": np.float64,
              "value": np.float64, "missing_go_to_left": np.uint8, "is_leaf": np.uint8}
    stacker.trees = {name: (np.concatenate(parts) if parts else np.zeros(0)).astype(dtypes[name])
                     for name, parts in nodes.items()}
    stacker.tree_offsets = np.concatenate([[0], np.cumsum(tree_sizes)]).astype(np.int64)
    stacker.class_trees = np.asarray(class_trees, dtype=np.int64)
    return stacker
