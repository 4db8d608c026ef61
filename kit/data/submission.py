"""Submissions: one writer per `submission_format`, registered by name, and the one validator that `kit blend`,
`kit infer` and `kit submit` all use.

- `labels`: `Id,Predicted`, each row the image's classes in the label encoding (thresholded for multi-label, the
  most probable class for multiclass);
- `wide`: the Id and one probability column per class, in the sample submission's column order;
- `long`: one row per `<image id><long_separator><class>` of the sample submission, in its order, the probability
  in `prediction_column`.
Rows follow the sample submission's order; its shape must be the format's.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kit import io
from kit.data.labels import CLASS_INDEX, LabelCodec, matrix_to_targets, split_long_ids
from kit.data.spec import CompetitionSpec
from kit.errors import KitError

SUM_TOLERANCE = 1e-3  # multiclass rows written with 6 decimals still sum to 1 within this


def _read_sample(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    frame = io.read_csv(path, "sample submission", dtype=str, keep_default_na=False)
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _first_twice(path: Path, ids: pd.Series, what: str = "Id") -> None:
    twice = ids[ids.duplicated()]
    if len(twice):
        first = twice.index[0]
        raise KitError(f"{path}: line {first + 2}: {what} {ids[first]} appears twice")


def check_sample_shape(path: Path, frame: pd.DataFrame, spec: CompetitionSpec) -> None:
    """The sample submission's columns are those of the spec's `submission_format`, or one line saying which."""
    columns, fmt = list(frame.columns), spec.submission_format
    if spec.id_column not in columns:
        raise KitError(f"{path}: line 1: no '{spec.id_column}' column")
    if fmt == "wide":
        classes = [c for c in columns if c != spec.id_column]
        if sorted(classes) != sorted(spec.classes):
            extra = sorted(set(classes) - set(spec.classes))
            missing = sorted(set(spec.classes) - set(classes))
            detail = (f"no column for class {missing[0]!r}" if missing else f"column {extra[0]!r} names no class")
            raise KitError(f"{path}: line 1: columns {','.join(columns)} are not the wide shape that "
                           f"submission_format: wide asks ({spec.id_column} + one column per class): {detail}")
        return
    expected = [spec.id_column, spec.prediction_column]
    if columns != expected:
        hint = " (one column per class: submission_format: wide?)" if len(columns) > 2 else ""
        raise KitError(f"{path}: line 1: columns {','.join(columns)} are not the {fmt} shape that "
                       f"submission_format: {fmt} asks ({','.join(expected)}){hint}")
    if fmt == "long":
        _images, classes = split_long_ids(frame[spec.id_column].str.strip(), spec)
        bad = np.flatnonzero(classes.to_numpy() < 0)
        if len(bad):
            raise KitError(f"{path}: line {bad[0] + 2}: Id {frame[spec.id_column].iloc[bad[0]]} does not end in "
                           f"{spec.long_separator}<class>: not the long shape that submission_format: long asks")


def sample_rows(path: str | os.PathLike, spec: CompetitionSpec) -> tuple[pd.DataFrame, list[str]]:
    """The sample submission (shape checked) and its image Ids, in order (for `long`: each image once, in the
    order it first appears, and every image holding every class exactly once)."""
    path = Path(path)
    frame = _read_sample(path)
    check_sample_shape(path, frame, spec)
    cells = frame[spec.id_column].str.strip()
    if spec.submission_format != "long":
        _first_twice(path, cells)
        return frame, cells.tolist()
    images, classes = split_long_ids(cells, spec)
    _first_twice(path, cells)
    codes, order = pd.factorize(images)
    counts = np.bincount(codes, minlength=len(order))
    short = np.flatnonzero(counts != len(spec.classes))
    if len(short):
        present = set(classes[codes == short[0]])
        missing = next(name for c, name in enumerate(spec.classes) if c not in present)
        raise KitError(f"{path}: image {order[short[0]]} has no row for class {missing!r}")
    return frame, [str(image) for image in order]


def read_sample_ids(path: str | os.PathLike, spec: CompetitionSpec) -> list[str]:
    """The test image Ids of the sample submission, in order; duplicates, a missing Id column or a shape other
    than `submission_format`'s are errors."""
    return sample_rows(path, spec)[1]


# ---------------------------------------------------------------- writers


