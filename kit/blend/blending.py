"""`kit blend`: blend the models' out-of-fold predictions, tune thresholds, write a checked submission.

Gathering is in `kit.blend.gather`, the methods (mean, rank, weighted, hill) in `kit.blend.methods`, the
thresholds in `kit.score.thresholds`, tables, JSON and PNG in `kit.blend.report`. Every score is reported three ways: at 0.5, at thresholds tuned on
all of the OOF predictions (in-sample), and cross-validated over the folds (weights and thresholds fit on
k-1 folds, scored on the held-out one) so the user sees how much of the tuning gain is real.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.blend.gather import Member, gather
from kit.blend.methods import METHODS, Blender, check_method
from kit.blend.report import write_outputs
from kit.blend.result import BlendResult, Scores
from kit.blend.stack import STACKERS
from kit.blend.state import FittedBlend
from kit.blend.twins import LEAKS, TwinUse, average_groups, copy_labels, pairs_within
from kit.data.dups import read_pairs
from kit.data.folds import read_folds
from kit.data.reading import labels_to_matrix, read_labels, read_sample_ids
from kit.data.spec import CompetitionSpec
from kit.errors import KitError, check_name
from kit.layout import SUBMISSIONS_DIR
from kit.score.metrics import Metric, parse_metric
from kit.score.thresholds import apply_thresholds, check_mode, fit_thresholds, read_prior

__all__ = ["METHODS", "Blender", "BlendResult", "Scores", "blend_members", "blend_options", "blend_runs", "evaluate"]


@dataclass
class Evaluation:
    scores: Scores
    weights: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    fold_weights: dict[int, np.ndarray] = field(default_factory=dict)
    state: FittedBlend | None = None
    cv_predicted: np.ndarray | None = None  # each fold's labels from the fit without it (the cv score's)


def evaluate(blender: Blender, truth: np.ndarray, fold_of_row: np.ndarray, mode: str = "per-class",
             min_positives: int = 5, no_empty: bool = True, prior: np.ndarray | None = None,
             metric: Metric | str | None = None) -> Evaluation:
    """Fit weights and thresholds on all OOF rows, and again on each k-1 folds to score the held-out fold; every
    score and threshold is for the competition's `metric` (macro F1 by default).

    For a stacker (`blender.cross_fits`), the OOF scores shown and thresholded are cross-fitted (each fold's
    from a stacker fit on the other folds), and the thresholds applied to a held-out fold are fit on scores
    cross-fitted within the other folds alone (with 2 folds, on the other fold's in-sample scores): the
    held-out fold's labels reach neither.

    `prior` (ratio mode; test positive rates per class, NaN = the train rate) sets the test thresholds; the
    cross-validated score matches each held-out fold to the train rates, since the prior describes the test set."""
    metric = parse_metric(metric)
    fit_all = blender.fit(truth)
    weights = blender.member_weights(fit_all)
    state = blender.state(fit_all)  # before the per-fold refits below
    test = blender.test(fit_all)
    cv_scores = np.zeros(truth.shape)
    cv_predicted = np.zeros(truth.shape, dtype=bool)
    fold_weights = {}
    for fold in np.unique(fold_of_row):
        held, train = fold_of_row == fold, fold_of_row != fold
        if blender.fitted:
            # Fit from scratch: a warm start from `weights` would carry the held-out fold's labels in.
            fold_fit = blender.fit(truth[train], rows=train)
            fold_weights[int(fold)] = blender.member_weights(fold_fit)
            held_scores = blender.oof(fold_fit, held)
            # With 2 folds the other folds are one, which cannot be cross-fitted: its in-sample scores serve.
            inner = blender.cross_fits and len(np.unique(fold_of_row[train])) > 1
            train_scores = blender.cross_fitted(truth, fold_of_row, train) if inner else blender.oof(fold_fit, train)
        else:
            train_scores, held_scores = blender.oof(fit_all, train), blender.oof(fit_all, held)
        cv_scores[held] = held_scores
        # In ratio mode the held-out fold plays the part of the test set: its rates are matched, not its labels.
        fold_fit = fit_thresholds(truth[train], train_scores, mode, min_positives, target_scores=held_scores,
                                  metric=metric)
        cv_predicted[held] = apply_thresholds(held_scores, fold_fit.thresholds, no_empty)
    oof = cv_scores if blender.cross_fits else blender.oof(fit_all)
    fit = fit_thresholds(truth, oof, mode, min_positives, target_scores=test, prior=prior, metric=metric)
    predictions = {"at_0.5": apply_thresholds(oof, 0.5, no_empty),
                   "tuned": apply_thresholds(oof, fit.thresholds, no_empty), "cv": cv_predicted}
    scores = Scores(*(metric.per_class(truth, predictions[key]) for key in ("at_0.5", "tuned", "cv")), fit,
                    {key: metric.score(truth, predicted) for key, predicted in predictions.items()})
    return Evaluation(scores, weights, oof, test, fold_weights, state, cv_predicted)


def blend_members(members: Sequence[Member], truth: np.ndarray, fold_of_row: np.ndarray, spec: CompetitionSpec,
                  method: str = "mean", thresholds: str = "per-class", min_positives: int = 5,
                  no_empty: bool = True, stacker: str = "logistic", prior: np.ndarray | None = None) -> BlendResult:
    """Blend gathered members in memory (no files): score each member and the blend the same way."""
    check_method(method)
    check_mode(thresholds)
    if len(np.unique(fold_of_row)) < 2:
        raise KitError("the folds file has a single fold; cross-validated scores need at least 2")
    truth = np.asarray(truth, dtype=bool)
    oof = np.stack([member.oof for member in members])
    test = np.stack([member.test for member in members])
    metric = spec.scorer
    settings = dict(mode=thresholds, min_positives=min_positives, no_empty=no_empty, metric=metric)
    member_scores = {
        member.name: evaluate(Blender("mean", oof[i : i + 1], test[i : i + 1]), truth, fold_of_row, **settings).scores
        for i, member in enumerate(members)
    }
    blended = evaluate(Blender(method, oof, test, stacker, metric), truth, fold_of_row, **settings, prior=prior)
    return BlendResult(
        spec=spec, method=method, threshold_mode=thresholds, min_positives=min_positives, no_empty=no_empty,
        members=[member.name for member in members], member_paths=[member.path for member in members],
        weights=blended.weights, member_scores=member_scores, scores=blended.scores, truth=truth,
        oof=blended.oof, test=blended.test, predicted=apply_thresholds(blended.test, blended.scores.fit.thresholds,
                                                                      no_empty),
        fold_weights=blended.fold_weights, state=blended.state, stacker=stacker if method == "stack" else None,
        prior=prior, folds=[int(f) for f in np.unique(fold_of_row)],
    )


def use_twins(result: BlendResult, pairs: pd.DataFrame, pairs_name: str, test_ids: Sequence[str],
              train_ids: Sequence[str], leak: str = "none") -> None:
    """Average the blended scores of duplicate test images (then threshold again); with leak='copy', give
    test images with a train twin its labels."""
    result.test, groups, rows = average_groups(result.test, pairs, test_ids)
    result.twins = TwinUse(pairs_name, groups, rows, test_pairs=pairs_within(pairs, test_ids))
    result.predicted = apply_thresholds(result.test, result.thresholds, result.no_empty)
    if leak == "copy":
        result.predicted = copy_labels(result.predicted, result.truth, pairs, test_ids, train_ids, result.twins)


def truth_matrix(folds: pd.DataFrame, labels: pd.DataFrame, spec: CompetitionSpec, folds_name: str) -> np.ndarray:
    """The 0/1 labels of the folds file's Ids, in its order."""
    rows = pd.Index(labels["Id"]).get_indexer(folds["Id"])
    if (rows < 0).any():
        line = int(np.flatnonzero(rows < 0)[0])
        raise KitError(f"{folds_name}: line {line + 2}: Id {folds['Id'].iloc[line]} is not in the train labels")
    return labels_to_matrix(labels["labels"].iloc[rows].tolist(), spec.num_classes).astype(bool)


def blend_options(section: dict) -> dict:
    """The keyword options of `blend_runs` from a resolved `blend:` section (every field but where to write)."""
    return {key: value for key, value in section.items() if key not in ("out", "name")}


def blend_runs(run_dirs: Sequence[str | os.PathLike], spec: CompetitionSpec, folds_path: str | os.PathLike,
               sample_submission_path: str | os.PathLike, labels: str | os.PathLike | pd.DataFrame,
               out_dir: str | os.PathLike = SUBMISSIONS_DIR, name: str = "blend", *, method: str = "mean",
               thresholds: str = "per-class", min_positives: int = 5, no_empty: bool = True,
               allow_partial: bool = False, command: str | None = None, plot: bool = True,
               dups: str | os.PathLike | None = None, leak: str = "none", stacker: str = "logistic",
               prior: str | os.PathLike | None = None) -> BlendResult:
    """Gather the runs, blend, tune thresholds and write `<out_dir>/<name>.csv`, `.json` and `.png`.

    `labels` is train.csv (or a frame from `kit.data.reading.read_labels`). `dups`: a `kit dups` pairs file;
    the blended scores of duplicate test images are averaged, and with `leak='copy'` a test image with a
    train twin gets that twin's labels (see `kit.blend.twins`). `stacker`: the second level of
    `method='stack'` (logistic or boosting). `prior`: a CSV of class,rate test positive rates for
    `thresholds='ratio'` (`kit.score.thresholds.read_prior`). Every check runs before anything is
    written; the submission is validated before it is moved into place.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise KitError(f"--name {name!r}: expected a plain file name without folders")
    check_method(method)
    check_mode(thresholds)
    check_name(stacker, STACKERS, "stacker")
    if prior is not None and thresholds != "ratio":
        raise KitError(f"--prior sets test positive rates for --thresholds ratio, not {thresholds}")
    if leak not in LEAKS:
        raise KitError(f"--leak {leak!r}: expected one of {', '.join(LEAKS)}")
    if leak != "none" and dups is None:
        raise KitError(f"--leak {leak} needs the pairs of `kit dups` (--dups folds/dups_pairs.csv)")
    prior_rates = read_prior(prior, spec.classes) if prior is not None else None
    labels = labels if isinstance(labels, pd.DataFrame) else read_labels(labels, spec)
    sample_ids = read_sample_ids(sample_submission_path, spec)
    if not sample_ids:
        raise KitError(f"{sample_submission_path}: no Ids")
    folds = read_folds(folds_path, train_ids=labels["Id"].tolist())
    truth = truth_matrix(folds, labels, spec, str(folds_path))
    train_ids = folds["Id"].tolist()
    pairs = read_pairs(dups, [*labels["Id"], *sample_ids]) if dups is not None else None
    members, left_out = gather(run_dirs, spec, folds, sample_ids, allow_partial,
                               folds_name=str(folds_path), sample_name=Path(sample_submission_path).name)
    result = blend_members(members, truth, folds["fold"].to_numpy(), spec, method, thresholds, min_positives,
                           no_empty, stacker=stacker, prior=prior_rates)
    result.left_out = left_out
    if pairs is not None:
        use_twins(result, pairs, str(dups), sample_ids, train_ids, leak)
    result.command = command or (
        f"kit.blend.blending.blend_runs({[str(d) for d in run_dirs]!r}, folds_path={str(folds_path)!r}, "
        f"sample_submission_path={str(sample_submission_path)!r}, out_dir={str(out_dir)!r}, name={name!r}, "
        f"method={method!r}, thresholds={thresholds!r}, min_positives={min_positives}, no_empty={no_empty}, "
        f"allow_partial={allow_partial}, dups={None if dups is None else str(dups)!r}, leak={leak!r}, "
        f"stacker={stacker!r}, prior={None if prior is None else str(prior)!r})")
    result.files = write_outputs(result, Path(out_dir), name, sample_ids, sample_submission_path, plot=plot)
    return result
