"""Reading competition files: labels (validated), sample images (all channels as one array), several sources.

`ImageStore` is the one interface training and prediction read pixels through: `ids`, `len()` and
`read(i) -> H x W x C uint8`. `DecodingStore` decodes the competition's image files; `kit.data.cache`
adds a memory-mapped store of pre-resized images, and `open_store` picks between them.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.spec import CompetitionSpec
from kit.errors import KitError

# OpenCV would otherwise start one thread per core inside every DataLoader worker.
cv2.setNumThreads(1)


@dataclass(frozen=True)
class Source:
    """One folder of images in the competition layout, with its own extension (png, or jpg for HPAv18)."""

    image_dir: Path
    image_ext: str = "png"

    def channel_path(self, sample_id: str, channel: str) -> Path:
        return self.image_dir / f"{sample_id}_{channel}.{self.image_ext}"


# ---------------------------------------------------------------- labels


def parse_target(text: str, num_classes: int) -> list[int]:
    """'25 0' -> [0, 25]; raises ValueError with the reason on anything else."""
    parts = str(text).split()
    if not parts:
        raise ValueError("empty Target")
    labels = []
    for part in parts:
        try:
            label = int(part)
        except ValueError:
            raise ValueError(f"label {part!r} is not an integer") from None
        if not 0 <= label < num_classes:
            raise ValueError(f"label {label} is out of range 0..{num_classes - 1}")
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise ValueError(f"label repeated in {text!r}")
    return sorted(labels)


def read_labels(path: str | os.PathLike, spec: CompetitionSpec) -> pd.DataFrame:
    """Read and validate a `train.csv`: returns columns Id (str) and labels (sorted list of ints).

    The first problem is raised as one line naming the file, the line number, the Id and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    try:
        return _read_labels(path, spec)
    except UnicodeDecodeError as err:
        raise KitError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None


def _read_labels(path: Path, spec: CompetitionSpec) -> pd.DataFrame:
    id_col, target_col = spec.id_column, spec.target_column
    ids, labels, seen = [], [], {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise KitError(f"{path}: empty file, expected a header '{id_col},{target_col}'")
        header = [column.strip() for column in header]
        if id_col not in header or target_col not in header:
            raise KitError(f"{path}: line 1: expected columns '{id_col},{target_col}', found {','.join(header)!r}")
        id_at, target_at = header.index(id_col), header.index(target_col)
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise KitError(f"{path}: line {line_no}: expected {len(header)} fields, found {len(row)}")
            sample_id = row[id_at].strip()
            if not sample_id:
                raise KitError(f"{path}: line {line_no}: empty {id_col}")
            if sample_id in seen:
                raise KitError(f"{path}: line {line_no}: Id {sample_id} duplicates line {seen[sample_id]}")
            seen[sample_id] = line_no
            try:
                labels.append(parse_target(row[target_at], spec.num_classes))
            except ValueError as err:
                raise KitError(f"{path}: line {line_no}: Id {sample_id}: {err}") from None
            ids.append(sample_id)
    if not ids:
        raise KitError(f"{path}: no rows")
    return pd.DataFrame({"Id": ids, "labels": labels})


def labels_to_matrix(labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Lists of class indices -> an N x num_classes 0/1 uint8 matrix."""
    matrix = np.zeros((len(labels), num_classes), dtype=np.uint8)
    for row, sample_labels in enumerate(labels):
        matrix[row, list(sample_labels)] = 1
    return matrix


def matrix_to_targets(matrix: np.ndarray) -> list[str]:
    """An N x C 0/1 matrix -> space-separated, sorted class indices per row ('' for none)."""
    return [" ".join(str(c) for c in np.flatnonzero(row)) for row in np.asarray(matrix)]


def read_sample_ids(path: str | os.PathLike, spec: CompetitionSpec) -> list[str]:
    """The Ids of `sample_submission.csv`, in order; duplicates or a missing Id column are errors."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: file not found")
    frame = io.read_csv(path, dtype=str, keep_default_na=False)
    if spec.id_column not in frame.columns:
        raise KitError(f"{path}: line 1: no '{spec.id_column}' column")
    ids = frame[spec.id_column].str.strip()
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        first = duplicated.index[0]
        raise KitError(f"{path}: line {first + 2}: Id {ids[first]} appears twice")
    return ids.tolist()


# ---------------------------------------------------------------- images


def read_image(source: Source, sample_id: str, channels: Sequence[str]) -> np.ndarray:
    """Read one sample's channel files into one H x W x C uint8 array, in `channels` order."""
    planes = []
    for channel in channels:
        path = source.channel_path(sample_id, channel)
        if not path.is_file():
            raise KitError(f"Id {sample_id}: missing channel file {path}")
        plane = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if plane is None:
            raise KitError(f"Id {sample_id}: cannot decode {path}")
        if plane.ndim == 3:  # HPAv18 JPGs are sometimes saved as RGB: the stain is the brightest plane
            plane = plane.max(axis=2)
        if plane.dtype != np.uint8:
            plane = (plane.astype(np.float32) * (255.0 / max(1, np.iinfo(plane.dtype).max))).astype(np.uint8)
        if planes and plane.shape != planes[0].shape:
            raise KitError(
                f"Id {sample_id}: channel {channel} is {plane.shape[1]}x{plane.shape[0]} "
                f"but {channels[0]} is {planes[0].shape[1]}x{planes[0].shape[0]}"
            )
        planes.append(plane)
    return np.stack(planes, axis=-1)


def resize(image: np.ndarray, size: int | None) -> np.ndarray:
    """Resize H x W x C to size x size with area interpolation (the right filter for shrinking)."""
    if size is None or image.shape[:2] == (size, size):
        return image
    channels = image.shape[2]
    # cv2.resize handles at most 4 channels in one call for some interpolations; resize per 4-channel group.
    groups = [cv2.resize(image[..., i : i + 4], (size, size), interpolation=cv2.INTER_AREA) for i in range(0, channels, 4)]
    groups = [g[..., None] if g.ndim == 2 else g for g in groups]
    return np.concatenate(groups, axis=-1)


class ImageStore:
    """Pixels of one split, by position: `ids`, `len(store)`, `read(i)` -> H x W x C uint8."""

    ids: list[str]
    description: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self) -> None:
        """Raise KitError if a sample cannot be read at all (checked before hours of training, not during)."""


