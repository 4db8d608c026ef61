"""Temperature scaling of blended probabilities, for metrics that reward calibration (log losses).

`kit blend --calibrate temperature|auto|none`. A binary log loss gets one temperature per class,
p' = sigmoid(logit(p) / T_c); Kaggle's multi-class log loss one temperature for the blend's output,
p' = softmax(log p / T). Each is fit by minimising the competition's log loss on OOF rows (scipy's bounded
scalar search over log T: the loss of one temperature is smooth and unimodal in practice), cross-validated
like thresholds by the caller (fit on k-1 folds, scored on the held-out one). `auto` calibrates where the
metric `calibrates` and leaves rank metrics (AUC, AP, accuracy) and F-scores alone, where a temperature changes
nothing or moves the thresholds with it; `temperature` with such a metric is refused in one line.

Saved in the blend JSON as {"method": "temperature", "kind": "per-class" | "softmax", "temperatures": [...]}
and applied again by `kit infer` with `apply_calibration`, the same numpy operations in the same order, so its
CSV equals `kit blend`'s byte for byte.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.errors import KitError, check_name

CALIBRATIONS = ("auto", "temperature", "none")
LOG_T_BOUNDS = (-4.0, 4.0)  # temperatures from 0.018 to 55
EPS = 1e-15


def check_calibrate(value: str) -> None:
    check_name(value, CALIBRATIONS, "calibration")


@dataclass
class Calibration:
    kind: str  # "per-class" (binary, one temperature per class) or "softmax" (one for the whole output)
    temperatures: np.ndarray

    def to_dict(self) -> dict:
        return {"method": "temperature", "kind": self.kind, "temperatures": [float(t) for t in self.temperatures]}

    @classmethod
    def from_dict(cls, entry: dict | None, where: str) -> Calibration | None:
        if entry is None:
            return None
        if not isinstance(entry, dict) or entry.get("method") != "temperature" \
                or entry.get("kind") not in ("per-class", "softmax") or not isinstance(entry.get("temperatures"), list):
            raise KitError(f"{where}: calibration: expected {{method: temperature, kind: per-class|softmax, "
                           f"temperatures: [...]}}, got {entry!r}")
        temperatures = np.asarray(entry["temperatures"], dtype=np.float64)
        if not np.all(np.isfinite(temperatures)) or np.any(temperatures <= 0):
            raise KitError(f"{where}: calibration: temperatures must be positive numbers")
        return cls(entry["kind"], temperatures)


def resolve_calibrate(calibrate: str, metric) -> tuple[bool, str]:
    """(whether to calibrate, one line saying why) for `--calibrate` and the competition's metric."""
    check_calibrate(calibrate)
    if calibrate == "none":
        return False, "calibration: none (--calibrate none)"
    if metric.calibrates:
        return True, f"calibration: temperature ({metric.label} rewards calibrated probabilities)"
    why = ("it is scored at thresholds fit on the scores" if metric.needs_thresholds
           else "it scores the order of the probabilities, which a temperature does not change")
    if calibrate == "temperature":
        raise KitError(f"--calibrate temperature: {metric.name} is not a log loss ({why}); use --calibrate auto or none")
    return False, f"calibration: none ({metric.label}: {why})"


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact where exp would overflow


def _softmax_of_log(p: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(p, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def apply_calibration(calibration: Calibration | None, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (rows x classes); the scores unchanged without a calibration."""
    if calibration is None:
        return scores
    scores = np.asarray(scores, dtype=np.float64)
    if calibration.kind == "softmax":
        return _softmax_of_log(scores, float(calibration.temperatures[0]))
    if len(calibration.temperatures) != scores.shape[1]:
        raise KitError(f"calibration of {len(calibration.temperatures)} classes applied to {scores.shape[1]}")
    return _sigmoid(_logit(scores) / calibration.temperatures)


def fit_calibration(metric, truth: np.ndarray, scores: np.ndarray) -> Calibration:
    """The temperatures that minimise the metric's log loss on (truth, scores): per class for a binary log loss
    (its classes do not interact, and a class weight only scales its term), one softmax temperature for a
    multi-class one."""
    from scipy.optimize import minimize_scalar

    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if metric.calibration == "softmax":
        actual = truth.argmax(axis=1)
        logs = np.log(np.clip(scores, EPS, 1.0))

        def loss(log_t: float) -> float:
            logits = logs / np.exp(log_t)
            logits -= logits.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(logits).sum(axis=1))
            return float(np.mean(log_norm - logits[np.arange(len(actual)), actual]))

        found = minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded")
        return Calibration("softmax", np.array([_kept(found, loss)]))
    logits = _logit(scores)
    temperatures = np.ones(scores.shape[1])
    for c in range(scores.shape[1]):
        z, y = logits[:, c], truth[:, c]
        if y.all() or not y.any():
            continue  # one kind of label only: sharper is always better, so no temperature is kept

        def loss(log_t: float, z=z, y=y) -> float:
            x = z / np.exp(log_t)
            # -log sigmoid(x) for positives, -log(1 - sigmoid(x)) for negatives, stably
            return float(np.mean(np.logaddexp(0.0, np.where(y, -x, x))))

        temperatures[c] = _kept(minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded"), loss)
    return Calibration("per-class", temperatures)


def _kept(found, loss) -> float:
    """The temperature found, or 1 where the search did not beat leaving the scores alone."""
    return float(np.exp(found.x)) if found.fun < loss(0.0) else 1.0
