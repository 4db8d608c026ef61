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


def assert_same_run(done, run, parts=("model", "ema", "swa", "optimizer", "scheduler")):
    """The run folders `done` and `run` end alike: every tensor and number of these parts of last.pt (a part
    neither has is equal), and history.csv, oof.csv and test.csv but for the timing column."""
    import pandas as pd
    import torch

    a, b = (torch.load(folder / "last.pt", weights_only=True) for folder in (done, run))
    for part in parts:
        flat_a, flat_b = (torch.utils._pytree.tree_flatten(c.get(part))[0] for c in (a, b))
        assert len(flat_a) == len(flat_b), part
        for x, y in zip(flat_a, flat_b):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, part
    for name in ("history.csv", "oof.csv", "test.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(done / name).drop(columns="seconds", errors="ignore"),
                                      pd.read_csv(run / name).drop(columns="seconds", errors="ignore"))
