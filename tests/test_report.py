import pandas as pd
import pytest

from kit.errors import KitError
from kit.report import plot_learning_curves


def write_history(folder, epochs=4):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "epoch": range(1, epochs + 1), "lr": [1e-3 / e for e in range(1, epochs + 1)],
        "train_loss": [0.7 / e for e in range(1, epochs + 1)], "val_loss": [0.8 / e for e in range(1, epochs + 1)],
        "val_f1": [0.1 * e for e in range(1, epochs + 1)], "val_f1_tuned": [0.12 * e for e in range(1, epochs + 1)],
        "seconds": [3.0] * epochs,
    }).to_csv(folder / "history.csv", index=False)


def test_learning_curves_png(tmp_path):
    run = tmp_path / "runs" / "resnet34" / "fold0"
    write_history(run)
    path = plot_learning_curves(run)
    assert path == run / "curves.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_history_problems_are_clear(tmp_path):
    with pytest.raises(KitError, match="no history.csv"):
        plot_learning_curves(tmp_path)
    (tmp_path / "history.csv").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(KitError, match="history.csv: not UTF-8 text"):
        plot_learning_curves(tmp_path)
    (tmp_path / "history.csv").write_text("epoch,lr\n1,0.1\n")
    with pytest.raises(KitError, match="missing column"):
        plot_learning_curves(tmp_path)
    assert not (tmp_path / "curves.png").exists()
