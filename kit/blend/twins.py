"""Using `kit dups` pairs in a blend: average the predictions of duplicate test images, and (only when asked,
`--leak copy`) give a test image the labels of its closest train twin.

Test groups are the connected components of the test-test pairs: one image seen several times gets one
prediction, the mean of its copies' blended scores. The leak copies labels from the train or external image
of the closest train-test pair (ties: the first in the file); it uses the competition's own labels on its
own test images, which Kaggle allowed in HPA but is named for what it is.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kit.data.dups import groups_of

LEAKS = ("none", "copy")


@dataclass
class TwinUse:
    """What the pairs changed: test groups averaged, test Ids whose labels were copied (-> their train twin)."""

    path: str
    groups: int = 0
    averaged_rows: int = 0
    copied: dict[str, str] = field(default_factory=dict)
    test_pairs: list[tuple[str, str]] = field(default_factory=list)  # the test-test pairs averaged over
    copied_labels: dict[str, list[int]] = field(default_factory=dict)  # test Id -> the class indices it was given

    def to_dict(self) -> dict:
        """The JSON entry: what was done, and what `kit infer` needs to do it again without the pairs file or the
        train labels (the test-test pairs, and each copied test Id's class indices)."""
        return {"pairs_file": self.path, "test_groups_averaged": self.groups, "test_rows_averaged": self.averaged_rows,
                "labels_copied": dict(self.copied), "test_pairs": [list(pair) for pair in self.test_pairs],
                "copied_labels": {test_id: list(labels) for test_id, labels in self.copied_labels.items()}}


def pairs_within(pairs: pd.DataFrame, test_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs whose two Ids are both test Ids, in the file's order (what `average_groups` averages over)."""
    known = set(test_ids)
    both = pairs["Id1"].isin(known) & pairs["Id2"].isin(known)
    return list(zip(pairs["Id1"][both].astype(str), pairs["Id2"][both].astype(str)))


def pairs_frame(test_pairs: Sequence[Sequence[str]]) -> pd.DataFrame:
    """Saved test-test pairs back as the frame `average_groups` reads."""
    return pd.DataFrame({"Id1": [str(a) for a, _ in test_pairs], "Id2": [str(b) for _, b in test_pairs]})


def paste_labels(predicted: np.ndarray, copied_labels: dict[str, Sequence[int]], test_ids: Sequence[str]) -> np.ndarray:
    """The saved `--leak copy` step on a test set: each test Id in `copied_labels` gets exactly those classes."""
    out = predicted.copy()
    for row, test_id in enumerate(test_ids):
        if test_id in copied_labels:
            out[row] = False
            out[row, list(copied_labels[test_id])] = True
    return out


def average_groups(scores: np.ndarray, pairs: pd.DataFrame, test_ids: Sequence[str]) -> tuple[np.ndarray, int, int]:
    """Each group of duplicate test images gets its members' mean score; returns (scores, groups, rows)."""
    row_of = {sample_id: row for row, sample_id in enumerate(test_ids)}
    both = pairs["Id1"].isin(row_of) & pairs["Id2"].isin(row_of)
    i = pairs["Id1"][both].map(row_of).to_numpy(dtype=np.int64)
    j = pairs["Id2"][both].map(row_of).to_numpy(dtype=np.int64)
    if not len(i):
        return scores, 0, 0
    component = groups_of(len(test_ids), i, j)
    sizes = np.bincount(component)
    means = np.zeros((len(sizes), scores.shape[1]))
    np.add.at(means, component, scores)
    means /= sizes[:, None]
    grouped = sizes[component] > 1
    out = scores.copy()
    out[grouped] = means[component[grouped]]
    return out, int((sizes > 1).sum()), int(grouped.sum())


def closest_train_twin(pairs: pd.DataFrame, test_ids: Sequence[str], train_ids: Sequence[str]) -> dict[int, int]:
    """test row -> train row of its closest train (or external) twin among the pairs."""
    test_row = {sample_id: row for row, sample_id in enumerate(test_ids)}
    train_row = {sample_id: row for row, sample_id in enumerate(train_ids)}
    best: dict[int, tuple[float, int]] = {}
    for a, b, distance in zip(pairs["Id1"], pairs["Id2"], pairs["distance"]):
        if a in test_row and b in train_row:
            test, train = test_row[a], train_row[b]
        elif b in test_row and a in train_row:
            test, train = test_row[b], train_row[a]
        else:
            continue
        if test not in best or distance < best[test][0]:
            best[test] = (distance, train)
    return {test: train for test, (_, train) in best.items()}


def copy_labels(predicted: np.ndarray, truth: np.ndarray, pairs: pd.DataFrame, test_ids: Sequence[str],
                train_ids: Sequence[str], use: TwinUse) -> np.ndarray:
    """The `--leak copy` step: a test row with a train twin takes the twin's labels (`truth` rows follow
    `train_ids`)."""
    twins = closest_train_twin(pairs, test_ids, train_ids)
    use.copied = {test_ids[test]: train_ids[train] for test, train in twins.items()}
    use.copied_labels = {test_ids[test]: [int(c) for c in np.flatnonzero(truth[train])] for test, train in twins.items()}
    out = predicted.copy()
    for test, train in twins.items():
        out[test] = truth[train]
    return out
