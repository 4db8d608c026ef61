"""`kit predict`: redo a saved run's TTA predictions without training."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import RegistryChoice
from kit.layout import BEST_CHECKPOINT
from kit.settings import FIELD


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--tta", type=RegistryChoice(FIELD["tta"]), default=None,
              help="Test-time augmentation. [default: the run's]")
@click.option("--split", type=click.Choice(["both", "oof", "test"]), default="both", show_default=True,
              help="Which predictions to redo.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write oof.csv/test.csv here instead of into the run folder (one run only).")
@click.option("--checkpoint", default=BEST_CHECKPOINT, show_default=True, help="Checkpoint file in the run folder.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, mps, cpu) or a torch device.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per batch. [default: the run's]")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers. [default: the run's]")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Competition files folder (test Ids from its sample submission). Default: $KIT_DATA, else "
                   "the folder the run was trained on.")
def predict(run_dirs, tta, split, out_dir, checkpoint, device, batch_size, workers, data_dir):
    """Redo the TTA predictions of saved runs (RUN_DIR = runs/<model>/fold<k>) without training.

    Test Ids come from the data folder's sample submission: --data (or $KIT_DATA) gives a new one;
    by default the folder the run was trained on (from its config.yaml).
    """
    import os

    from kit.errors import KitError
    from kit.train.predict import predict_run

    if out_dir is not None and len(run_dirs) > 1:
        raise KitError("--out takes one RUN_DIR; without --out each run's predictions go into its own folder")
    data = data_dir or (Path(os.environ["KIT_DATA"]) if os.environ.get("KIT_DATA") else None)
    splits = ("oof", "test") if split == "both" else (split,)
    for run_dir in run_dirs:
        predict_run(run_dir, data, tta=tta, splits=splits, out_dir=out_dir, device=device, batch_size=batch_size,
                    workers=workers, checkpoint=checkpoint, log=click.echo)
