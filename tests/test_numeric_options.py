"""Every number a user can give, on the command line or in kit.yaml, is checked against the range its option or
table field declares: out of range, NaN or a word is one line naming the option and a non-zero exit, never a
traceback. The options are enumerated from the click group and the tables, so a new option is covered."""
from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.errors import KitError
from kit.settings import TABLES

PROBES = ("-1", "0", "nan", "abc")


def commands(group: click.Group, prefix=()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def numeric_options():
    for path, command in commands(main):
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and \
                    isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                yield pytest.param(path, param, id=f"{' '.join(path)} {param.opts[-1]}")


def allowed(param: click.Option, text: str) -> bool:
    """Whether the option's declared range admits `text` (a number; words and NaN never are)."""
    try:
        value = float(text)
    except ValueError:
        return False
    if not math.isfinite(value):
        return False
    if isinstance(param.type, click.types.IntParamType) and value != int(value):
        return False
    kind = param.type
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    if low is not None and (value < low or (getattr(kind, "min_open", False) and value == low)):
        return False
    return not (high is not None and (value > high or (getattr(kind, "max_open", False) and value == high)))


def probes(param: click.Option):
    kind = param.type
    extra = []
    if getattr(kind, "max", None) is not None:
        extra.append(str(kind.max + 1))
    return [p for p in (*PROBES, *extra) if not allowed(param, p)]


@pytest.mark.parametrize("path,param", list(numeric_options()))
def test_every_numeric_option_declares_its_range_and_refuses_what_lies_outside(path, param, tmp_path, monkeypatch):
    assert isinstance(param.type, (click.IntRange, click.FloatRange)), \
        f"kit {' '.join(path)} {param.opts[-1]}: a number option without a declared range"
    monkeypatch.chdir(tmp_path)
    flag = next(opt for opt in param.opts if opt.startswith("--"))
    for value in probes(param):
        result = CliRunner().invoke(main, [*path, flag, value])
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), (value, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and flag in errors[0], (value, result.output)
        assert not list(tmp_path.iterdir()), (value, "wrote files")


def numeric_fields():
    for table in TABLES.values():
        for field in table.fields:
            if field.type in (int, float) and field.parse is None:
                yield pytest.param(table, field, id=f"{table.section}.{field.name}")


@pytest.mark.parametrize("table,field", list(numeric_fields()))
def test_every_numeric_kit_yaml_key_refuses_nan_words_and_what_lies_outside_its_range(table, field):
    assert field.minimum is not None or field.maximum is not None, f"{table.section}.{field.name}: no range"
    bad = ["abc", "nan", float("nan"), float("inf")]
    if field.minimum is not None:
        bad.append(field.minimum - 1)
    if field.maximum is not None:
        bad.append(field.maximum + 1)
    for value in bad:
        with pytest.raises(KitError, match=rf"kit.yaml: {table.section}{table.separator}{field.name}: "):
            table.normalise({field.name: value}, f"kit.yaml: {table.section}")
