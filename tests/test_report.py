import pandas as pd
import pytest
from helpers import png_size, saved_figures

from kit.errors import KitError
from kit.report import plot_folds, plot_learning_curves


def write_history(folder, epochs=4):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "epoch": range(1, epochs + 1), "lr": [1e-3 / e for e in range(1, epochs + 1)],
        "train_loss": [0.7 / e for e in range(1, epochs + 1)], "val_loss": [0.8 / e for e in range(1, epochs + 1)],
        "val_macro_f1": [0.1 * e for e in range(1, epochs + 1)],
        "val_macro_f1_tuned": [0.12 * e for e in range(1, epochs + 1)],
        "seconds": [3.0] * epochs,
    }).to_csv(folder / "history.csv", index=False)


def test_learning_curves_png(tmp_path, monkeypatch):
    figures = saved_figures(monkeypatch)
    run = tmp_path / "runs" / "resnet34" / "fold0"
    write_history(run)
    path = plot_learning_curves(run)
    assert path == run / "curves.png"
    assert png_size(path)[0] > 1000  # a real, decodable image, 15 inches wide
    history = pd.read_csv(run / "history.csv")
    figure, = figures
    loss, f1, lr = figure.axes
    series = {(axis.get_title(), line.get_label()): line for axis in (loss, f1, lr) for line in axis.get_lines()}
    assert list(series[("Loss", "train")].get_ydata()) == pytest.approx(history["train_loss"].tolist())
    assert list(series[("Loss", "validation")].get_ydata()) == pytest.approx(history["val_loss"].tolist())
    assert list(series[("Validation macro F1", "at 0.5")].get_ydata()) == pytest.approx(history["val_macro_f1"].tolist())
    tuned = series[("Validation macro F1", "tuned thresholds")]
    assert list(tuned.get_xdata()) == [1, 2, 3, 4]
    assert list(tuned.get_ydata()) == pytest.approx(history["val_macro_f1_tuned"].tolist())
    best = next(line for (title, label), line in series.items() if label.startswith("best: "))
    assert best.get_label() == "best: 0.480 (epoch 4)" and list(best.get_ydata()) == pytest.approx([0.48])
    lr_line, = lr.get_lines()
    assert list(lr_line.get_ydata()) == pytest.approx(history["lr"].tolist())
    assert [axis.get_xlabel() for axis in figure.axes] == ["epoch"] * 3
    assert figure.texts[0].get_text().endswith("resnet34 / fold0: 4 epochs, 12 s")


def test_every_fold_of_a_model_in_one_figure(tmp_path, monkeypatch):
    figures = saved_figures(monkeypatch)
    model = tmp_path / "runs" / "resnet34"
    for fold, epochs in ((0, 4), (1, 3)):
        write_history(model / f"fold{fold}", epochs)
    path = plot_folds(model)
    assert path == model / "folds.png" and png_size(path)[0] > 800
    figure, = figures
    loss, f1 = figure.axes
    assert [line.get_label() for line in loss.get_lines()] == ["fold0", "fold1"]
    assert [line.get_label() for line in f1.get_lines()] == ["fold0 (best 0.480)", "fold1 (best 0.360)"]
    assert list(f1.get_lines()[1].get_ydata()) == pytest.approx([0.12, 0.24, 0.36])


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
