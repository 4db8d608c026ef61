"""`kit folds`: stratified k-fold splits of train.csv, groups kept whole."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve, table_options
from kit.settings import FOLDS
from kit.settings.train import train_value


@main.command()
@data_option
@config_option
@table_options(FOLDS)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write Id,fold (the per-class summary goes beside it). "
                   "[default: train.folds in the config, else folds/folds.csv]")
def folds(data_dir, config_path, out, **options):
    """Split train.csv into K multi-label stratified folds (iterative stratification).

    Every class is spread over the folds as evenly as its count allows (`task: multiclass`: scikit-learn's
    stratified k-fold on the one class). The spec's `group_column` (RANZCR's PatientID) keeps each group inside
    one fold, as --groups does; given both, both apply. Prints and saves a table of
    per-class counts per fold (<out>_summary.csv) and warns about classes with fewer samples than folds.
    Settings: defaults, then the config's folds: section, then these options.

    \b
    Example:
      kit folds --k 5 --seed 42                 folds/folds.csv and folds/folds_summary.csv
      kit folds --groups folds/dups.csv         near-duplicates stay in one fold
    """
    from kit.data.folds import make_folds
    from kit.layout import folds_summary

    context = resolve(config_path, data_dir)
    values = context.section(FOLDS, options)
    out = out or Path(train_value(context.config.section("train"), "folds", context.source))
    labels = context.data.train_labels()
    groups = context.data.train_groups()
    _, summary, warnings = make_folds(labels, context.data.spec, out=out, k=values["k"], seed=values["seed"],
                                      groups_file=values["groups"], label_groups=groups)
    click.echo(summary.to_string(index=False))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out} ({len(labels)} Ids, {values['k']} folds) and {folds_summary(out)}")
