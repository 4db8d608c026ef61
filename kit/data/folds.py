"""`kit folds`: k-fold multi-label iterative stratification (multiclass: scikit-learn's stratified k-fold on the one
class), optionally keeping groups together (a `--groups` file, the spec's `group_column`, or both)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from kit import io
from kit.data.reading import labels_to_matrix
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.layout import FOLDS_FILE, folds_summary


def assign_folds(labels: pd.DataFrame, num_classes: int, k: int = 5, seed: int = 42,
                 groups: pd.Series | None = None, multiclass: bool = False) -> np.ndarray:
    """Fold index (0..k-1) of each row of `labels` (columns Id, labels), stratified over all classes at once.

    With `groups` (a group name per row), whole groups are assigned, stratified by their members' label counts
    and sizes, and every member gets its group's fold, so duplicates of one image never straddle train and
    validation while folds keep about equal sizes and class counts.
    """
    if k < 2:
        raise KitError(f"--k must be at least 2, got {k}")
    matrix = labels_to_matrix(labels["labels"].tolist(), num_classes)
    if multiclass:
        return multiclass_folds(matrix.argmax(axis=1), k, seed, groups)
    if groups is not None:
        codes, unique_groups = pd.factorize(groups.to_numpy())
        if len(unique_groups) < k:
            raise KitError(f"cannot make {k} folds from {len(unique_groups)} groups")
        counts = np.zeros((len(unique_groups), num_classes), dtype=np.int64)
        np.add.at(counts, codes, matrix.astype(np.int64))
        return stratify_groups(counts, np.bincount(codes), k, seed)[codes]
    if len(matrix) < k:
        raise KitError(f"cannot make {k} folds from {len(matrix)} samples")
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = np.empty(len(matrix), dtype=np.int64)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(matrix)), matrix)):
        folds[held_out] = fold
    return folds


def multiclass_folds(classes: np.ndarray, k: int, seed: int, groups: pd.Series | None) -> np.ndarray:
    """One class per sample: scikit-learn's StratifiedKFold, or StratifiedGroupKFold keeping each group whole."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    units = len(classes) if groups is None else groups.nunique()
    if units < k:
        raise KitError(f"cannot make {k} folds from {units} {'samples' if groups is None else 'groups'}")
    if groups is None:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(classes, classes)
    else:
        codes = pd.factorize(groups.to_numpy())[0]
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(classes, classes, codes)
    folds = np.empty(len(classes), dtype=np.int64)
    for fold, (_, held_out) in enumerate(splits):
        folds[held_out] = fold
    return folds


def join_groups(*groupings: pd.Series | None) -> pd.Series | None:
    """One group per Id such that Ids sharing a group in any of `groupings` share one (connected components):
    a `--groups` file of near-duplicates and RANZCR's PatientID both hold."""
    given = [g for g in groupings if g is not None]
    if len(given) <= 1:
        return given[0] if given else None
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(given[0])
    rows, cols = [], []
    for grouping in given:
        codes = pd.factorize(grouping.to_numpy())[0]
        first = pd.Series(np.arange(n)).groupby(codes).transform("first").to_numpy()
        rows.append(np.arange(n))
        cols.append(first)  # each member joined to its group's first member
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _count, component = connected_components(graph, directed=False)
    return pd.Series(component.astype(str), index=given[0].index)


