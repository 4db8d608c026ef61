"""`kit.yaml`: read from the working folder or `--config FILE`; command-line options win over it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kit.errors import KitError
from kit.spec import CompetitionSpec, spec_from_dict

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

    def data_dir(self, option: str | os.PathLike | None = None) -> Path:
        """The competition files: `--data`, else $KIT_DATA, else the config's `data:`, else ./data."""
        if option:
            return Path(option)
        if os.environ.get(DATA_ENV):
            return Path(os.environ[DATA_ENV])
        if self.raw.get("data"):
            base = self.path.parent if self.path else Path.cwd()
            return base / str(self.raw["data"])
        return Path(DEFAULT_DATA_DIR)


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
