"""Label files: one codec per `label_format`, registered by name, each reading a train CSV into one frame.

Every codec returns the same thing, a frame of `Id` (str, the image id) and `labels` (sorted class indices), and
checks what its format promises, naming the file, the line and the Id of the first problem:
- `indices` / `names`: the target column holds class indices or class names joined by the label separator;
- `wide`: one 0/1 column per class, headed by the class name (Plant Pathology, RANZCR);
- `long`: one row per image and class, the id cell `<image id><long_separator><class>`, the target 0 or 1; every
  class of every image exactly once (RSNA).
With `task: multiclass` each image holds exactly one class, whatever the format.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from kit import io
from kit.data.spec import CompetitionSpec, check_classes, check_names
from kit.errors import KitError

CLASS_INDEX = re.compile(r"[0-9]+")  # str.isdigit() would accept other scripts' digits, which int() rejects


class LabelCodec:
    """Reads and writes the cells of a label column: class indices or class names, joined by a separator."""

    def __init__(self, spec: CompetitionSpec):
        self.classes = spec.classes
        self.names = spec.label_format == "names"
        self.separator = spec.label_separator
        self.index = {name: i for i, name in enumerate(spec.classes)}
        self.column = spec.target_column

    def split(self, text: str) -> list[str]:
        text = str(text)
        # A space separator means any run of whitespace, as str.split() reads it.
        parts = text.split() if not self.separator.strip() else [part.strip() for part in text.split(self.separator)]
        return [part for part in parts if part]

    def parse(self, text: str) -> list[int]:
        """'25 0' (or 'clear primary') -> sorted class indices; raises ValueError with the reason."""
        parts = self.split(text)
        if not parts:
            raise ValueError(f"empty {self.column}")
        labels = []
        for part in parts:
            if self.names:
                if part not in self.index:
                    raise ValueError(f"unknown label {part!r} (not one of the {len(self.classes)} classes)")
                labels.append(self.index[part])
                continue
            if not CLASS_INDEX.fullmatch(part):
                raise ValueError(f"label {part!r} is not an integer")
            label = int(part)
            if not 0 <= label < len(self.classes):
                raise ValueError(f"label {label} is out of range 0..{len(self.classes) - 1}")
            labels.append(label)
        if len(set(labels)) != len(labels):
            raise ValueError(f"label repeated in {text!r}")
        return sorted(labels)

    def format(self, labels: Sequence[int]) -> str:
        return self.separator.join(self.classes[c] if self.names else str(c) for c in labels)


def labels_to_matrix(labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Lists of class indices -> an N x num_classes 0/1 uint8 matrix."""
    matrix = np.zeros((len(labels), num_classes), dtype=np.uint8)
    for row, sample_labels in enumerate(labels):
        matrix[row, list(sample_labels)] = 1
    return matrix


def matrix_to_targets(matrix: np.ndarray, spec: CompetitionSpec | None = None) -> list[str]:
    """An N x C 0/1 matrix -> each row's classes in the spec's encoding ('' for none): class indices or names,
    in class order, joined by the label separator (space-separated indices without a spec)."""
    matrix = np.asarray(matrix)
    if spec is None:
        return [" ".join(str(c) for c in np.flatnonzero(row)) for row in matrix]
    codec = LabelCodec(spec)
    return [codec.format(np.flatnonzero(row)) for row in matrix]


def _check_multiclass(path: Path, line_no: int, sample_id: str, labels: Sequence[int], spec: CompetitionSpec) -> None:
    if spec.multiclass and len(labels) != 1:
        named = ", ".join(spec.classes[c] for c in labels) or "none"
        raise KitError(f"{path}: line {line_no}: Id {sample_id}: {len(labels)} labels ({named}) for one image; "
                       "task: multiclass wants exactly one")


def _open_csv(path: Path):
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    return open(path, newline="", encoding="utf-8-sig")


