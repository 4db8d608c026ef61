"""TensorBoard event files of one fold at runs/<name>/fold<k>/tb/ (`tensorboard --logdir runs` shows every model
and fold side by side).

Scalars per epoch under history.csv's own column names (train_loss, val_loss, lr, val_<metric>,
val_<metric>_tuned, seconds) plus each parameter group's learning rate (lr/head, lr/backbone); at the best
epoch the per-class metric (per_class_at_0.5/<class>, per_class_tuned/<class>); once, the image `augmented`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from kit.track.tracker import Tracker, learning_rates

TB_DIR = "tb"


def tb_dir(run_dir) -> Path:
    return Path(run_dir) / TB_DIR


class TensorBoardTracker(Tracker):
    def __init__(self, run_dir, metric, purge_after: int | None = None):
        """`purge_after`: epochs already done (--resume): events logged after them by the interrupted run are
        dropped. None: a fresh start, so event files of an earlier run in this folder are removed."""
        from torch.utils.tensorboard import SummaryWriter

        folder = tb_dir(run_dir)
        if purge_after is None and folder.is_dir():
            shutil.rmtree(folder)
        self.writer = SummaryWriter(str(folder), purge_step=None if purge_after is None else purge_after + 1)
        self.metric = metric

    def start(self, loaders, trainee, settings) -> None:
        from kit.track.images import augmented_grid

        self.writer.add_image("augmented", augmented_grid(loaders, trainee, settings), 0)

    def epoch(self, row: dict, improved: bool, optimizer=None) -> None:
        step = int(row["epoch"])
        for column, value in row.items():
            if column != "epoch":
                self.writer.add_scalar(column, float(value), step)
        for role, lr in learning_rates(optimizer).items():
            self.writer.add_scalar(f"lr/{role}", lr, step)

    def best(self, epoch, per_class, class_names) -> None:
        for kind, values in per_class.items():
            for name, value in zip(class_names, values):
                self.writer.add_scalar(f"per_class_{kind}/{name}", float(value), epoch)

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