def _sum_to_one(spec: CompetitionSpec) -> bool:
    """Whether probability rows must sum to 1: a multiclass competition scored by a loss on probabilities (a
    multi-class log loss); rank metrics such as AUC score any monotone scores, and rank blends give those."""
    return spec.multiclass and spec.submission_format != "labels" and not getattr(spec.scorer, "higher_is_better",
                                                                                   True)


def _labels_frame(ids, scores, spec, sample, predicted):
    if spec.multiclass:
        scores = np.asarray(scores if predicted is None else predicted, dtype=np.float64)
        predicted = np.zeros(scores.shape, dtype=np.uint8)
        predicted[np.arange(len(scores)), np.argmax(scores, axis=1)] = 1
    elif predicted is None:
        raise KitError("submission_format: labels of a multi-label competition needs thresholded labels")
    return pd.DataFrame({spec.id_column: list(ids), spec.prediction_column: matrix_to_targets(predicted, spec)})


def _probabilities(scores, spec) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if _sum_to_one(spec):
        scores = scores / scores.sum(axis=1, keepdims=True)  # Kaggle's multi-class log loss renormalises too
    return scores


def _wide_frame(ids, scores, spec, sample, predicted):
    scores = _probabilities(scores, spec)
    frame = pd.DataFrame(scores, columns=list(spec.classes))
    frame.insert(0, spec.id_column, list(ids))
    columns = list(sample.columns) if sample is not None else [spec.id_column, *spec.classes]
    return frame[columns]


def _long_frame(ids, scores, spec, sample, predicted):
    scores = _probabilities(scores, spec)
    cells = sample[spec.id_column].str.strip()
    images, classes = split_long_ids(cells, spec)
    row_of = {sample_id: row for row, sample_id in enumerate(ids)}
    rows = images.map(row_of)
    if rows.isna().any():
        raise KitError(f"image {images[rows.isna()].iloc[0]} of the sample submission has no predictions")
    values = scores[rows.to_numpy(dtype=np.int64), classes.to_numpy()]
    return pd.DataFrame({spec.id_column: cells.to_numpy(), spec.prediction_column: values})


WRITERS = {"labels": _labels_frame, "wide": _wide_frame, "long": _long_frame}


def submission_frame(ids: Sequence[str], predicted: np.ndarray | None, spec: CompetitionSpec,
                     scores: np.ndarray | None = None, sample: pd.DataFrame | None = None) -> pd.DataFrame:
    """The submission frame in the spec's `submission_format`: `predicted` is the N x C 0/1 matrix of labels
    (thresholded; `labels` of a multi-label competition), `scores` the N x C probabilities (every other format;
    multiclass `labels` takes the most probable class), rows in `ids` order (the sample submission's)."""
    if spec.submission_format not in WRITERS:
        raise KitError(f"competition.submission_format: unknown {spec.submission_format!r}; expected one of "
                       f"{', '.join(WRITERS)}")
    if spec.submission_format == "long" and sample is None:
        raise KitError("submission_format: long is written in the sample submission's rows: give the sample")
    values = scores if scores is not None else predicted
    if spec.submission_format != "labels" and scores is None:
        raise KitError(f"submission_format: {spec.submission_format} writes probabilities: give the scores")
    return WRITERS[spec.submission_format](ids, values, spec, sample, predicted)


def write_submission(path: str | os.PathLike, ids: Sequence[str], spec: CompetitionSpec,
                     sample_submission: str | os.PathLike, *, scores: np.ndarray | None = None,
                     predicted: np.ndarray | None = None, thresholds: np.ndarray | float | None = None) -> Path:
    """Write and validate a submission in the spec's format, renamed into place only when valid. For `labels`
    of a multi-label competition give `predicted` (0/1) or `thresholds` (a sample holds class c when its score
    is >= thresholds[c]); every other format writes `scores`."""
    if predicted is None and thresholds is not None and spec.submission_format == "labels" and not spec.multiclass:
        predicted = (np.asarray(scores) >= np.asarray(thresholds)).astype(np.uint8)
    sample = _read_sample(sample_submission) if spec.submission_format != "labels" else None
    frame = submission_frame(ids, predicted, spec, scores=scores, sample=sample)
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
        validate_submission(tmp, sample_submission, spec)
    return Path(path)


# ---------------------------------------------------------------- validation


