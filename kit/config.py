"""`kit.yaml`: read from the working folder or `--config FILE`; command-line options win over it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kit.data.reading import CompetitionData, Source, external_source
from kit.data.spec import CompetitionSpec, spec_from_dict
from kit.errors import KitError

DEFAULT_CONFIG_NAME = "kit.yaml"
DATA_ENV = "KIT_DATA"
DEFAULT_DATA_DIR = "data"


@dataclass
class Config:
    """A parsed config file: the competition spec plus every other section as plain data."""

    spec: CompetitionSpec
    raw: dict = field(default_factory=dict)
    path: Path | None = None

    def section(self, name: str) -> dict:
        value = self.raw.get(name) or {}
        if not isinstance(value, dict):
            raise KitError(f"{self.path or DEFAULT_CONFIG_NAME}: '{name}' must be a mapping")
        return dict(value)

    @property
    def base(self) -> Path:
        """Relative paths in the config are relative to its folder."""
        return self.path.parent if self.path else Path.cwd()

    def data_dir(self, option: str | os.PathLike | None = None) -> Path:
        """The competition files: `--data`, else $KIT_DATA, else the config's `data:`, else ./data."""
        if option:
            return Path(option)
        if os.environ.get(DATA_ENV):
            return Path(os.environ[DATA_ENV])
        if self.raw.get("data"):
            return self.base / str(self.raw["data"])
        return Path(DEFAULT_DATA_DIR)

    def competition_data(self, data_option: str | os.PathLike | None = None) -> CompetitionData:
        """The competition folder plus the config's `external:` sources, read through the spec."""
        sources, labels = [], []
        entries = self.raw.get("external") or []
        if not isinstance(entries, list):
            raise KitError(f"{self.path}: 'external' must be a list of sources")
        for index, entry in enumerate(entries):
            where = f"{self.path}: external[{index}]"
            if isinstance(entry, str):
                source, labels_path = external_source(entry, self.spec.image_layout)
            elif isinstance(entry, dict) and {"labels", "images"} <= set(entry) <= {"labels", "images", "ext"}:
                source = Source(Path(str(entry["images"])), str(entry.get("ext", "jpg")).lstrip("."),
                                self.spec.image_layout)
                labels_path = Path(str(entry["labels"]))
            else:
                raise KitError(f"{where}: expected 'LABELS.csv:IMAGE_DIR[:EXT]' or {{labels: ..., images: ..., "
                               f"ext: jpg}}, got {entry!r}")
            if not source.image_dir.is_absolute():
                source = Source(self.base / source.image_dir, source.image_ext, source.layout)
            labels_path = labels_path if labels_path.is_absolute() else self.base / labels_path
            if not source.image_dir.is_dir():
                raise KitError(f"{where}: image folder {source.image_dir} not found")
            sources.append(source)
            labels.append(labels_path)
        return CompetitionData(self.data_dir(data_option), self.spec, tuple(sources), tuple(labels))


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise KitError(f"{path}:{where} not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise KitError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_config(path: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None) -> Config:
    """Read `path`, or `kit.yaml` in `cwd` (the working folder) if it exists, else use the HPA defaults."""
    if path is None:
        candidate = Path(cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            return Config(spec=spec_from_dict(None))
        path = candidate
    path = Path(path)
    raw = read_yaml(path)
    return Config(spec=spec_from_dict(raw.get("competition"), source=path), raw=raw, path=path)
