"""Assertions shared by the CLI tests."""
from __future__ import annotations


def invoke_in(root, args, expect=0):
    """`kit ARGS` run from the folder `root` (where it finds kit.yaml); asserts its exit status."""
    import pytest
    from click.testing import CliRunner

    from kit.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(main, args)
    assert result.exit_code == expect, result.output + repr(result.exception)
    return result


def error_line(result) -> str:
    """The one `Error: ...` line of a failed command (exit status 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def saved_figures(monkeypatch) -> list:
    """Record every matplotlib Figure as it is saved, so a test can check what is drawn (axes, series, labels)
    rather than only that a PNG exists."""
    from matplotlib.figure import Figure

    figures = []
    real = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, read with OpenCV: the file is a real, decodable image."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} is not a decodable image"
    return image.shape[1], image.shape[0]