def validate_submission(path: str | os.PathLike, sample_submission: str | os.PathLike, spec: CompetitionSpec) -> int:
    """Check a submission file against the sample submission and the spec; return its row count.

    Every sample Id (or Id-class row, for `long`) exactly once and no other, the sample's columns, labels known
    (an index in range or a class name, each once) or probabilities finite and inside [0, 1] (rows summing to 1
    where a multiclass loss scores them); a byte-order mark is refused. Raises KitError naming the file, line and
    Id.
    """
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    with open(path, "rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":
            # The file is uploaded byte for byte, and not every scorer strips the mark from the first header.
            raise KitError(f"{path}: starts with a byte-order mark (as Excel writes); save it as plain UTF-8")
    sample, _image_ids = sample_rows(sample_submission, spec)
    frame = io.read_csv(path, dtype=str, keep_default_na=False)
    columns = list(sample.columns)
    found = [str(column) for column in frame.columns]
    if spec.submission_format == "wide" and sorted(found) == sorted(columns):
        columns = found  # any column order is the same submission
    if found != columns:
        missing = [column for column in columns if column not in found]
        what = f": no column {missing[0]!r}" if missing else ""
        raise KitError(f"{path}: line 1: expected columns {','.join(columns)}, found {','.join(found)}{what}")
    ids = frame[spec.id_column].str.strip()
    expected = sample[spec.id_column].str.strip()
    _check_rows(path, ids, expected, Path(sample_submission).name)
    if spec.submission_format == "labels":
        _check_labels(path, ids, frame[spec.prediction_column], spec)
    else:
        value_columns = list(spec.classes) if spec.submission_format == "wide" else [spec.prediction_column]
        values = _check_probabilities(path, ids, frame, value_columns)
        if spec.submission_format == "wide" and _sum_to_one(spec):
            sums = values.sum(axis=1)
            off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
            if len(off):
                raise KitError(f"{path}: line {off[0] + 2}: Id {ids.iloc[off[0]]}: probabilities sum to "
                               f"{sums[off[0]]:.6g}, not 1 (a multiclass row)")
    return len(frame)


def _check_rows(path: Path, ids: pd.Series, expected: pd.Series, sample_name: str) -> None:
    known = set(expected)
    unknown = np.flatnonzero(~ids.isin(known).to_numpy())
    if len(unknown):
        raise KitError(f"{path}: line {unknown[0] + 2}: Id {ids.iloc[unknown[0]]} is not in {sample_name}")
    twice = np.flatnonzero(ids.duplicated().to_numpy())
    if len(twice):
        raise KitError(f"{path}: line {twice[0] + 2}: Id {ids.iloc[twice[0]]} appears twice")
    if len(ids) != len(expected):
        missing = expected[~expected.isin(set(ids))]
        raise KitError(f"{path}: {len(missing)} Id(s) of {sample_name} missing, first {missing.iloc[0]}")


def _check_probabilities(path: Path, ids: pd.Series, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = np.empty((len(frame), len(columns)), dtype=np.float64)
    for c, column in enumerate(columns):
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0) | (numbers > 1))
        if len(bad):
            row = bad[0]
            raise KitError(f"{path}: line {row + 2}: Id {ids.iloc[row]}: {column} {frame[column].iloc[row]!r} is "
                           "not a probability (a finite number in [0, 1])")
        values[:, c] = numbers
    return values


def _check_labels(path: Path, ids: pd.Series, cells: pd.Series, spec: CompetitionSpec) -> None:
    codec = LabelCodec(spec)
    for row, (sample_id, predicted) in enumerate(zip(ids, cells), start=2):
        labels = codec.split(predicted)
        for label in labels:
            if codec.names and label not in codec.index:
                raise KitError(f"{path}: line {row}: Id {sample_id}: label {label!r} is not one of the "
                               f"{spec.num_classes} class names")
            if not codec.names and (not CLASS_INDEX.fullmatch(label) or int(label) >= spec.num_classes):
                raise KitError(f"{path}: line {row}: Id {sample_id}: label {label!r} is not a class index "
                               f"0..{spec.num_classes - 1}")
        if len(set(labels)) != len(labels):
            raise KitError(f"{path}: line {row}: Id {sample_id}: a label is repeated in {predicted!r}")
        if spec.multiclass and len(labels) != 1:
            raise KitError(f"{path}: line {row}: Id {sample_id}: {len(labels)} labels; a multiclass competition "
                           "submits exactly one")