def _rows(path: Path, spec: CompetitionSpec, needed: Sequence[str], header_only: bool = False):
    """(header, rows as (line number, cells)) of a labels CSV, with the header holding `needed` and every row its
    width (no rows with `header_only`)."""
    with _open_csv(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise KitError(f"{path}: empty file, expected a header '{','.join(needed)}'")
            header = [column.strip() for column in header]
            missing = [column for column in needed if column not in header]
            if missing:
                raise KitError(f"{path}: line 1: expected columns '{','.join(needed)}', found {','.join(header)!r} "
                               f"(no {missing[0]!r})")
            rows = []
            for line_no, row in enumerate(() if header_only else reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise KitError(f"{path}: line {line_no}: expected {len(header)} fields, found {len(row)}")
                rows.append((line_no, row))
        except UnicodeDecodeError as err:
            raise KitError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    return header, rows


def _frame(path: Path, ids: list[str], labels: list[list[int]]) -> pd.DataFrame:
    if not ids:
        raise KitError(f"{path}: no rows")
    return pd.DataFrame({"Id": ids, "labels": labels})


def _unique_id(path: Path, line_no: int, sample_id: str, seen: dict, spec: CompetitionSpec) -> None:
    if not sample_id:
        raise KitError(f"{path}: line {line_no}: empty {spec.id_column}")
    if sample_id in seen:
        raise KitError(f"{path}: line {line_no}: Id {sample_id} duplicates line {seen[sample_id]}")
    seen[sample_id] = line_no


# ---------------------------------------------------------------- the codecs


class CellLabels:
    """`indices` and `names`: one row per image, its classes in the target column."""

    def read(self, path: Path, spec: CompetitionSpec) -> pd.DataFrame:
        codec = LabelCodec(spec)
        header, rows = _rows(path, spec, (spec.id_column, spec.target_column))
        id_at, target_at = header.index(spec.id_column), header.index(spec.target_column)
        ids, labels, seen = [], [], {}
        for line_no, row in rows:
            sample_id = row[id_at].strip()
            _unique_id(path, line_no, sample_id, seen, spec)
            try:
                parsed = codec.parse(row[target_at])
            except ValueError as err:
                raise KitError(f"{path}: line {line_no}: Id {sample_id}: {err}") from None
            _check_multiclass(path, line_no, sample_id, parsed, spec)
            ids.append(sample_id)
            labels.append(parsed)
        return _frame(path, ids, labels)

    def class_names(self, path: Path, spec: CompetitionSpec) -> tuple[str, ...]:
        """The sorted distinct label names (for `label_format: names` without `classes`)."""
        codec = LabelCodec(spec)
        _header, rows = _rows(path, spec, (spec.id_column, spec.target_column))
        at = _header.index(spec.target_column)
        names = {name for _line, row in rows for name in codec.split(row[at])}
        if not names:
            raise KitError(f"{path}: no labels to take the class names from")
        return tuple(sorted(names))


class WideLabels:
    """`wide`: one 0/1 column per class, headed by its name; the classes default to every other column."""

    def read(self, path: Path, spec: CompetitionSpec) -> pd.DataFrame:
        header, rows = _rows(path, spec, (spec.id_column, *spec.classes))
        id_at = header.index(spec.id_column)
        at = [header.index(name) for name in spec.classes]
        ids, labels, seen = [], [], {}
        for line_no, row in rows:
            sample_id = row[id_at].strip()
            _unique_id(path, line_no, sample_id, seen, spec)
            marked = []
            for c, column in enumerate(at):
                value = binary_value(row[column])
                if value is None:
                    raise KitError(f"{path}: line {line_no}: Id {sample_id}: column {spec.classes[c]!r} holds "
                                   f"{row[column]!r}, expected 0 or 1")
                if value:
                    marked.append(c)
            _check_multiclass(path, line_no, sample_id, marked, spec)
            ids.append(sample_id)
            labels.append(marked)
        return _frame(path, ids, labels)

    def class_names(self, path: Path, spec: CompetitionSpec) -> tuple[str, ...]:
        header, _none = _rows(path, spec, (spec.id_column,), header_only=True)
        other = {spec.id_column, spec.group_column}
        names = tuple(column for column in header if column not in other)
        if not names:
            raise KitError(f"{path}: line 1: no class columns beside {spec.id_column}")
        return names


def binary_value(cell: str) -> int | None:
    """A 0/1 label cell as 0 or 1 ("1", "1.0" and "0.0" too: pandas writes a 0/1 column that held a gap as
    floats), None for anything else."""
    cell = cell.strip()
    if cell in ("0", "1"):
        return int(cell)
    try:
        value = float(cell)
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


def binary_column(cells: pd.Series) -> np.ndarray:
    """`binary_value` of every cell as floats, NaN where a cell is not 0/1. The plain "0"/"1" cells are compared
    at numpy speed (RSNA's file has 4.5 million); only the others go through `binary_value`."""
    text = cells.to_numpy()
    values = (text == "1").astype(np.float64)
    other = ~cells.isin(("0", "1")).to_numpy()
    if other.any():
        values[other] = [np.nan if v is None else v for v in map(binary_value, text[other])]
    return values


def split_long_ids(cells: pd.Series, spec: CompetitionSpec) -> tuple[pd.Series, pd.Series]:
    """`ID_12cadc6af_epidural` -> (image `ID_12cadc6af`, class index); the class is the longest suffix
    `<long_separator><class>` naming one, so a class whose name holds the separator still splits right. A cell
    naming no class gets class -1."""
    images = pd.Series([""] * len(cells), index=cells.index, dtype=object)
    classes = pd.Series(-1, index=cells.index, dtype=np.int64)
    for c in sorted(range(len(spec.classes)), key=lambda c: -len(spec.classes[c])):
        suffix = spec.long_separator + spec.classes[c]
        hit = (classes < 0) & cells.str.endswith(suffix) & (cells.str.len() > len(suffix))
        classes[hit] = c
        images[hit] = cells[hit].str.slice(0, -len(suffix))
    return images, classes


class LongLabels:
    """`long`: one row per image and class (RSNA's `ID_<image>_<subtype>,Label`)."""

    def read(self, path: Path, spec: CompetitionSpec) -> pd.DataFrame:
        _rows(path, spec, (spec.id_column, spec.target_column), header_only=True)
        frame = io.read_csv(path, "labels file", dtype=str, keep_default_na=False)
        frame.columns = [str(column).strip() for column in frame.columns]
        cells = frame[spec.id_column].str.strip()
        targets = frame[spec.target_column].str.strip()
        lines = pd.Series(np.arange(2, len(frame) + 2), index=frame.index)  # blank lines are not rows in csv
        if not len(frame):
            raise KitError(f"{path}: no rows")
        images, classes = split_long_ids(cells, spec)
        bad = np.flatnonzero(classes.to_numpy() < 0)
        if len(bad):
            row = bad[0]
            raise KitError(f"{path}: line {lines.iloc[row]}: Id {cells.iloc[row]} does not end in "
                           f"{spec.long_separator}<class> for any of the {len(spec.classes)} classes")
        values = binary_column(targets)
        bad = np.flatnonzero(np.isnan(values))
        if len(bad):
            row = bad[0]
            raise KitError(f"{path}: line {lines.iloc[row]}: Id {cells.iloc[row]}: {spec.target_column} "
                           f"{frame[spec.target_column].iloc[row]!r}, expected 0 or 1")
        twice = (images + "\0" + classes.astype(str)).duplicated()
        if twice.any():
            row = int(np.flatnonzero(twice.to_numpy())[0])
            raise KitError(f"{path}: line {lines.iloc[row]}: Id {cells.iloc[row]}: image {images.iloc[row]} holds "
                           f"class {spec.classes[classes.iloc[row]]!r} twice")
        codes, order = pd.factorize(images)  # images in the order they first appear
        counts = np.bincount(codes, minlength=len(order))
        short = np.flatnonzero(counts != len(spec.classes))
        if len(short):
            image = short[0]
            present = set(classes[codes == image])
            missing = next(name for c, name in enumerate(spec.classes) if c not in present)
            raise KitError(f"{path}: image {order[image]} has no row for class {missing!r} "
                           f"({order[image]}{spec.long_separator}{missing}); a long file holds every class of "
                           "every image once")
        matrix = np.zeros((len(order), len(spec.classes)), dtype=np.uint8)
        matrix[codes, classes.to_numpy()] = values.astype(np.uint8)
        if spec.multiclass:
            wrong = np.flatnonzero(matrix.sum(axis=1) != 1)
            if len(wrong):
                image = wrong[0]
                first = int(np.flatnonzero(codes == image)[0])
                _check_multiclass(path, int(lines.iloc[first]), order[image], np.flatnonzero(matrix[image]), spec)
        labels = [np.flatnonzero(row).tolist() for row in matrix]
        return _frame(path, [str(image) for image in order], labels)

    def class_names(self, path: Path, spec: CompetitionSpec) -> tuple[str, ...]:  # pragma: no cover - spec refuses
        raise KitError(f"{path}: label_format: long needs competition.classes")


LABEL_CODECS = {"indices": CellLabels(), "names": CellLabels(), "wide": WideLabels(), "long": LongLabels()}


def label_codec(spec: CompetitionSpec):
    """The codec of the spec's `label_format` (a KitError listing the valid names otherwise)."""
    if spec.label_format not in LABEL_CODECS:
        raise KitError(f"competition.label_format: unknown {spec.label_format!r}; expected one of "
                       f"{', '.join(LABEL_CODECS)}")
    return LABEL_CODECS[spec.label_format]


def read_labels(path: str | os.PathLike, spec: CompetitionSpec) -> pd.DataFrame:
    """Read and validate a train CSV in the spec's `label_format`: returns columns Id (str) and labels (sorted
    list of class indices). The first problem is raised as one line naming the file, the line, the Id and what
    is wrong."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    return label_codec(spec).read(path, spec)


def read_label_groups(path: str | os.PathLike, spec: CompetitionSpec) -> pd.Series:
    """The `group_column` of a train CSV: the group of each image Id (RANZCR's PatientID), indexed by Id."""
    path = Path(path)
    if spec.group_column is None:
        raise KitError("competition.group_column is not set")
    if spec.label_format == "long":
        raise KitError(f"{path}: competition.group_column needs one row per image; label_format long has one per class")
    header, rows = _rows(path, spec, (spec.id_column, spec.group_column))
    id_at, group_at = header.index(spec.id_column), header.index(spec.group_column)
    groups = {}
    for line_no, row in rows:
        group = row[group_at].strip()
        if not group:
            raise KitError(f"{path}: line {line_no}: Id {row[id_at].strip()}: empty {spec.group_column}")
        groups[row[id_at].strip()] = group
    return pd.Series(groups, name="group")


# ---------------------------------------------------------------- classes kept in the data folder


def read_classes_file(path: Path, spec: CompetitionSpec) -> tuple[str, ...]:
    """A classes CSV (iMet's labels.csv: `attribute_id,attribute_name`): its first column is the class index
    (0..N-1, each once, any order), its second the name."""
    if not path.is_file():
        raise KitError(f"{path}: classes file not found (competition.classes in kit.yaml names it)")
    frame = io.read_csv(path, what="classes file", dtype=str, keep_default_na=False)
    if frame.shape[1] < 2:
        raise KitError(f"{path}: line 1: expected two columns, class index and name, found {','.join(frame.columns)}")
    index_col, name_col = frame.columns[:2]
    names: dict[int, str] = {}
    for line_no, (index, name) in enumerate(zip(frame[index_col], frame[name_col]), start=2):
        if not CLASS_INDEX.fullmatch(index.strip()):
            raise KitError(f"{path}: line {line_no}: {index_col} {index!r} is not a class index")
        if int(index) in names:
            raise KitError(f"{path}: line {line_no}: class index {int(index)} appears twice")
        names[int(index)] = name.strip()
    if not names or sorted(names) != list(range(len(names))):
        missing = sorted(set(range(max(names, default=0) + 1)) - set(names))
        raise KitError(f"{path}: class indices must run 0..{len(names) - 1} without gaps"
                       + (f"; {missing[0]} is missing" if missing else ""))
    classes = tuple(names[i] for i in range(len(names)))
    if len(set(classes)) != len(classes):
        raise KitError(f"{path}: class names are not unique")
    if spec.label_format == "names":
        check_names(classes, spec.label_separator, str(path))
    return classes


def names_in_labels(path: Path, spec: CompetitionSpec) -> tuple[str, ...]:
    """The class names a train CSV holds: its distinct label names, or (wide) its class columns."""
    if not path.is_file():
        raise KitError(f"{path}: file not found (the class names are read from it)")
    return label_codec(spec).class_names(path, spec)


def resolve_classes(spec: CompetitionSpec, root: str | os.PathLike) -> CompetitionSpec:
    """The spec with its classes read from the data folder where they live there (see `kit.data.spec`)."""
    if not spec.pending:
        return spec
    root = Path(root)
    if spec.classes_file:
        classes = read_classes_file(root / spec.classes_file, spec)
    else:
        classes = names_in_labels(root / spec.train_csv, spec)
    frequencies = spec.class_frequencies
    if frequencies is not None and len(frequencies) != len(classes):
        frequencies = None
    resolved = replace(spec, classes=classes, classes_file=None, class_frequencies=frequencies)
    check_classes(resolved, root / spec.train_csv)
    return resolved
