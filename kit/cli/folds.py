from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve
from kit.layout import FOLDS_FILE


@main.command()
@data_option
@config_option
@click.option("--k", default=5, show_default=True, help="Number of folds.")
@click.option("--seed", default=42, show_default=True, help="Random seed; the same seed gives the same folds.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=FOLDS_FILE,
              show_default=True, help="Where to write Id,fold (the per-class summary goes beside it).")
@click.option("--groups", "groups_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with Id,group: every group lands in one fold (e.g. duplicates of one image).")
def folds(data_dir, config_path, k, seed, out, groups_file):
    """Split train.csv into K multi-label stratified folds (iterative stratification).

    Every class is spread over the folds as evenly as its count allows. Prints and saves a table of
    per-class counts per fold (<out>_summary.csv) and warns about classes with fewer samples than folds.
    """
    from kit.data.folds import make_folds, summary_path

    context = resolve(config_path, data_dir)
    labels = context.data.train_labels()
    _, summary, warnings = make_folds(labels, context.config.spec, out=out, k=k, seed=seed, groups_file=groups_file)
    click.echo(summary.to_string(index=False))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out} ({len(labels)} Ids, {k} folds) and {summary_path(out)}")
