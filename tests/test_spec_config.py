from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.config import load_config
from kit.data.spec import HPA
from kit.errors import KitError


def test_hpa_is_the_default(tmp_path):
    config = load_config(cwd=tmp_path)
    assert config.spec == HPA
    assert config.spec.num_classes == 28 and config.spec.num_channels == 4
    assert config.spec.classes[0] == "Nucleoplasm" and config.spec.classes[27] == "Rods & rings"
    assert config.spec.slug == "human-protein-atlas-image-classification"


def test_kit_yaml_in_working_folder_overrides_the_spec(tmp_path):
    (tmp_path / "kit.yaml").write_text(
        "competition:\n  slug: other\n  classes: [a, b, c, d, e, f, g, h, i, j]\n  channels: [r, g, b, y]\n"
        "data: mydata\n"
    )
    config = load_config(cwd=tmp_path)
    assert config.spec.slug == "other"
    assert config.spec.num_classes == 10
    assert config.data_dir() == tmp_path / "mydata"


def test_data_folder_precedence(tmp_path, monkeypatch):
    path = tmp_path / "exp.yaml"
    path.write_text("data: from_config\n")
    config = load_config(path)
    monkeypatch.delenv("KIT_DATA", raising=False)
    assert config.data_dir() == tmp_path / "from_config"
    monkeypatch.setenv("KIT_DATA", "/from/env")
    assert config.data_dir() == Path("/from/env")
    assert config.data_dir("cli") == Path("cli")


@pytest.mark.parametrize("text, message", [
    ("competition:\n  colour: red\n", "unknown competition key"),
    ("competition:\n  classes: []\n", "non-empty list"),
    ("competition: [1, 2]\n", "must be a mapping"),
    ("a: [unclosed\n", "not valid YAML"),
    ("competition:\n  image_ext: 5\n", "competition.image_ext must be a non-empty string, got 5"),
    ("competition:\n  slug: [a, b]\n", "competition.slug must be a non-empty string"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "kit.yaml"
    path.write_text(text)
    with pytest.raises(KitError, match=message):
        load_config(path)
    result = CliRunner().invoke(main, ["folds", "--config", str(path)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_every_command_has_help():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4, name
