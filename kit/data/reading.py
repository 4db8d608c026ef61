"""The competition folder: its labels, test Ids and image sources, read through one spec.

Label codecs live in `kit.data.labels`, image decoding in `kit.data.images` (DICOM in `kit.data.dicom`), the
sample submission in `kit.data.submission`; their public names are re-exported here, where callers import them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kit.data.images import (  # noqa: F401 - re-exported
    TIFF_EXTENSIONS,
    DecodingStore,
    ImageStore,
    Source,
    decode_file,
    read_image,
    read_sample_file,
    resize,
    to_uint8,
)
from kit.data.labels import (  # noqa: F401 - re-exported
    CLASS_INDEX,
    LabelCodec,
    labels_to_matrix,
    matrix_to_targets,
    names_in_labels,
    read_classes_file,
    read_label_groups,
    read_labels,
    resolve_classes,
)
from kit.data.spec import CompetitionSpec
from kit.data.submission import read_sample_ids
from kit.errors import KitError


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

    def train_groups(self) -> pd.Series | None:
        """The train CSV's `group_column` as the group of each Id (indexed by Id), or None without one."""
        if self.spec.group_column is None:
            return None
        self.check_root()
        return read_label_groups(self.root / self.spec.train_csv, self.spec)

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
