from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.data.presets import PRESETS


@main.command()
@click.argument("preset", type=click.Choice(list(PRESETS)))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
@click.option("--force", is_flag=True, help="Overwrite an existing kit.yaml.")
def init(preset, folder, force):
    """Write a commented FOLDER/kit.yaml (default: here) for a competition the kit knows.

    \b
    kit init planet my-planet      Planet: tag names, one RGB JPEG per sample, two test folders, samples F2
    kit init imet-2019             iMet 2019: labels.csv, one RGB PNG per sample, samples F2
    kit init hpa                   Human Protein Atlas 2018: one PNG per channel, macro F1
    kit init ranzcr-clip           RANZCR CLiP: wide 0/1 columns, PatientID groups, gray JPEG, macro AUC
    kit init rsna-ich-2019         RSNA ICH 2019: long ID_<image>_<subtype> rows, DICOM through 3 HU windows,
                                   weighted log loss (any x2)
    kit init plant-pathology-2020  Plant Pathology 2020: one-hot wide (multiclass), wide probabilities, macro AUC
    kit init cassava-2020          Cassava: one class per image, the Id is the file name, accuracy

    It names the competition's files, columns, classes, label and submission formats, image layout, channels
    (DICOM windows) and metric; the next commands
    (`kit download`, `kit folds`, `kit train`, ...) read it.
    """
    from kit.data.presets import write_preset

    path = write_preset(preset, folder, force=force)
    here = "" if folder == Path(".") else f"cd {folder} && "
    click.echo(f"wrote {path} ({PRESETS[preset].title})\nnext:\n"
               f"  {here}kit download          # the competition files into data/ (needs Kaggle credentials)\n"
               f"  kit folds                # stratified folds\n"
               f"  kit train --fold all --model resnet34 --epochs 5\n"
               f"  kit blend && kit submit submissions/blend.csv -m 'first try'\n"
               f"  (or `kit synth data --preset {preset}` for a small synthetic set in the same layout)")