def stratify_groups(counts: np.ndarray, sizes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold of each group: iterative stratification (Sechidis et al. 2011, as iterstrat does for samples) with
    each group weighted by its members' label counts and its size. Hand-written because iterstrat counts a
    group as one sample, so folds of large groups came out unequal in both size and class counts."""
    rng = np.random.default_rng(seed)
    want = np.tile(counts.sum(axis=0) / k, (k, 1)).astype(np.float64)  # label counts each fold still needs
    want_size = np.full(k, sizes.sum() / k)
    fold_of = np.full(len(counts), -1, dtype=np.int64)
    left = counts.copy()

    def place(unit: int, label: int | None) -> None:
        need = want_size if label is None else want[:, label]
        best = np.flatnonzero(np.isclose(need, need.max()))
        if len(best) > 1:  # ties: the fold that needs the most samples, then chance
            best = best[np.isclose(want_size[best], want_size[best].max())]
        fold = int(rng.choice(best))
        fold_of[unit] = fold
        want[fold] -= counts[unit]
        want_size[fold] -= sizes[unit]
        left[unit] = 0

    while (left.sum(axis=0) > 0).any():
        remaining = left.sum(axis=0)
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))  # rarest label first
        for unit in rng.permutation(np.flatnonzero(left[:, label] > 0)):
            place(int(unit), label)
    for unit in rng.permutation(np.flatnonzero(fold_of < 0)):  # groups without labels: by size only
        place(int(unit), None)
    return fold_of


def read_groups(path: str | os.PathLike, ids: pd.Series) -> pd.Series:
    """`Id,group` file -> the group of each Id in `ids`; every Id must have exactly one group."""
    frame = io.read_csv(path, "groups file", dtype=str, keep_default_na=False)
    if not {"Id", "group"} <= set(frame.columns):
        raise KitError(f"{path}: line 1: expected columns Id,group")
    blank = np.flatnonzero((frame["group"].str.strip() == "").to_numpy())
    if len(blank):
        raise KitError(f"{path}: line {blank[0] + 2}: Id {frame['Id'][blank[0]]} has an empty group")
    duplicated = frame["Id"][frame["Id"].duplicated()]
    if len(duplicated):
        raise KitError(f"{path}: line {duplicated.index[0] + 2}: Id {duplicated.iloc[0]} appears twice")
    group_of = dict(zip(frame["Id"], frame["group"]))
    missing = [i for i in ids if i not in group_of]
    if missing:
        raise KitError(f"{path}: Id {missing[0]} of train.csv has no group ({len(missing)} missing)")
    return ids.map(group_of)


def fold_summary(labels: pd.DataFrame, folds: np.ndarray, spec: CompetitionSpec, k: int) -> pd.DataFrame:
    """Per-class sample counts in each fold (rows: classes; columns: fold0..fold{k-1}, total)."""
    matrix = labels_to_matrix(labels["labels"].tolist(), spec.num_classes)
    counts = np.stack([matrix[folds == f].sum(axis=0) for f in range(k)], axis=1)
    table = pd.DataFrame(counts, columns=[f"fold{f}" for f in range(k)])
    table.insert(0, "class", list(spec.classes))
    table.insert(0, "index", range(spec.num_classes))
    table["total"] = counts.sum(axis=1)
    samples = pd.DataFrame([["", "samples", *np.bincount(folds, minlength=k), len(folds)]], columns=table.columns)
    counts_columns = [*table.columns[2:]]
    return pd.concat([table, samples], ignore_index=True).astype({c: "int64" for c in counts_columns})


MAX_CLASS_WARNINGS = 30  # every class of a 28-class competition; a count beyond


def make_folds(labels: pd.DataFrame, spec: CompetitionSpec, out: str | os.PathLike = FOLDS_FILE,
               k: int = 5, seed: int = 42, groups_file: str | os.PathLike | None = None,
               label_groups: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Assign folds, write `out` (Id,fold) and its per-class summary beside it; return (folds, summary, warnings).

    `label_groups`: the group of each Id from the train CSV's `group_column` (indexed by Id); with `groups_file`
    too, both apply."""
    groups = read_groups(groups_file, labels["Id"]) if groups_file else None
    if label_groups is not None:
        # Ids without a group (an external source's) stand alone.
        column = labels["Id"].map(label_groups)
        column = column.where(column.notna(), "\0" + labels["Id"])
        groups = join_groups(groups, column)
    folds = assign_folds(labels, spec.num_classes, k=k, seed=seed, groups=groups, multiclass=spec.multiclass)
    frame = pd.DataFrame({"Id": labels["Id"], "fold": folds})
    summary = fold_summary(labels, folds, spec, k)
    warnings = [
        f"class {i} ({spec.classes[i]}) has {total} sample(s), fewer than {k} folds: some folds validate without it"
        for i, total in enumerate(summary["total"].iloc[: spec.num_classes]) if total < k
    ]
    if len(warnings) > MAX_CLASS_WARNINGS:  # iMet's 1,103 classes: a screenful of warnings says less than a count
        warnings = warnings[:MAX_CLASS_WARNINGS] + [
            f"... and {len(warnings) - MAX_CLASS_WARNINGS} more classes with fewer than {k} samples (see "
            f"{folds_summary(out)})"]
    io.write_csv(summary, folds_summary(out))
    io.write_csv(frame, out)
    return frame, summary, warnings


def read_folds(path: str | os.PathLike = FOLDS_FILE, train_ids: list[str] | None = None) -> pd.DataFrame:
    """Read `folds.csv` (Id,fold); with `train_ids`, every train Id must have exactly one fold."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: folds file not found (run `kit folds` first)")
    frame = io.read_csv(path, "folds file", dtype={"Id": str})
    if list(frame.columns[:2]) != ["Id", "fold"]:
        raise KitError(f"{path}: line 1: expected columns Id,fold")
    folds = pd.to_numeric(frame["fold"], errors="coerce")
    not_integer = folds.isna() | (folds != folds.round())
    if not_integer.any():
        bad = int(np.flatnonzero(not_integer.to_numpy())[0])
        raise KitError(f"{path}: line {bad + 2}: Id {frame['Id'][bad]}: fold is not an integer")
    frame["fold"] = folds.astype("int64")
    present = sorted(frame["fold"].unique())
    if present != list(range(len(present))):
        missing = sorted(set(range(max(present) + 1)) - set(present)) if present and min(present) >= 0 else []
        where = f"no fold {missing[0]}" if missing else f"fold {present[0]} is negative"
        raise KitError(f"{path}: folds must be numbered 0..k-1 with none empty, but {where} "
                       f"(found {', '.join(map(str, present))}); rerun `kit folds`")
    duplicated = frame["Id"][frame["Id"].duplicated()]
    if len(duplicated):
        raise KitError(f"{path}: line {duplicated.index[0] + 2}: Id {duplicated.iloc[0]} appears twice")
    if train_ids is not None:
        known = set(frame["Id"])
        missing = [i for i in train_ids if i not in known]
        if missing:
            raise KitError(f"{path}: Id {missing[0]} of train.csv has no fold ({len(missing)} missing); rerun `kit folds`")
    return frame
