"""Options shared by several commands, the options generated from a settings table, and the context they
resolve to."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import click

from kit.config import DEFAULT_CONFIG_NAME, Config, load_config
from kit.data.reading import CompetitionData
from kit.settings.fields import Field, Table, cli_default, option_flags


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

    @property
    def source(self) -> str:
        """The config file's name for messages."""
        return str(self.config.path or DEFAULT_CONFIG_NAME)

    def section(self, table: Table, options: dict | None = None) -> dict:
        """The table's defaults, then the config's section, then the command-line `options` (None: not given)."""
        return table.resolve(self.config.section(table.section), options, self.source)


def resolve(config_path: Path | None, data_dir: Path | None = None) -> Context:
    config = load_config(config_path)
    return Context(config=config, data=config.competition_data(data_dir))


def competition_option(func):
    return click.option("--competition", default=None,
                        help="Competition slug. Default: competition.slug of the spec (HPA's by default).")(func)


def warn(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


# ---------------------------------------------------------------- options generated from a settings table


class RegistryChoice(click.Choice):
    """click.Choice over a field's choices, read when first needed (a registry may live beside torch)."""

    def __init__(self, field: Field):
        self.field = field
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.field.choice_names())

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns it; the registry is the source
        pass


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses NaN and infinity (which compare false with every bound)."""

    name = "number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def option_type(f: Field):
    if f.type is bool:
        return None
    if f.choices:
        return RegistryChoice(f)
    if f.type is int and (f.minimum is not None or f.maximum is not None):
        return click.IntRange(min=None if f.minimum is None else int(f.minimum),
                              max=None if f.maximum is None else int(f.maximum))
    if f.type is float:
        return FiniteFloatRange(min=f.minimum, max=f.maximum)
    if f.type is Path:
        return click.Path(path_type=Path)
    return f.type


def option_help(f: Field) -> str:
    if "(default:" in f.help or "[default:" in f.help:
        return f.help
    return f"{f.help} [default: {cli_default(f.default)}]"


def table_options(table: Table, skip: tuple[str, ...] = ()):
    """One option per field of `table` that the command line offers, in table order. Every default is None
    (not given), so the config file's section wins over the table's default and the option over both."""
    def decorate(func):
        for f in reversed(table.fields):
            if f.cli and f.name not in skip:
                func = click.option(*option_flags(f), f.name, type=option_type(f), default=None,
                                    help=option_help(f))(func)
        return func
    return decorate


def option_words(f: Field, value) -> list[str]:
    """The command-line words that give `f` the value `value` (for recording how a file was made)."""
    if value is None:
        return []
    flags = [flag for spelling in option_flags(f) for flag in spelling.split("/")]
    if f.type is bool:
        on, off = (flags + [None])[:2]
        return [on] if value else ([off] if off else [])
    long = next((flag for flag in flags if flag.startswith("--")), flags[0])
    return [long, cli_default(value)]
