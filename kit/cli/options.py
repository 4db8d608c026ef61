"""Options shared by several commands, and the context they resolve to."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from kit.config import Config, load_config
from kit.data.reading import CompetitionData


def config_option(func):
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Config file (YAML). Default: kit.yaml in the working folder, if present.",
    )(func)


def data_option(func):
    return click.option(
        "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Competition files folder. Default: $KIT_DATA, else 'data:' in the config, else ./data.",
    )(func)


@dataclass
class Context:
    config: Config
    data: CompetitionData


def resolve(config_path: Path | None, data_dir: Path | None = None) -> Context:
    config = load_config(config_path)
    return Context(config=config, data=config.competition_data(data_dir))


def competition_option(func):
    return click.option("--competition", default=None,
                        help="Competition slug. Default: competition.slug of the spec (HPA's by default).")(func)


def warn(line: str) -> None:
    click.echo(f"warning: {line}", err=True)
