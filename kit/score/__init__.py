"""The competition's metric (F-scores, AUC, AP, log losses, accuracy) and the thresholds that turn probabilities into labels.

>>> import numpy as np
>>> from kit.score import macro_f1
>>> round(macro_f1(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.4, 0.7]])), 3)
1.0
"""
from kit.exports import lazy_exports

EXPORTS = {
    "Metric": "metrics", "parse_metric": "metrics", "macro_f1": "metrics", "f1_per_class": "metrics",
    "best_thresholds": "metrics", "best_global_threshold": "metrics", "history_metric": "metrics",
    "check_task": "metrics", "metric_names": "metrics",
    "ProbabilityMetric": "probability", "PROBABILITY_METRICS": "probability",
    "MODES": "thresholds", "ThresholdFit": "thresholds", "fit_thresholds": "thresholds",
    "apply_thresholds": "thresholds", "check_mode": "thresholds",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
