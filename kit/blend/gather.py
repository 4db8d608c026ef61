"""Gathering each model's predictions from `runs/<model>/fold<k>/{oof,test}.csv`, with every check.

A model's OOF predictions must cover every Id of folds.csv exactly once, each in the fold that folds.csv
gives it (an Id predicted by a model that trained on it would leak); its test predictions must cover every
Id of sample_submission.csv once per fold, and are averaged over folds.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit import io
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.layout import FoldRun, fold_dir_name, fold_dirs
from kit.layout import model_dirs as models_under


@dataclass
class Member:
    """One model's predictions: OOF rows in folds.csv order, test rows in sample_submission order."""

    name: str
    path: Path
    oof: np.ndarray
    test: np.ndarray


def model_dirs(run_dirs: Sequence[str | os.PathLike]) -> list[Path]:
    """Each argument is a model folder (holding fold<k>/) or a runs root (holding model folders)."""
    found: list[Path] = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise KitError(f"{run_dir}: run folder not found")
        if fold_dirs(run_dir):
            found.append(run_dir)
            continue
        children = models_under(run_dir)
        if not children:
            raise KitError(f"{run_dir}: no runs found (expected {run_dir}/<model>/fold<k>/oof.csv)")
        found.extend(children)
    unique = {path.resolve(): path for path in found}
    return list(unique.values())


def member_names(paths: Sequence[Path]) -> list[str]:
    """The folder name of each model; where two share one, their paths."""
    names = [path.name for path in paths]
    return [str(path) if names.count(path.name) > 1 else path.name for path in paths]


def read_predictions(path: Path, spec: CompetitionSpec, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Read `Id` + one probability column per class; returns (ids, N x C float64 in spec.classes order)."""
    prefix = f"{path} ({where})"
    try:
        frame = io.read_csv(path, dtype={spec.id_column: str})
    except KitError as err:
        raise KitError(str(err).replace(str(path), prefix, 1)) from None
    classes = list(spec.classes)
    columns = [str(column) for column in frame.columns]
    if spec.id_column not in columns or sorted(columns) != sorted([spec.id_column, *classes]):
        missing = [c for c in [spec.id_column, *classes] if c not in columns]
        extra = [c for c in columns if c not in classes and c != spec.id_column]
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unexpected {', '.join(map(repr, extra))}"] if extra else [])
        raise KitError(f"{prefix}: line 1: columns do not match {spec.id_column} + the spec's "
                       f"{len(classes)} classes: {'; '.join(parts) or 'a column is repeated'}")
    ids = frame[spec.id_column]
    if ids.isna().any():
        raise KitError(f"{prefix}: line {int(np.flatnonzero(ids.isna())[0]) + 2}: empty {spec.id_column}")
    duplicated = np.flatnonzero(ids.duplicated().to_numpy())
    if len(duplicated):
        raise KitError(f"{prefix}: line {duplicated[0] + 2}: Id {ids.iloc[duplicated[0]]} appears twice")
    raw = frame[classes]
    text = [column for column in classes if not pd.api.types.is_numeric_dtype(raw[column])]
    numeric = raw.assign(**{column: pd.to_numeric(raw[column], errors="coerce") for column in text}) if text else raw
    values = numeric.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((values >= 0) & (values <= 1))  # also catches NaN and non-numbers
    if bad.any():
        row, column = np.argwhere(bad)[0]
        original = raw.iat[row, column]
        if pd.isna(original):
            problem = "is missing (NaN)"
        elif np.isnan(values[row, column]):
            problem = f"{original!r} is not a number"
        else:
            problem = f"{values[row, column]:g} is outside [0, 1]"
        raise KitError(f"{prefix}: line {row + 2}: Id {ids.iloc[row]}: probability of class "
                       f"'{classes[column]}' {problem}")
    return ids.to_numpy(dtype=str), values


def gather_member(model_dir: Path, name: str, spec: CompetitionSpec, folds: pd.DataFrame,
                  sample_ids: Sequence[str], folds_name: str = "folds.csv",
                  sample_name: str = "sample_submission.csv") -> Member:
    """Read and check every fold of one model (see the module docstring for the rules)."""
    train_index = pd.Index(folds["Id"])
    fold_of_row = folds["fold"].to_numpy()
    test_index = pd.Index(list(sample_ids))
    expected = sorted(int(f) for f in np.unique(fold_of_row))
    found = fold_dirs(model_dir)
    unknown = sorted(set(found) - set(expected))
    if unknown:
        raise KitError(f"{found[unknown[0]]} (model {name}): fold {unknown[0]} is not a fold of {folds_name} "
                       f"(folds {', '.join(map(str, expected))})")
    oof = np.zeros((len(train_index), spec.num_classes))
    test = np.zeros((len(test_index), spec.num_classes))
    for fold in expected:
        run = FoldRun(model_dir / fold_dir_name(fold))
        where = f"model {name}, fold {fold}"
        path = run.oof
        ids, values = read_predictions(path, spec, where)
        rows = train_index.get_indexer(ids)
        misplaced = (rows < 0) | (fold_of_row[rows] != fold)
        if misplaced.any():
            line = int(np.flatnonzero(misplaced)[0])
            if rows[line] < 0:
                raise KitError(f"{path} ({where}): line {line + 2}: Id {ids[line]} is not in {folds_name}")
            raise KitError(f"{path} ({where}): line {line + 2}: Id {ids[line]} belongs to fold "
                           f"{fold_of_row[rows[line]]} in {folds_name}, not fold {fold} (predicted by a model "
                           "that trained on it?)")
        wanted = np.flatnonzero(fold_of_row == fold)
        if len(rows) < len(wanted):
            missing = np.setdiff1d(wanted, rows)
            raise KitError(f"{path} ({where}): Id {train_index[missing[0]]} of fold {fold} in {folds_name} "
                           f"has no prediction ({len(missing)} missing)")
        oof[rows] = values

        path = run.test
        ids, values = read_predictions(path, spec, where)
        rows = test_index.get_indexer(ids)
        if (rows < 0).any():
            line = int(np.flatnonzero(rows < 0)[0])
            raise KitError(f"{path} ({where}): line {line + 2}: Id {ids[line]} is not in {sample_name}")
        if len(rows) < len(test_index):
            missing = np.setdiff1d(np.arange(len(test_index)), rows)
            raise KitError(f"{path} ({where}): Id {test_index[missing[0]]} of {sample_name} has no prediction "
                           f"({len(missing)} missing)")
        test[rows] += values
    return Member(name, model_dir, oof, test / len(expected))


def gather(run_dirs: Sequence[str | os.PathLike], spec: CompetitionSpec, folds: pd.DataFrame,
           sample_ids: Sequence[str], allow_partial: bool = False, folds_name: str = "folds.csv",
           sample_name: str = "sample_submission.csv") -> tuple[list[Member], list[tuple[str, str]]]:
    """Every model under `run_dirs`; returns (members, left_out). A model that fails a check is an error,
    or with `allow_partial` is left out with the reason."""
    paths = model_dirs(run_dirs)
    members, left_out = [], []
    for path, name in zip(paths, member_names(paths)):
        try:
            members.append(gather_member(path, name, spec, folds, sample_ids, folds_name, sample_name))
        except KitError as err:
            if not allow_partial:
                raise
            left_out.append((name, str(err)))
    if not members:
        raise KitError(f"no complete model to blend among {len(paths)} found; first problem: {left_out[0][1]}")
    return members, left_out
