"""The submission format, and the one validator that `kit blend` and `kit submit` both use."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kit import io
from kit.data.reading import CLASS_INDEX, LabelCodec, matrix_to_targets, read_sample_ids
from kit.data.spec import CompetitionSpec
from kit.errors import KitError


def submission_frame(ids: list[str], predicted: np.ndarray, spec: CompetitionSpec) -> pd.DataFrame:
    """Ids and an N x C 0/1 matrix -> the competition's submission frame (`Id,Predicted`, `image_name,tags`, ...),
    labels in its encoding (class indices or names) and separator, in class order."""
    return pd.DataFrame({spec.id_column: list(ids), spec.prediction_column: matrix_to_targets(predicted, spec)})


def validate_submission(path: str | os.PathLike, sample_submission: str | os.PathLike, spec: CompetitionSpec) -> int:
    """Check a submission file against `sample_submission.csv` and the spec; return its row count.

    Checks the columns, that every sample Id appears exactly once (and no other Id), and that every label
    is a known class (an index in range, or a class name, as the spec's label format says), written once; a
    byte-order mark is refused. Raises KitError naming the file, line and Id.
    """
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    with open(path, "rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":
            # The file is uploaded byte for byte, and not every scorer strips the mark from the first header.
            raise KitError(f"{path}: starts with a byte-order mark (as Excel writes); save it as plain UTF-8")
    expected = read_sample_ids(sample_submission, spec)
    frame = io.read_csv(path, dtype=str, keep_default_na=False)
    columns = [spec.id_column, spec.prediction_column]
    if list(frame.columns) != columns:
        raise KitError(f"{path}: line 1: expected columns {','.join(columns)}, found {','.join(map(str, frame.columns))}")
    expected_set = set(expected)
    codec = LabelCodec(spec)
    seen: set[str] = set()
    for row, (sample_id, predicted) in enumerate(zip(frame[spec.id_column], frame[spec.prediction_column]), start=2):
        if sample_id not in expected_set:
            raise KitError(f"{path}: line {row}: Id {sample_id} is not in {Path(sample_submission).name}")
        if sample_id in seen:
            raise KitError(f"{path}: line {row}: Id {sample_id} appears twice")
        seen.add(sample_id)
        labels = codec.split(predicted)
        for label in labels:
            if codec.names and label not in codec.index:
                raise KitError(f"{path}: line {row}: Id {sample_id}: label {label!r} is not one of the "
                               f"{spec.num_classes} class names")
            if not codec.names and (not CLASS_INDEX.fullmatch(label) or int(label) >= spec.num_classes):
                raise KitError(f"{path}: line {row}: Id {sample_id}: label {label!r} is not a class index 0..{spec.num_classes - 1}")
        if len(set(labels)) != len(labels):
            raise KitError(f"{path}: line {row}: Id {sample_id}: a label is repeated in {predicted!r}")
    missing = [sample_id for sample_id in expected if sample_id not in seen]
    if missing:
        raise KitError(f"{path}: {len(missing)} Id(s) of {Path(sample_submission).name} missing, first {missing[0]}")
    return len(frame)
