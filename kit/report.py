"""`kit report`: learning curves of a run (from history.csv) as a PNG, readable at a glance."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from kit import io
from kit.errors import KitError

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_f1", "val_f1_tuned", "seconds")


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no history.csv (is this a run folder of `kit train`?)")
    history = io.read_csv(path)
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise KitError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    if history.empty:
        raise KitError(f"{path}: no epochs recorded yet")
    return history


def plot_learning_curves(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Loss, validation macro F1 and learning rate per epoch of one run folder -> `<run_dir>/curves.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    history = read_history(run_dir / "history.csv")
    out = Path(out) if out else run_dir / "curves.png"
    title = " / ".join(run_dir.resolve().parts[-2:])
    figure, (loss_ax, f1_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    epochs = history["epoch"]
    loss_ax.plot(epochs, history["train_loss"], "o-", label="train")
    loss_ax.plot(epochs, history["val_loss"], "o-", label="validation")
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="loss")
    loss_ax.legend()
    f1_ax.plot(epochs, history["val_f1"], "o-", label="at 0.5")
    f1_ax.plot(epochs, history["val_f1_tuned"], "o-", label="tuned thresholds")
    best = history["val_f1_tuned"].idxmax()
    f1_ax.annotate(f"best {history['val_f1_tuned'][best]:.3f} (epoch {epochs[best]})",
                   (epochs[best], history["val_f1_tuned"][best]), textcoords="offset points", xytext=(0, -18),
                   ha="center")
    f1_ax.set(title="Validation macro F1", xlabel="epoch", ylabel="macro F1", ylim=(0, 1))
    f1_ax.legend()
    lr_ax.plot(epochs, history["lr"], "o-", color="tab:gray")
    lr_ax.set(title="Learning rate (end of epoch)", xlabel="epoch", ylabel="lr")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for axis in (loss_ax, f1_ax, lr_ax):
        axis.grid(alpha=0.3)
    figure.suptitle(f"{title}: {len(history)} epochs, {history['seconds'].sum():.0f} s")
    figure.tight_layout()
    with io.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return out
