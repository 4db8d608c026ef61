"""`kit pull`: bring the runs of Kaggle training kernels home, checked, under the local runs root."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option


@main.command()
@click.argument("kernels", nargs=-1, required=True)
@click.option("--runs", "runs_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The local runs root. [default: train.runs of kit.yaml, else runs]")
@click.option("--folds", "folds_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The local folds file the runs must match. [default: train.folds of kit.yaml, else "
                   "folds/folds.csv]")
@click.option("--force", is_flag=True, help="Replace local runs of the same model and fold.")
@config_option
def pull(kernels, runs_root, folds_file, force, config_path):
    """Download each training kernel's output (owner/kernel, from `kit notebook --train --push`) and place its
    runs/<model>/fold<k>/ under the local runs root, checked first: complete (best.pt, oof.csv, test.csv,
    config.yaml), made for this kit.yaml's competition spec, and on the same folds (its oof.csv Ids against
    the local folds file). Nothing is written unless every kernel passes; a local run with the same best.pt is left
    as it is. A kernel stopped by its time limit is reported with its unfinished runs and the command that
    continues it; its finished runs are pulled, and the exit code is 75.

    \b
    kit pull me/hpa-train-resnet34-fold0 me/hpa-train-resnet34-fold1
    kit blend runs/*
    """
    from kit.config import load_config
    from kit.kaggle.pull import STOPPED_EXIT_CODE
    from kit.kaggle.pull import pull as pull_kernels
    from kit.settings.train import train_value

    config = load_config(config_path)
    section, source = config.section("train"), str(config.path or "kit.yaml")
    runs_root = runs_root or Path(str(train_value(section, "runs", source)))
    folds_file = folds_file or Path(str(train_value(section, "folds", source)))
    result = pull_kernels(list(kernels), runs_root, config.spec, folds_file, force=force, log=click.echo)
    for kernel in result.kernels:
        if kernel.runs:
            click.echo(f"kernel {kernel.ref}: " + ", ".join(f"{runs_root / model / f'fold{fold}'}"
                                                            for model, fold in kernel.runs))
    click.echo(f"pulled {len(result.placed)} run(s) into {runs_root}"
               + (f"; {len(result.stopped)} kernel(s) stopped by the time limit" if result.stopped else ""))
    if result.stopped:
        raise SystemExit(STOPPED_EXIT_CODE)