class DecodingStore(ImageStore):
    """Decodes the image files on every read (and resizes to `size` if given)."""

    def __init__(self, ids: Sequence[str], sources: Sequence[Source] | Source, spec: CompetitionSpec, size: int | None = None):
        self.ids = list(ids)
        self.sources = [sources] if isinstance(sources, Source) else list(sources)
        self.spec = spec
        self.size = size
        self._source_of: dict[str, Source] | None = None
        self.description = f"decoding {spec.image_ext} files" + (f", resized to {size}px" if size else "")

    def source_for(self, sample_id: str) -> Source:
        if len(self.sources) == 1:
            return self.sources[0]
        if self._source_of is None:
            self._source_of = {}
        if sample_id not in self._source_of:
            first = self.spec.channels[0]
            found = next((s for s in self.sources if s.channel_path(sample_id, first).is_file()), self.sources[0])
            self._source_of[sample_id] = found
        return self._source_of[sample_id]

    def read(self, index: int) -> np.ndarray:
        sample_id = self.ids[index]
        return resize(read_image(self.source_for(sample_id), sample_id, self.spec.channels), self.size)

    def check(self) -> None:
        """Every channel file exists (one stat each; decoding problems still surface when read)."""
        missing = [(sample_id, path) for sample_id in self.ids for path in
                   (self.source_for(sample_id).channel_path(sample_id, c) for c in self.spec.channels)
                   if not path.is_file()]
        if missing:
            (sample_id, path), more = missing[0], len(missing) - 1
            raise KitError(f"Id {sample_id}: missing channel file {path}" + (f" (and {more} more)" if more else ""))


# ---------------------------------------------------------------- the competition folder


@dataclass
class CompetitionData:
    """The competition folder (plus optional external sources), read through one spec."""

    root: Path
    spec: CompetitionSpec
    external: tuple[Source, ...] = ()
    external_labels: tuple[Path, ...] = ()

    def __post_init__(self):
        self.root = Path(self.root)  # a notebook may pass a string

    @property
    def train_source(self) -> Source:
        return Source(self.root / self.spec.train_dir, self.spec.image_ext)

    @property
    def test_source(self) -> Source:
        return Source(self.root / self.spec.test_dir, self.spec.image_ext)

    def check_root(self) -> None:
        if not self.root.is_dir():
            raise KitError(f"{self.root}: data folder not found (give --data DIR, set KIT_DATA, or 'data:' in kit.yaml)")

    def train_labels(self) -> pd.DataFrame:
        """train.csv, plus every external source's labels; an Id present in two sources is an error."""
        self.check_root()
        frames = [read_labels(self.root / self.spec.train_csv, self.spec)]
        for labels_path in self.external_labels:
            frames.append(read_labels(labels_path, self.spec))
        labels = pd.concat(frames, ignore_index=True)
        duplicated = labels["Id"][labels["Id"].duplicated()]
        if len(duplicated):
            raise KitError(f"Id {duplicated.iloc[0]} appears in more than one labels file")
        return labels

    def test_ids(self) -> list[str]:
        self.check_root()
        return read_sample_ids(self.root / self.spec.sample_submission, self.spec)

    def train_sources(self) -> list[Source]:
        return [self.train_source, *self.external]


def external_source(spec: str) -> tuple[Source, Path]:
    """Parse an external source given as `LABELS.csv:IMAGE_DIR[:EXT]` (EXT defaults to jpg, as in HPAv18)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise KitError(f"external source {spec!r}: expected LABELS.csv:IMAGE_DIR[:EXT]")
    ext = parts[2] if len(parts) == 3 else "jpg"
    return Source(Path(parts[1]), ext.lstrip(".")), Path(parts[0])
