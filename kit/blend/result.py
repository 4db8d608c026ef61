"""What a blend found: the members' and the blend's scores, weights, thresholds and predictions."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.blend.state import FittedBlend
from kit.data.spec import CompetitionSpec
from kit.score.thresholds import ThresholdFit


@dataclass
class Scores:
    """One member's or the blend's OOF scores at 0.5, at the fitted thresholds and cross-validated: the
    competition's metric (`overall`) and, per class, F-beta (the terms of a macro average; a per-class view of
    the same predictions for micro and samples averaging)."""

    at_05: np.ndarray
    tuned: np.ndarray
    cv: np.ndarray
    fit: ThresholdFit
    overall: dict[str, float]  # the metric: {"at_0.5": ..., "tuned": ..., "cv": ...}; for a probability metric
    # {"oof": ..., "calibrated": ..., "cv": ...} (no thresholds: the metric on the OOF probabilities, after the
    # calibration fit on them where there is one, and cross-validated)

    def summary(self) -> dict[str, float]:
        return dict(self.overall)


@dataclass
class Evaluation:
    """One method's fit on all OOF rows and its cross-validated scores (`kit.blend.blending.evaluate`)."""

    scores: Scores
    weights: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    fold_weights: dict[int, np.ndarray] = field(default_factory=dict)
    state: FittedBlend | None = None
    cv_predicted: np.ndarray | None = None  # each fold's labels from the fit without it (the cv score's)
    calibration: object | None = None  # kit.blend.calibration.Calibration fit on every OOF row


@dataclass
class BlendResult:
    """Everything `kit blend` found: the members' and the blend's scores, weights, thresholds, predictions."""

    spec: CompetitionSpec
    method: str
    threshold_mode: str
    min_positives: int
    no_empty: bool
    members: list[str]
    member_paths: list[Path]
    weights: np.ndarray
    member_scores: dict[str, Scores]
    scores: Scores
    truth: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    predicted: np.ndarray
    fold_weights: dict[int, np.ndarray] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    command: str | None = None
    stacker: str | None = None  # the second level of method 'stack'
    prior: np.ndarray | None = None  # test positive rates given for ratio thresholds (NaN: the train rate)
    twins: object | None = None  # kit.blend.twins.TwinUse, when a `kit dups` pairs file was used
    state: FittedBlend | None = None  # the fit, as `kit infer` applies it to a new test set
    folds: list[int] = field(default_factory=list)  # every member's folds (each fold's best.pt is a model)
    calibration: object | None = None  # kit.blend.calibration.Calibration, applied to `oof` and `test`
    calibration_note: str | None = None  # one line: whether and why the blend is calibrated

    @property
    def support(self) -> np.ndarray:
        return self.truth.sum(axis=0)

    @property
    def train_rates(self) -> np.ndarray:
        """Each class's share of positives among the OOF rows (what ratio thresholds match on a test set)."""
        return self.truth.mean(axis=0)

    @property
    def thresholds(self) -> np.ndarray:
        return self.scores.fit.thresholds
