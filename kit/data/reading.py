"""Reading competition files: labels (validated), sample images (all channels as one array), several sources.

`ImageStore` is the one interface training and prediction read pixels through: `ids`, `len()` and
`read(i) -> H x W x C uint8`. `DecodingStore` decodes the competition's image files; `kit.data.cache`
adds a memory-mapped store of pre-resized images, and `open_store` picks between them.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.spec import CompetitionSpec, check_classes, check_names
from kit.errors import KitError

# OpenCV would otherwise start one thread per core inside every DataLoader worker.
cv2.setNumThreads(1)


@dataclass(frozen=True)
class Source:
    """One folder of images in the competition layout, with its own extension (png, or jpg for HPAv18).

    layout `channels`: one grayscale file per channel, `{dir}/{Id}_{channel}.{ext}` (HPA); `file`: one file per
    sample holding every channel, `{dir}/{Id}.{ext}` (RGB/RGBA JPEG or PNG, a multi-band TIFF)."""

    image_dir: Path
    image_ext: str = "png"
    layout: str = "channels"

    def channel_path(self, sample_id: str, channel: str) -> Path:
        return self.image_dir / f"{sample_id}_{channel}.{self.image_ext}"

    def file_path(self, sample_id: str) -> Path:
        return self.image_dir / f"{sample_id}.{self.image_ext}"

    def files(self, sample_id: str, channels: Sequence[str]) -> list[Path]:
        """The files holding one sample's pixels: one per channel, or the one file."""
        if self.layout == "file":
            return [self.file_path(sample_id)]
        return [self.channel_path(sample_id, channel) for channel in channels]


# ---------------------------------------------------------------- labels


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


CLASS_INDEX = re.compile(r"[0-9]+")  # str.isdigit() would accept other scripts' digits, which int() rejects


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


def _label_rows(path: Path, spec: CompetitionSpec):
    """(line number, Id, target text) of every row of a labels CSV, with the header and row shape checked."""
    id_col, target_col = spec.id_column, spec.target_column
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
            yield line_no, row[id_at].strip(), row[target_at]


def _read_labels(path: Path, spec: CompetitionSpec) -> pd.DataFrame:
    codec = LabelCodec(spec)
    ids, labels, seen = [], [], {}
    for line_no, sample_id, target in _label_rows(path, spec):
        if not sample_id:
            raise KitError(f"{path}: line {line_no}: empty {spec.id_column}")
        if sample_id in seen:
            raise KitError(f"{path}: line {line_no}: Id {sample_id} duplicates line {seen[sample_id]}")
        seen[sample_id] = line_no
        try:
            labels.append(codec.parse(target))
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


def matrix_to_targets(matrix: np.ndarray, spec: CompetitionSpec | None = None) -> list[str]:
    """An N x C 0/1 matrix -> each row's classes in the spec's encoding ('' for none): class indices or names,
    in class order, joined by the label separator (space-separated indices without a spec)."""
    matrix = np.asarray(matrix)
    if spec is None:
        return [" ".join(str(c) for c in np.flatnonzero(row)) for row in matrix]
    codec = LabelCodec(spec)
    return [codec.format(np.flatnonzero(row)) for row in matrix]


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
    """The sorted distinct label names of a train CSV (for `label_format: names` without `classes`)."""
    if not path.is_file():
        raise KitError(f"{path}: file not found (the class names are read from it)")
    codec = LabelCodec(spec)
    names = set()
    try:
        for _line, _sample_id, target in _label_rows(path, spec):
            names.update(codec.split(target))
    except UnicodeDecodeError as err:
        raise KitError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    if not names:
        raise KitError(f"{path}: no labels to take the class names from")
    return tuple(sorted(names))


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


TIFF_EXTENSIONS = ("tif", "tiff")


def to_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    """uint8 as is; other integer types scaled by their range (16-bit TIFF/PNG -> 0..255)."""
    if pixels.dtype == np.uint8:
        return pixels
    if not np.issubdtype(pixels.dtype, np.integer):
        raise KitError(f"{path}: {pixels.dtype} pixels; expected integer pixels (8 or 16 bit)")
    return (pixels.astype(np.float32) * (255.0 / max(1, np.iinfo(pixels.dtype).max))).astype(np.uint8)


