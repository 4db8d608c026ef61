"""`kit infer`: a saved ensemble on a new test set -> a validated submission, without OOF files or labels."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.blend.calibration import apply_calibration
from kit.blend.methods import apply
from kit.blend.probability import predicted_labels
from kit.data.reading import CompetitionData
from kit.data.submission import submission_frame, validate_submission
from kit.infer.ensemble import Ensemble, load_ensemble
from kit.infer.stream import load_models, member_predictions, predict_models
from kit.io import atomic_path
from kit.score.thresholds import apply_thresholds, rate_thresholds
from kit.system import available_cores


@dataclass
class InferResult:
    path: Path
    ids: list[str]
    scores: np.ndarray  # blended, rows x classes
    thresholds: np.ndarray
    predicted: np.ndarray

    def describe(self) -> str:
        empty = int((~self.predicted.any(axis=1)).sum())
        return (f"wrote {self.path} ({len(self.ids)} rows, validated; {self.predicted.sum(axis=1).mean():.2f} labels "
                f"per image, {empty} empty)")


def test_thresholds(ensemble: Ensemble, scores: np.ndarray) -> np.ndarray:
    """The blend's thresholds; ratio thresholds are matched again on these test scores (as `kit blend` matched
    them on its test set), classes with few positives keeping the global threshold."""
    if ensemble.threshold_mode != "ratio":
        return ensemble.thresholds
    thresholds = rate_thresholds(scores, ensemble.train_rates)
    if ensemble.fallback:
        thresholds[ensemble.fallback] = ensemble.global_threshold
    return thresholds


def infer(blend: str | os.PathLike | Ensemble, data_dir: str | os.PathLike, out: str | os.PathLike = "submission.csv",
          *, device: str = "auto", workers: int | None = None, log: Callable[[str], None] = print) -> InferResult:
    """Predict `data_dir`'s test Ids (its sample submission) with every member's fold checkpoints and TTA,
    blend them with the saved method, weights and thresholds, apply the no-empty rule, and write `out`,
    validated before it is moved into place. Nothing is written into `data_dir`."""
    ensemble = blend if isinstance(blend, Ensemble) else load_ensemble(blend)
    data = CompetitionData(Path(data_dir), ensemble.spec)
    ids = data.test_ids()
    sample = data.root / ensemble.spec.sample_submission
    models = load_models(ensemble, device, log)
    outputs = predict_models(models, data, ids, available_cores() if workers is None else workers, log)
    scores = apply_calibration(ensemble.calibration, apply(ensemble.state, member_predictions(ensemble, models, outputs)))
    if ensemble.needs_thresholds:
        thresholds = test_thresholds(ensemble, scores)
        predicted = apply_thresholds(scores, thresholds, ensemble.no_empty)
    else:  # a probability metric: the same labels `kit blend` wrote from its blended test probabilities
        thresholds = ensemble.thresholds
        predicted = predicted_labels(ensemble.spec.scorer, scores, ensemble.spec.task, ensemble.no_empty)
    out = Path(out)
    with atomic_path(out) as tmp:
        submission_frame(ids, predicted, ensemble.spec).to_csv(tmp, index=False)
        validate_submission(tmp, sample, ensemble.spec)
    return InferResult(out, ids, scores, thresholds, predicted)
