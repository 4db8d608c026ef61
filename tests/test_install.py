"""What installing kit promises: the Kaggle client is an extra the commands ask for in one line when it is missing,
and the dependency minimums in setup.cfg are versions whose APIs the code uses (see `make test-min`)."""
from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import error_line
from packaging.requirements import Requirement

from kit.cli import main
from kit.kaggle import client

SETUP = Path(__file__).resolve().parent.parent / "setup.cfg"


def requirements(section: str, key: str) -> dict[str, Requirement]:
    config = configparser.ConfigParser()
    config.read(SETUP)
    lines = [line.strip() for line in config[section][key].splitlines() if line.strip() and not line.startswith("#")]
    return {Requirement(line).name: Requirement(line) for line in lines}


@pytest.fixture
def no_kaggle_client(monkeypatch):
    """As if `pip install kit` without the extra: importing kaggle fails."""
    for name in list(sys.modules):
        if name == "kaggle" or name.startswith("kaggle."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kaggle", None)
    monkeypatch.setattr(client, "_API_CLASS", None)


@pytest.mark.parametrize("args", [["download"], ["submissions"], ["bundle", "out", "--upload", "me/some-bundle"]])
def test_a_command_that_needs_the_kaggle_client_says_how_to_install_it(no_kaggle_client, args, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    if args[0] == "bundle":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "bundle.json").write_text('{"competition": "c"}')
        (tmp_path / "out" / "dataset-metadata.json").write_text('{"id": "me/some-bundle"}')
    line = error_line(CliRunner().invoke(main, args))
    assert "the Kaggle client is not installed" in line and "pip install 'kit[kaggle]'" in line


def test_the_kaggle_client_is_an_extra_that_dev_includes():
    install = requirements("options", "install_requires")
    assert "kaggle" not in install
    assert str(requirements("options.extras_require", "kaggle")["kaggle"].specifier) == \
        str(requirements("options.extras_require", "dev")["kaggle"].specifier)


def test_make_test_min_pins_every_requirement_to_its_minimum_series():
    import subprocess

    script = Path(__file__).resolve().parent.parent / "scripts" / "min_requirements.py"
    pins = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    install = requirements("options", "install_requires")
    assert sorted(pin.split("==")[0] for pin in pins) == sorted(install)
    for pin in pins:
        name, series = pin.split("==")
        low = next(spec.version for spec in install[name].specifier if spec.operator == ">=")
        assert series == f"{low}.*"
