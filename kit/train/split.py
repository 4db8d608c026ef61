"""A fold of the folds file as the training and validation Ids and targets of one run."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.data.folds import read_folds
from kit.data.reading import CompetitionData, labels_to_matrix
from kit.errors import KitError


@dataclass
class FoldSplit:
    train_ids: list[str]
    train_targets: np.ndarray
    val_ids: list[str]
    val_targets: np.ndarray



def fold_split(data: CompetitionData, folds_path, fold: int) -> FoldSplit:
    labels = data.train_labels()
    folds = read_folds(folds_path, labels["Id"].tolist())
    available = sorted(int(f) for f in folds["fold"].unique())
    if fold not in available:
        raise KitError(f"{folds_path}: no fold {fold} (it has folds {', '.join(map(str, available))})")
    fold_of = labels["Id"].map(dict(zip(folds["Id"], folds["fold"]))).to_numpy()
    matrix = labels_to_matrix(labels["labels"].tolist(), data.spec.num_classes)
    is_val = fold_of == fold
    ids = labels["Id"].to_numpy()
    return FoldSplit(ids[~is_val].tolist(), matrix[~is_val], ids[is_val].tolist(), matrix[is_val])


def fold_numbers(value: str | int, folds_path) -> list[int]:
    """'all' -> every fold of folds.csv; otherwise the one fold number."""
    if str(value) != "all":
        try:
            return [int(value)]
        except ValueError:
            raise KitError(f"--fold {value!r}: expected a fold number or 'all'") from None
    return sorted(int(f) for f in read_folds(folds_path)["fold"].unique())
