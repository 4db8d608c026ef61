"""Options shared by several commands, and the context they resolve to."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from kit.config import Config, load_config
from kit.data.reading import CompetitionData
from kit.settings import FIELDS


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


CLI_SKIP = {"model", "fold", "mean", "std"}  # the commands' own options, or config-file only


def _shown(value) -> str:
    return "none" if value is None else ("see kit/settings.py" if isinstance(value, list) else str(value))


def settings_options(func):
    """One option per train setting (kit/settings.py FIELDS); None = not given, so the config file wins."""
    for f in reversed(FIELDS):
        if f.name in CLI_SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.help if "(default:" in f.help else f"{f.help} [default: {_shown(f.default)}]"
        if f.type is bool:
            func = click.option(f"{flag}/--no-{f.name.replace('_', '-')}", f.name, default=None, help=help_text)(func)
        elif f.name == "augment":
            func = click.option(flag, f.name, type=click.Choice(["default", "none"]), default=None,
                                help="Augmentation: the default pipeline (flips, 90-degree rotations, affine, brightness/"
                                     "contrast) or none; set a list in the config's train.augment. "
                                     "[default: default]")(func)
        else:
            kind = click.Choice(f.choices) if f.choices else f.type
            func = click.option(flag, f.name, type=kind, default=None, help=help_text)(func)
    return func
