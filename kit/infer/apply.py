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
from kit.blend.twins import average_groups, pairs_frame, paste_labels
from kit.data.reading import CompetitionData
from kit.data.submission import write_submission
from kit.infer.ensemble import Ensemble, load_ensemble
from kit.infer.stream import load_models, member_predictions, predict_models
from kit.score.thresholds import apply_thresholds, rate_thresholds
from kit.system import available_cores


@dataclass
class InferResult:
    path: Path
    ids: list[str]
    scores: np.ndarray  # blended, rows x classes
    thresholds: np.ndarray
    predicted: np.ndarray
    probabilities: bool = False  # the submission holds the scores (wide or long), not labels

    def describe(self) -> str:
        if self.probabilities:
            return (f"wrote {self.path} ({len(self.ids)} images, validated; probabilities from "
                    f"{self.scores.min():.4f} to {self.scores.max():.4f}, mean {self.scores.mean():.4f})")
        empty = int((~self.predicted.any(axis=1)).sum())
        return (f"wrote {self.path} ({len(self.ids)} rows, validated; {self.predicted.sum(axis=1).mean():.2f} labels "
                f"per image, {empty} empty)")


def test_thresholds(ensemble: Ensemble, scores: np.ndarray) -> np.ndarray:
    """The blend's thresholds; ratio thresholds are matched again on these test scores to the rates `kit blend`
    matched on its test set (its --prior's where given, else the train rates), classes with few positives keeping
    the global threshold."""
    if ensemble.threshold_mode != "ratio":
        return ensemble.thresholds
    thresholds = rate_thresholds(scores, ensemble.ratio_rates if ensemble.ratio_rates is not None
                                 else ensemble.train_rates)
    if ensemble.fallback:
        thresholds[ensemble.fallback] = ensemble.global_threshold
    return thresholds


def labels_of(ensemble: Ensemble, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The 0/1 predictions `kit blend` wrote: thresholded for an F-score; for a probability metric the argmax
    class (multiclass) or the classes at 0.5 (`kit.blend.probability.predicted_labels`)."""
    if ensemble.needs_thresholds:
        return apply_thresholds(scores, thresholds, ensemble.no_empty)
    return predicted_labels(ensemble.spec.scorer, scores, ensemble.spec.task, ensemble.no_empty)


def use_duplicates(ensemble: Ensemble, scores: np.ndarray, thresholds: np.ndarray, ids: list[str],
                   log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    """Thresholded predictions, with the blend's `--dups` step done again: the saved test-test pairs of these Ids
    averaged, and with `--leak copy` the saved labels given to the test Ids they were copied to."""
    if ensemble.twin_pairs is None:
        return scores, labels_of(ensemble, scores, thresholds)
    scores, groups, rows = average_groups(scores, pairs_frame(ensemble.twin_pairs), ids)
    predicted = labels_of(ensemble, scores, thresholds)
    copied = ensemble.copied_labels or {}
    if copied:
        predicted = paste_labels(predicted, copied, ids)
    log(f"duplicates (from {ensemble.source}): {groups} test groups averaged ({rows} rows)"
        + (f"; labels copied to {sum(i in copied for i in ids)} test images" if copied else ""))
    return scores, predicted


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
    # thresholds are matched before duplicates are averaged, as `kit blend` does; a probability metric has none
    thresholds = test_thresholds(ensemble, scores) if ensemble.needs_thresholds else ensemble.thresholds
    scores, predicted = use_duplicates(ensemble, scores, thresholds, ids, log)
    out = write_submission(out, ids, ensemble.spec, sample, scores=scores, predicted=predicted)
    return InferResult(out, ids, scores, thresholds, predicted,
                       probabilities=ensemble.spec.submission_format != "labels")