def decode_file(path: Path) -> np.ndarray:
    """One image file -> H x W x C in the file's own channel order (RGB, RGBA, or the TIFF's bands)."""
    if path.suffix.lower().lstrip(".") in TIFF_EXTENSIONS:
        # tifffile keeps every band in file order at its bit depth; OpenCV would reorder 4-band files as BGRA.
        import tifffile

        try:
            pixels = tifffile.imread(path)
        except Exception as err:  # noqa: BLE001 - any decoder failure is one line naming the file
            raise KitError(f"{path}: cannot decode ({type(err).__name__}: {err})") from None
        if pixels.ndim == 3 and pixels.shape[0] < min(pixels.shape[1:]) and pixels.shape[0] <= 16:
            pixels = np.moveaxis(pixels, 0, -1)  # planar (bands first) -> bands last
    else:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise KitError(f"{path}: cannot decode")
        if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB if pixels.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3:
        raise KitError(f"{path}: expected an H x W x C image, found shape {pixels.shape}")
    return pixels


def read_sample_file(path: Path, sample_id: str, channels: Sequence[str]) -> np.ndarray:
    """One sample held in one file (`image_layout: file`), its channels checked against the spec's."""
    if not path.is_file():
        raise KitError(f"Id {sample_id}: missing image file {path}")
    pixels = decode_file(path)
    if pixels.shape[2] != len(channels):
        raise KitError(f"{path}: {pixels.shape[2]} channel(s), but competition.channels lists {len(channels)} "
                       f"({', '.join(channels)})")
    return np.ascontiguousarray(to_uint8(pixels, path))


def read_image(source: Source, sample_id: str, channels: Sequence[str]) -> np.ndarray:
    """Read one sample into one H x W x C uint8 array, in `channels` order: its channel files, or its one file."""
    if source.layout == "file":
        return read_sample_file(source.file_path(sample_id), sample_id, channels)
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
        plane = to_uint8(plane, path)
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
            channels = self.spec.channels
            found = next((s for s in self.sources if s.files(sample_id, channels)[0].is_file()), self.sources[0])
            self._source_of[sample_id] = found
        return self._source_of[sample_id]

    def read(self, index: int) -> np.ndarray:
        sample_id = self.ids[index]
        return resize(read_image(self.source_for(sample_id), sample_id, self.spec.channels), self.size)

    def check(self) -> None:
        """Every image file exists (one stat each; decoding problems still surface when read)."""
        missing = [(sample_id, path) for sample_id in self.ids for path in
                   self.source_for(sample_id).files(sample_id, self.spec.channels) if not path.is_file()]
        if not missing:
            return
        (sample_id, path), more = missing[0], len(missing) - 1
        also = f" (and {more} more)" if more else ""
        if len(self.sources) > 1 and not any(s.files(sample_id, self.spec.channels)[0].is_file() for s in self.sources):
            folders = ", ".join(str(s.image_dir) for s in self.sources)
            raise KitError(f"Id {sample_id}: found in none of the folders {folders} (no {path.name}){also}")
        kind = "image file" if self.sources[0].layout == "file" else "channel file"
        raise KitError(f"Id {sample_id}: missing {kind} {path}{also}")


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
        # Classes kept in the data folder are read now; if the folder is not there yet (`kit download` is about
        # to fill it) the spec stays pending and `check_root` names what is missing.
        if self.spec.pending and self.root.is_dir():
            self.spec = resolve_classes(self.spec, self.root)

    @property
    def train_source(self) -> Source:
        return Source(self.root / self.spec.train_dir, self.spec.image_ext, self.spec.image_layout)

    @property
    def test_source(self) -> Source:
        """The first test folder (see `test_sources` for all of them)."""
        return self.test_sources()[0]

    def test_sources(self) -> list[Source]:
        """Every test folder; each test Id is looked up in them in order."""
        return [Source(self.root / folder, self.spec.image_ext, self.spec.image_layout) for folder in self.spec.test_dirs]

    def check_root(self) -> None:
        if not self.root.is_dir():
            raise KitError(f"{self.root}: data folder not found (give --data DIR, set KIT_DATA, or 'data:' in kit.yaml)")
        if self.spec.pending:
            self.spec = resolve_classes(self.spec, self.root)

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


def external_source(spec: str, layout: str = "channels") -> tuple[Source, Path]:
    """Parse an external source given as `LABELS.csv:IMAGE_DIR[:EXT]` (EXT defaults to jpg, as in HPAv18); its
    images are in the competition's `layout`."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise KitError(f"external source {spec!r}: expected LABELS.csv:IMAGE_DIR[:EXT]")
    ext = parts[2] if len(parts) == 3 else "jpg"
    return Source(Path(parts[1]), ext.lstrip("."), layout), Path(parts[0])
