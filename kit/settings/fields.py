"""The mechanism under every settings table: a `Field` per knob (default, type, choices, help) and a `Table` per
`kit.yaml` section that checks a section, fills in defaults and lets command-line options win.

A choice list may be a `Registry`: the names of a registry that lives in another module (blend METHODS,
threshold MODES, TTA views), read when first needed, so a table can name them without importing torch.

>>> table = Table("demo", (Field("k", 5, int, "Number of folds.", minimum=2),
...                        Field("method", "mean", str, "How.", ("mean", "rank"))))
>>> table.resolve({"k": 3}, {"method": "rank"}, "kit.yaml")
{'k': 3, 'method': 'rank'}
>>> table.resolve({"k": 3}, {"k": 4, "method": None}, "kit.yaml")  # options win; None = not given
{'k': 4, 'method': 'mean'}
>>> table.resolve({"method": "median"}, {}, "kit.yaml")
Traceback (most recent call last):
kit.errors.KitError: kit.yaml: demo.method: 'median' is not one of mean, rank
"""
from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Registry:
    """The names of `module.attribute` (a tuple of names or a dict keyed by them), imported on first use."""

    module: str
    attribute: str

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.attribute))


@dataclass(frozen=True)
class Field:
    """One knob: its default, type (int, float, str, bool, Path; None: structured data, config file only), help,
    and optionally its choices (names or a Registry), whether it may be empty, the range a number must lie in
    (`minimum`/`maximum`, inclusive; NaN and infinity are never numbers here), a parser for structured values
    (`parse(value, where)`), the command-line spelling (`flags`) and whether the command line offers it at all
    (`cli`)."""

    name: str
    default: Any
    type: type | None
    help: str
    choices: tuple[str, ...] | Registry | None = None
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    parse: Callable[[Any, str], Any] | None = None
    flags: tuple[str, ...] | None = None
    cli: bool = True

    def choice_names(self) -> tuple[str, ...] | None:
        return self.choices.names() if isinstance(self.choices, Registry) else self.choices

    def coerce(self, value, where: str):
        """`value` (from a config file or an option) as this field's type, or a KitError naming `where`."""
        if value is None:
            if self.nullable or self.default is None:
                return None
            raise KitError(f"{where}: must not be empty")
        if self.parse is not None:
            return self.parse(value, where)
        if self.type is None:
            return copy.deepcopy(value)
        if self.type is bool:
            if isinstance(value, str) and value.lower() in TRUE + FALSE:
                return value.lower() in TRUE
            if not isinstance(value, bool):
                raise KitError(f"{where}: expected true or false, got {value!r}")
            return value
        try:
            if self.type is int:
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif self.type is Path:
                if not isinstance(value, (str, Path)) or not str(value):
                    raise ValueError
                value = Path(value)
            else:
                value = self.type(value)
                if self.type is float and not math.isfinite(value):
                    raise ValueError
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            expected = "a path" if self.type is Path else self.type.__name__
            raise KitError(f"{where}: expected {expected}, got {value!r}") from None
        choices = self.choice_names()
        if choices and value not in choices:
            raise KitError(f"{where}: {value!r} is not one of {', '.join(choices)}")
        if self.minimum is not None and value < self.minimum:
            raise KitError(f"{where}: must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise KitError(f"{where}: must be at most {self.maximum}, got {value}")
        return value

    def default_value(self):
        value = copy.deepcopy(self.default)
        return self.parse(value, self.name) if self.parse is not None and value is not None else value


@dataclass(frozen=True)
class Table:
    """The settings of one `kit.yaml` section: defaults, then the section's values, then command-line options.

    `separator` joins the section and a key in messages (`kit.yaml: blend.method: ...`); `noun` names the keys
    in the unknown-key message; `check(values, where)` runs the checks that involve several fields."""

    section: str
    fields: tuple[Field, ...]
    check: Callable[[dict, str], None] | None = None
    separator: str = "."
    noun: str = "key(s)"

    def __post_init__(self):
        names = [f.name for f in self.fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"settings table {self.section}: {', '.join(repeated)} defined twice")

    @property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def defaults(self) -> dict:
        return {f.name: f.default_value() for f in self.fields}

    def where(self, source: str, name: str) -> str:
        return f"{source}{self.separator}{name}"

    def normalise(self, values: dict, source: str, check: bool = True) -> dict:
        """Defaults plus `values`, each coerced to its field's type; unknown names and bad values are errors.
        `source` names where the values come from (`kit.yaml: blend`)."""
        fields = self.by_name
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise KitError(f"{source}: unknown {self.noun} {', '.join(unknown)}; known: {', '.join(fields)}")
        result = self.defaults()
        for name, value in values.items():
            result[name] = fields[name].coerce(value, self.where(source, name))
        if check and self.check is not None:
            self.check(result, source)
        return result

    def resolve(self, section: dict | None, options: dict | None = None, source: str = "kit.yaml") -> dict:
        """Defaults, then the config's section (errors name `source`, the config file), then `options`
        (command-line values; None means not given)."""
        values = self.normalise(dict(section or {}), f"{source}: {self.section}")  # the config file is checked
        given = {k: v for k, v in (options or {}).items() if v is not None}  # the library checks what it is given
        for name, value in given.items():
            values[name] = self.by_name[name].coerce(value, "--" + name.replace("_", "-"))
        return values


def check_plain_name(value: str, where: str) -> None:
    """A file name without folders (what `--name` of `kit blend` may be)."""
    if not value or Path(value).name != value or value.startswith("."):
        raise KitError(f"{where}: {value!r} is not a plain file name")


def cli_default(value) -> str:
    """How a default reads in `--help`."""
    if value is None:
        return "none"
    if isinstance(value, (list, dict)):
        return "see kit/settings"
    return str(value.as_posix() if isinstance(value, Path) else value)


def option_flags(f: Field) -> Sequence[str]:
    if f.flags:
        return f.flags
    flag = "--" + f.name.replace("_", "-")
    return (f"{flag}/--no-{f.name.replace('_', '-')}",) if f.type is bool else (flag,)
